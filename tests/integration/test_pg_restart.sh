# PostgreSQL restarted while messages flow both ways (issue 14: "the server is
# restarted while traffic flows: nothing ACKed is lost, and the daemon reconnects
# with backoff, logging once per outage"). A daemon on PostgreSQL (a) sends to a
# daemon on SQLite (b), and b sends to a (inbound into PostgreSQL), from two
# producers that insert batches into each queue until told to stop: rows are
# queued before, during (b's, which a cannot store then) and after each restart.
# The server is restarted fast (clients disconnected, a checkpoint), then
# immediate (a crash: recovery at the start); each time the test waits until rows
# inserted after the restart were delivered both ways. Then every row of both
# queues is acknowledged, each stored exactly once by its receiver, byte for
# byte: 0 lost, 0 duplicated; a logged the outages
# a bounded number of times (at most 5 lines telling of the lost connection for
# two restarts; the count is printed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

# The producers are stopped first (one would retry against the stopped server), then
# pglib.sh's cleanup.
restart_cleanup() {
    rc=$?
    set +e # a failing step here must not end the cleanup (under set -e, (exit 1) would)
    : > "$T/stop"
    for pf in "$T"/producer_*.bg.pid; do
        [ -f "$pf" ] || continue
        kill -TERM "$(cat "$pf")" 2>/dev/null || true
        wait "$(cat "$pf")" 2>/dev/null || true
        rm -f "$pf"
    done
    (exit "$rc")
    pg_cleanup # reads the status from $?
}
trap restart_cleanup EXIT

PA=$(freeport) PB=$(freeport)
mkpeer a "$PA"
mkpeer b "$PB"
printf 'SECUREDGRAM_DB=%s\n' "$URI" >> "$T/a/.env"
start a
start b

