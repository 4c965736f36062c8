# SECUREDGRAM_GIVE_UP_AFTER (issue 12): messages are retransmitted for that long,
# not for SECUREDGRAM_MAX_RETRIES, so a peer away for longer than the retries
# would last gets them once it is back; past the duration a row fails, saying so.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
# One retry would give up after about 2 s; the duration keeps it going for 30 s.
printf 'SECUREDGRAM_MAX_RETRIES=1\nSECUREDGRAM_GIVE_UP_AFTER=30s\n' >> "$T/a/.env"
start a
R=$(queue a "$PB" '{"n":"while b is away"}')
retried() { [ "$(q a "SELECT retry_count FROM outbound_messages WHERE id = $R")" -ge "$1" ]; }
wait_for 15 "three retransmissions (max retries is 1)" retried 3
state_is a "$R" sent || fail "row $R is $(q a "SELECT state FROM outbound_messages WHERE id = $R")"
start b
wait_for 10 "delivery once b is back" state_is a "$R" acknowledged
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE payload LIKE '%while b is away%'")" 1 \
    "stored once"
note "with SECUREDGRAM_GIVE_UP_AFTER=30s and 1 retry, a row waits out its peer's absence"

# A short duration: the row fails when it runs out, with the reason.
stop b
sed -i 's/^SECUREDGRAM_GIVE_UP_AFTER=.*/SECUREDGRAM_GIVE_UP_AFTER=3/; s/^SECUREDGRAM_MAX_RETRIES=.*/SECUREDGRAM_MAX_RETRIES=100/' \
    "$T/a/.env"
kill -HUP "$(cat "$T/a/securedgram.pid")"
wait_for 5 "a reloaded" grep -q "give up after 3s" "$T/a/daemon.log"
R2=$(queue a "$PB" '{"n":"nobody there"}')
wait_for 10 "the row given up on" state_is a "$R2" send_failed
why=$(q a "SELECT last_error FROM outbound_messages WHERE id = $R2")
case "$why" in "no ACK within SECUREDGRAM_GIVE_UP_AFTER (3 s, "*) ;; *) fail "last_error: $why" ;; esac
note "with SECUREDGRAM_GIVE_UP_AFTER=3 (reloaded) and 100 retries, a row fails after 3 s: $why"

in_a() { (cd "$T/a" && sg "$@"); }
expect_error "SECUREDGRAM_GIVE_UP_AFTER must be a duration" in_a --give-up-after 1.5h -P "$T/x.pid" start
note "a bad duration is one ERROR line at start"
exit 0
