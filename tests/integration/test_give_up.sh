# SECUREDGRAM_GIVE_UP_AFTER (issue 12): messages are retransmitted for that long,
# not for SECUREDGRAM_MAX_RETRIES, so a peer away for longer than the retries
# would last gets them once it is back (a small one and one in parts, with 1h);
# past the duration a row fails, saying so.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
KAB=$(sg keygen)
mkpeer a "$PA" "$SECRET" 127.0.0.2; mkpeer b "$PB" "$SECRET" 127.0.0.3
# Each other's version 2 peers, so that a's large row goes in parts.
for n in a b; do
    printf 'SECUREDGRAM_PEERS=%s\nSECUREDGRAM_NAME=%s\n' "$T/$n/peers" "$n" >> "$T/$n/.env"
done
printf '[peer b]\nendpoint = 127.0.0.3:%s\nkey = %s\n' "$PB" "$KAB" > "$T/a/peers"
printf '[peer a]\nendpoint = 127.0.0.2:%s\nkey = %s\n' "$PA" "$KAB" > "$T/b/peers"
chmod 600 "$T/a/peers" "$T/b/peers"
# One retry would give up after a second or two; the hour keeps both rows going. The
# adaptive timer's backoff stops at 500 ms, so that a tries b again soon after it is back.
printf 'SECUREDGRAM_MAX_RETRIES=1\nSECUREDGRAM_GIVE_UP_AFTER=1h\nSECUREDGRAM_RETRY_MAX=%sms\n' \
    $((500 * SLOW)) >> "$T/a/.env"
start a
rows a small 1 20 b; R=$F
rows a parts 1 300000 b; RP=$F
# retried N: both rows still sent (not given up on), each retransmitted at least N times.
retried() {
    count_is a "SELECT count(*) FROM outbound_messages
                WHERE id IN ($R, $RP) AND state = 'sent' AND retry_count >= $1" 2
}
wait_for 15 "three retransmissions of each row (max retries is 1)" retried 3
start b
delivered a b small "$R" "$R" 10
delivered a b parts "$RP" "$RP" 10
# It came in parts: 300 KB is at least 264 of the default 1,140 bytes.
got=$( (cd "$T/b" && sg status) | sed -n 's/.* parts_received=\([0-9]*\) .*/\1/p')
[ "${got:-0}" -ge 264 ] || fail "b took ${got:-no} parts for the 300 KB row"
note "with SECUREDGRAM_GIVE_UP_AFTER=1h and 1 retry, a small row and one of 300 KB in parts wait out their peer's absence ($(q a "SELECT group_concat(retry_count, ' and ') FROM outbound_messages WHERE id IN ($R, $RP)") retransmissions)"

# A short duration: the row fails when it runs out, with the reason.
stop b
sed -i 's/^SECUREDGRAM_GIVE_UP_AFTER=.*/SECUREDGRAM_GIVE_UP_AFTER=3/; s/^SECUREDGRAM_MAX_RETRIES=.*/SECUREDGRAM_MAX_RETRIES=100/' \
    "$T/a/.env"
kill -HUP "$(cat "$T/a/securedgram.pid")"
wait_for 5 "a reloaded" grep -q "give up after 3s" "$T/a/daemon.log"
R2=$(queue a "$PB" '{"n":"nobody there"}' 127.0.0.3)
wait_for 10 "the row given up on" state_is a "$R2" send_failed
why=$(q a "SELECT last_error FROM outbound_messages WHERE id = $R2")
case "$why" in "no ACK within SECUREDGRAM_GIVE_UP_AFTER (3 s, "*) ;; *) fail "last_error: $why" ;; esac
note "with SECUREDGRAM_GIVE_UP_AFTER=3 (reloaded) and 100 retries, a row fails after 3 s: $why"

in_a() { (cd "$T/a" && sg "$@"); }
expect_error "SECUREDGRAM_GIVE_UP_AFTER must be a duration" in_a --give-up-after 1.5h -P "$T/x.pid" start
note "a bad duration is one ERROR line at start"
exit 0