# Two producers, until told to stop (at most MAXB batches each, and 40 s). The first
# inserts batch i of B rows into PostgreSQL for b (message_ids a...i...n), then the
# next; while the server is away its insert fails and it tries again: the ids are the
# rows' own, so that an insert retried after an error (its commit may or may not
# have been made) is harmless (ON CONFLICT DO NOTHING). The second inserts batch i
# of B rows into b's SQLite for a (b...i...n), never waiting for PostgreSQL, but at
# most AHEAD batches ahead of the first (the load is the first one's): so while the
# server is away, b sends to a what a cannot store. $T/NAME.batches: batches made.
B=50 MAXB=1000 AHEAD=4
made() { cat "$T/$1.batches" 2>/dev/null || echo 0; }
producer_pg() {
    trap - EXIT INT TERM # the test's cleanup is not this background job's
    end=$(( $(date +%s) + 40 * SLOW ))
    i=0
    while [ "$i" -lt "$MAXB" ] && [ ! -e "$T/stop" ] && [ "$(date +%s)" -lt "$end" ]; do
        i=$((i + 1))
        until pq "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload)
                  SELECT 'a' || lpad(to_hex($i), 11, '0') || lpad(to_hex(n), 12, '0'), '127.0.0.1', $PB,
                         json_build_object('t', 'tob', 'b', $i, 'n', n)::text
                  FROM generate_series(1, $B) n ON CONFLICT DO NOTHING" > /dev/null 2>&1; do
            [ "$(date +%s)" -lt "$end" ] || { echo "producer: PostgreSQL unreachable for too long" > "$T/producer.err"; exit 1; }
            sleep 0.02 # the server is restarting: try again
        done
        echo "$i" > "$T/pg.batches.new" && mv "$T/pg.batches.new" "$T/pg.batches"
    done
}
producer_b() {
    trap - EXIT INT TERM
    end=$(( $(date +%s) + 40 * SLOW ))
    i=0
    while [ "$i" -lt "$MAXB" ] && [ ! -e "$T/stop" ] && [ "$(date +%s)" -lt "$end" ]; do
        if [ "$i" -ge $(( $(made pg) + AHEAD )) ]; then
            sleep 0.01 # the first producer's pace
            continue
        fi
        i=$((i + 1))
        q b "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $B)
             INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload)
             SELECT 'b' || printf('%011x%012x', $i, n), '127.0.0.1', $PA, json_object('t', 'toa', 'b', $i, 'n', n) FROM s" ||
            { echo "producer: b's insert failed" > "$T/producer.err"; exit 1; }
        echo "$i" > "$T/b.batches.new" && mv "$T/b.batches.new" "$T/b.batches"
    done
}
producer_pg &
echo $! > "$T/producer_pg.bg.pid"
producer_b &
echo $! > "$T/producer_b.bg.pid"
# flowing N: more than N batches queued by each, and rows of batch N acknowledged both
# ways (a sent them and recorded the ACK; b sent them and a stored them in PostgreSQL and ACKed)
flowing() {
    [ ! -e "$T/producer.err" ] || fail "$(cat "$T/producer.err")"
    [ "$(made pg)" -gt "$1" ] && [ "$(made b)" -gt "$1" ] &&
        [ "$(pq "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged' AND payload::json->>'b' = '$1'")" -gt 0 ] &&
        [ "$(q b "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged' AND json_extract(payload, '\$.b') = $1")" -gt 0 ]
}
told() { grep -ci "database: cannot\|database: failing\|lost the connection" "$T/a/daemon.log" || true; }

wait_for 20 "the first batches delivered both ways" flowing 5
for mode in fast immediate; do
    at=$(made pg) t0=$(date +%s%N)
    sh "$PGC" restart "$PGD" "$mode" >&2
    down=$(( ($(date +%s%N) - t0) / 1000000 ))
    after=$(made pg)
    # rows queued after the server came back are delivered both ways
    wait_for 30 "rows queued after the $mode restart delivered both ways" flowing $((after + 1))
    note "restart $mode: $down ms, at batch $at (batch $after when it was back); $(told) log lines of a lost connection so far"
done
: > "$T/stop"
for p in pg b; do
    wait "$(cat "$T/producer_$p.bg.pid")" || fail "the producer failed: $(cat "$T/producer.err" 2>/dev/null)"
    rm -f "$T/producer_$p.bg.pid"
done
KA=$(made pg) KB=$(made b)
NA=$((KA * B)) NB=$((KB * B))

# Every row of both queues acknowledged, and stored once by its receiver, byte for byte.
pg_is() { [ "$(pq "$1")" = "$2" ]; }
wait_for 30 "all $NA of a's rows acknowledged" pg_is \
    "SELECT count(*) FILTER (WHERE state = 'acknowledged') || '|' || count(*) FROM outbound_messages" "$NA|$NA"
wait_for 30 "all $NB of b's rows acknowledged" count_is b \
    "SELECT count(*) FILTER (WHERE state = 'acknowledged') || '|' || count(*) FROM outbound_messages" "$NB|$NB"
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages")" "$NA|$NA" "b stored each of a's rows once"
assert_eq "$(pq "SELECT count(*) || '|' || count(DISTINCT message_id) FROM inbound_messages")" "$NB|$NB" \
    "a stored each of b's rows once, in PostgreSQL"
pq "SELECT message_id, payload FROM outbound_messages ORDER BY message_id" > "$T/a_sent"
q b "SELECT message_id, payload FROM inbound_messages ORDER BY message_id" > "$T/b_got"
cmp -s "$T/a_sent" "$T/b_got" || fail "b stored other messages than a sent: $(diff "$T/a_sent" "$T/b_got" | head -5)"
q b "SELECT message_id, payload FROM outbound_messages ORDER BY message_id" > "$T/b_sent"
pq "SELECT message_id, payload FROM inbound_messages ORDER BY message_id" > "$T/a_got"
cmp -s "$T/b_sent" "$T/a_got" || fail "a stored other messages than b sent: $(diff "$T/b_sent" "$T/a_got" | head -5)"
wait_for 10 "a's inbound rows ack_sent" pg_is "SELECT count(*) FROM inbound_messages WHERE state = 'ack_sent' AND ack_sent = 1" "$NB"
# Nothing of the batches is missing, either way (the producers' counts are theirs).
assert_eq "$(pq "SELECT count(DISTINCT payload::json->>'b') || '|' || min((payload::json->>'b')::int) || '|' ||
                        max((payload::json->>'b')::int) FROM outbound_messages")" "$KA|1|$KA" "the batches queued in PostgreSQL"
assert_eq "$(pq "SELECT count(DISTINCT payload::json->>'b') || '|' || min((payload::json->>'b')::int) || '|' ||
                        max((payload::json->>'b')::int) FROM inbound_messages")" "$KB|1|$KB" "the batches a stored"
status a || fail "a is not running after the restarts"
js() { (cd "$T/$1" && sg status --json) | jq -r "$2"; }
# whether a call failed in a restart depends on timing (a BEGIN on a dead session is retried
# on a new one at once): the failed calls are reported, not required
errors=$(js a .counters.store_errors)
n=$(told)
[ "$n" -le 5 ] || fail "a logged $n lines of a lost connection for two restarts: $(grep -i "database: cannot\|database: failing\|lost the connection" "$T/a/daemon.log")"
note "$NA rows a to b, $NB b to a, across a fast and an immediate restart: 0 lost, 0 duplicated (b heard $(js b .counters.duplicates) again and retransmitted $(js b .counters.retransmits), a heard $(js a .counters.duplicates) again)"
note "a logged $n lines of a lost connection and $(grep -c "database: working again" "$T/a/daemon.log" || true) of its end; $errors failed database calls"
stop a
stop b
