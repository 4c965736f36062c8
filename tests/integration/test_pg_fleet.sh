# A fleet on one PostgreSQL database (issue 14). Two daemons, a1 and a2, share one
# queue: 10,000 rows inserted at once (as any program would, with psql) go to a
# third daemon, b, each stored there exactly once, while a1 is killed with
# SIGKILL in the middle and started again. Both daemons sent some of them; the
# rows a1 held when it died were taken over and delivered. Then the server is
# restarted twice (fast, then immediate: a crash) while messages flow both ways,
# out of the shared queue to b and from b into PostgreSQL through a1: none is
# lost, none stored twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
pq_is() { [ "$(pq "$1" 2>/dev/null)" = "$2" ]; }

PA1=$(freeport) PA2=$(freeport) PB=$(freeport)
mkpeer a1 "$PA1"
mkpeer a2 "$PA2"
mkpeer b "$PB"
for a in a1 a2; do printf 'SECUREDGRAM_DB=%s\n' "$URI" >> "$T/$a/.env"; done
start a1
start a2
start b
pid_of() { cat "$T/$1/securedgram.pid"; }
A1=$(pid_of a1) A2=$(pid_of a2)

# 1. 10,000 rows in one transaction, and a NOTIFY as a program that wants them sent at once
N=10000
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
    SELECT '127.0.0.1', $PB, json_build_object('t', 'fleet', 'n', n)::text FROM generate_series(1, $N) n;
    NOTIFY securedgram_outbound"
acked() { pq "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'"; }
at_least() { [ "$(acked)" -ge "$1" ]; }
wait_for 60 "2,000 of the fleet's rows acknowledged" at_least 2000
kill -9 "$A1"
wait_for 5 "a1 to die" not_running a1
# what a1 held when it died: claimed by it, not acknowledged
pq "SELECT id FROM outbound_messages WHERE state IN ('sending', 'sent') AND claimed_by LIKE '%:$A1:%' ORDER BY id" > "$T/held"
start a1
wait_for 60 "all $N rows acknowledged" pq_is "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" "$N"
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'fleet'")" \
    "$N|$N" "b stored each of the fleet's rows once"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'fleet' AND json_extract(payload, '\$.n') BETWEEN 1 AND $N")" \
    "$N" "b stored rows 1 to $N"
pq "SELECT message_id FROM outbound_messages ORDER BY 1" > "$T/sent_ids"
q b "SELECT message_id FROM inbound_messages ORDER BY 1" > "$T/recv_ids"
cmp -s "$T/sent_ids" "$T/recv_ids" || fail "b stored other messages than the fleet sent"
by_a1=$(pq "SELECT count(*) FROM outbound_messages WHERE claimed_by LIKE '%:$A1:%'")
by_a2=$(pq "SELECT count(*) FROM outbound_messages WHERE claimed_by LIKE '%:$A2:%'")
by_new=$(pq "SELECT count(*) FROM outbound_messages WHERE claimed_by LIKE '%:$(pid_of a1):%'")
[ "$by_a1" -gt 0 ] && [ "$by_a2" -gt 0 ] || fail "the work was not shared: a1 sent $by_a1, a2 $by_a2"
assert_eq "$((by_a1 + by_a2 + by_new))" "$N" "rows sent by a1, a2 and a1 started again"
held=$(wc -l < "$T/held")
if [ "$held" -gt 0 ]; then
    ids=$(paste -sd, "$T/held")
    assert_eq "$(pq "SELECT count(*) FROM outbound_messages WHERE id IN ($ids) AND claimed_by NOT LIKE '%:$A1:%'")" \
        "$held" "the rows a1 held when killed were taken over"
fi
dups=$(cd "$T/b" && sg status --json | jq '.counters.duplicates')
note "$N rows: a1 sent $by_a1 before SIGKILL (held $held then), a2 $by_a2, a1 again $by_new; b heard $dups again (retransmissions of rows whose ACK a1 did not record)"

# 2. The server restarted while messages flow both ways: fast, then immediate (a crash).
rows b fromb 1000 16 127.0.0.1 "$PA1"
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
    SELECT '127.0.0.1', $PB, json_build_object('t', 'restart', 'n', n)::text FROM generate_series(1, 3000) n;
    NOTIFY securedgram_outbound"
wait_for 30 "some of the new rows acknowledged" at_least $((N + 300))
sh "$PGC" restart "$PGD" fast >&2
wait_for 30 "more rows acknowledged after the fast restart" at_least $((N + 1200))
sh "$PGC" restart "$PGD" immediate >&2
wait_for 60 "all 3,000 new rows acknowledged" pq_is "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" "$((N + 3000))"
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'restart'")" \
    "3000|3000" "b stored each row sent across the restarts once"
wait_for 60 "b's 1,000 rows acknowledged" count_is b \
    "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $F AND $L AND state = 'acknowledged'" 1000
assert_eq "$(pq "SELECT count(*) || '|' || count(DISTINCT message_id) FROM inbound_messages WHERE payload::json->>'t' = 'fromb'")" \
    "1000|1000" "PostgreSQL stored each of b's rows once"
q b "SELECT message_id FROM outbound_messages WHERE id BETWEEN $F AND $L ORDER BY 1" > "$T/b_sent"
pq "SELECT message_id FROM inbound_messages WHERE payload::json->>'t' = 'fromb' ORDER BY 1" > "$T/pg_got"
cmp -s "$T/b_sent" "$T/pg_got" || fail "PostgreSQL stored other messages than b sent"
for a in a1 a2; do
    outages=$(grep -c "database: cannot\|database: failing" "$T/$a/daemon.log" || true)
    [ "$outages" -le 4 ] || fail "$a told $outages outages for two restarts"
    status "$a" || fail "$a is not running after the restarts"
done
note "two restarts: a1 told $(grep -c "database: cannot" "$T/a1/daemon.log" || true) outages, a2 $(grep -c "database: cannot" "$T/a2/daemon.log" || true); $(grep -ho 'working again after [0-9.]* s' "$T/a1/daemon.log" "$T/a2/daemon.log" | paste -sd, -)"
stop a1
stop a2
stop b
