# A fleet on one PostgreSQL database (issue 14: "each outbound row is claimed by
# exactly one daemon"; "a daemon that dies loses its claims ..., and another
# daemon sends those rows"). Two daemons, a1 and a2, share one queue: 10,000 rows
# inserted at once (as any program would, with psql) go to a third daemon, b (on
# SQLite), while a1 is killed with SIGKILL in the middle and started again.
# Every row ends acknowledged; b stored each exactly once, byte for byte as the
# row's payload (its UNIQUE message_id would hide a second copy, so b's own
# count of messages stored must be 10,000 too, and every datagram it took in is
# stored, a duplicate or dropped); both daemons sent some of them; the rows a1
# held when it died (claimed, sent, not yet acknowledged) were taken over by
# another daemon and delivered. To catch a1 holding rows, b is paused (SIGSTOP:
# its ACKs stop) until a1 has some, and a2 is paused while a1 is killed and what
# it held is read, so that nothing can take them over before.
# (The server restarted under traffic is test_pg_restart.)
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
A1=$(pid_of a1) A2=$(pid_of a2) PIDB=$(pid_of b)

# 1. 10,000 rows in one transaction, and a NOTIFY as a program that wants them sent at once
N=10000
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
    SELECT '127.0.0.1', $PB, json_build_object('t', 'fleet', 'n', n, 'pad', repeat('x', n % 97))::text
    FROM generate_series(1, $N) n;
    NOTIFY securedgram_outbound"
# by PID STATE: rows of that state (a LIKE pattern) claimed by the daemon of that pid
# (claimed_by is host:pid:key)
by() { pq "SELECT count(*) FROM outbound_messages WHERE split_part(claimed_by, ':', 2) = '$1' AND state LIKE '$2'"; }
# mid_stream: 2,000 rows acknowledged, some by each daemon, 2,000 still pending
mid_stream() {
    [ "$(pq "SELECT count(*) FILTER (WHERE state = 'acknowledged') >= 2000 AND count(*) FILTER (WHERE state = 'pending') >= 2000
                    AND count(*) FILTER (WHERE state = 'acknowledged' AND split_part(claimed_by, ':', 2) = '$A1') > 0
                    AND count(*) FILTER (WHERE state = 'acknowledged' AND split_part(claimed_by, ':', 2) = '$A2') > 0
             FROM outbound_messages")" = t ]
}
a1_holds() { [ "$(by "$A1" sent)" -gt 0 ]; }
wait_for 60 "2,000 rows acknowledged, by both daemons" mid_stream
FROZEN=$PIDB # let go by pglib.sh's cleanup if the test fails meanwhile
kill -STOP "$PIDB"
wait_for 10 "a1 to hold rows it sent (b paused)" a1_holds
FROZEN="$PIDB $A2"
kill -STOP "$A2"
kill9 a1
# what a1 held when it died, with nothing running that could take it over
pq "SELECT id FROM outbound_messages WHERE state IN ('sending', 'sent') AND split_part(claimed_by, ':', 2) = '$A1' ORDER BY id" > "$T/held"
pq "SELECT count(*) FILTER (WHERE state = 'acknowledged') || ' ' || count(*) FILTER (WHERE state = 'pending') FROM outbound_messages" > "$T/at_kill"
read -r ACKED_AT PENDING_AT < "$T/at_kill"
held=$(wc -l < "$T/held")
[ "$held" -gt 0 ] || fail "a1 held no rows when killed"
kill -CONT "$A2" "$PIDB"
FROZEN=""
start a1
A1N=$(pid_of a1)
[ "$A1N" != "$A1" ] || fail "a1 started again with the same pid"

# 2. Every row acknowledged, stored once by b, byte for byte.
wait_for 60 "all $N rows acknowledged" pq_is "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" "$N"
assert_eq "$(pq "SELECT count(*) || '|' || count(*) FILTER (WHERE state = 'acknowledged' AND message_id IS NOT NULL
                        AND sent_at IS NOT NULL AND ack_received_at IS NOT NULL AND claimed_by IS NOT NULL AND lease_until IS NULL)
                 FROM outbound_messages")" "$N|$N" "every outbound row acknowledged, sent by a daemon, its lease dropped"
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id), count(DISTINCT json_extract(payload, '\$.n')),
                         min(json_extract(payload, '\$.n')), max(json_extract(payload, '\$.n'))
                  FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'fleet'")" \
    "$N|$N|$N|1|$N" "b stored rows 1 to $N, each once"
pq "SELECT message_id, payload FROM outbound_messages ORDER BY message_id" > "$T/sent"
q b "SELECT message_id, payload FROM inbound_messages ORDER BY message_id" > "$T/recv"
cmp -s "$T/sent" "$T/recv" || fail "b stored other messages than the fleet sent: $(diff "$T/sent" "$T/recv" | head -5)"
js() { (cd "$T/$1" && sg status --json) | jq -r "$2"; }
assert_eq "$(js b .counters.stored)" "$N" "messages b counted as stored"
# every datagram b took in was stored, or told apart as a message stored already, or dropped
assert_eq "$(js b '.counters.rx - .counters.stored - .counters.duplicates - ([.dropped[]] | add)')" 0 \
    "b's datagrams neither stored, nor duplicates, nor dropped"
wait_for 10 "b's inbound rows ack_sent" count_is b "SELECT count(*) FROM inbound_messages WHERE state = 'ack_sent'" "$N"

# 3. The work was shared, and what a1 held was taken over.
by_a1=$(by "$A1" %) by_a2=$(by "$A2" %) by_new=$(by "$A1N" %)
{ [ "$by_a1" -gt 0 ] && [ "$by_a2" -gt 0 ]; } || fail "the work was not shared: a1 sent $by_a1, a2 $by_a2"
assert_eq "$((by_a1 + by_a2 + by_new))" "$N" "rows sent by a1, a2 and a1 started again"
ids=$(paste -sd, "$T/held")
assert_eq "$(pq "SELECT count(*) FROM outbound_messages WHERE id IN ($ids) AND state = 'acknowledged'
                 AND split_part(claimed_by, ':', 2) IN ('$A2', '$A1N')")" \
    "$held" "the rows a1 held when killed, taken over and acknowledged"
took_a2=$(pq "SELECT count(*) FROM outbound_messages WHERE id IN ($ids) AND split_part(claimed_by, ':', 2) = '$A2'")
note "$N rows, a1 killed at $ACKED_AT acknowledged ($PENDING_AT pending) holding $held: sent by a1 $by_a1, a2 $by_a2, a1 again $by_new; a2 took over $took_a2 of the $held, a1 again $((held - took_a2))"
note "b stored $(js b .counters.stored), heard $(js b .counters.duplicates) again (retransmissions, the held rows' among them: b had stored those before a1 died, unacknowledged)"
stop a1
stop a2
stop b
