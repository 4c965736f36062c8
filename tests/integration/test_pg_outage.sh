# A PostgreSQL server that stops answering, then answers again (issue 14): the
# daemon's loop is never held by it. Every process of the cluster is stopped
# (SIGSTOP: a hung host, a stalled disk; the sessions stay open and answer
# nothing) while a daemon on it sends to a SQLite daemon and hears from it.
# Meanwhile the daemon answers its control socket at once, tells the outage in
# one log line, and ACKs nothing it could not store; once the server runs
# again, it tells that in one line, and every message is delivered exactly
# once, both ways. Then the server is stopped for good: the daemon keeps
# answering, and its retries (backed off) cost it almost no CPU.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"

PA=$(freeport) PB=$(freeport)
mkpeer a "$PA"
mkpeer b "$PB"
printf 'SECUREDGRAM_DB=%s\n' "$URI" >> "$T/a/.env"
start a
start b

# the server's processes: the postmaster and its children
pg_pids() {
    pm=$(head -n 1 "$PGD/data/postmaster.pid")
    echo "$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
}
# answers NAME: the daemon's status within 2 s (its loop is not held)
answers() { timeout 2 "$SG_BIN/securedgram" status > /dev/null 2>&1 < /dev/null; }
answers_a() { (cd "$T/a" && answers) || fail "a's control socket did not answer within 2 s$1"; }

# 1. Traffic both ways, then the server freezes in the middle of it.
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
    SELECT '127.0.0.1', $PB, json_build_object('t', 'before', 'n', n)::text FROM generate_series(1, 20) n"
wait_for 20 "a's first 20 rows acknowledged" \
    sh -c "[ \"\$(timeout 5 '$PSQL' -X -A -t -d '$URI' -c \"SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'\")\" = 20 ]"
# a set claim with a row whose payload gives another row's message_id: that row alone
# fails, saying why; the rows claimed with it go
M=$(pq "SELECT message_id FROM outbound_messages ORDER BY id LIMIT 1")
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES
    ('127.0.0.1', $PB, '{\"t\":\"set\",\"n\":1}'),
    ('127.0.0.1', $PB, '{\"t\":\"set\",\"n\":2,\"message_id\":\"$M\"}'),
    ('127.0.0.1', $PB, '{\"t\":\"set\",\"n\":3}'); NOTIFY securedgram_outbound"
set_done() {
    [ "$(pq "SELECT string_agg(state, ',' ORDER BY id) FROM outbound_messages WHERE payload::json->>'t' = 'set'")" = \
        "acknowledged,send_failed,acknowledged" ]
}
wait_for 20 "the set's rows: acknowledged, send_failed, acknowledged" set_done
pq "SELECT last_error FROM outbound_messages WHERE state = 'send_failed'" | grep -q "already used by another outbound row" ||
    fail "the failed row does not say why: $(pq "SELECT last_error FROM outbound_messages WHERE state = 'send_failed'")"
pq "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
    SELECT '127.0.0.1', $PB, json_build_object('t', 'during', 'n', n)::text FROM generate_series(1, 200) n"
FROZEN=$(pg_pids)
# shellcheck disable=SC2086
kill -STOP $FROZEN
# b sends to a while a cannot store: a must not ACK
rows b toa 30 16 127.0.0.1 "$PA"
for i in 1 2 3 4 5; do answers_a " (server stopped, try $i)"; done
wait_for 10 "a tells the outage" grep -q "database: cannot" "$T/a/daemon.log"
js() { (cd "$T/$1" && timeout 5 "$SG_BIN/securedgram" status --json < /dev/null) | jq -r "$2"; }
# b's rows go unacknowledged long enough for b to send them again, a answering all along
wait_for 20 "b retransmits to the stalled a" sh -c "[ \$(cd '$T/b' && '$SG_BIN/securedgram' status --json | jq .counters.retransmits) -gt 0 ]"
for i in 1 2 3; do answers_a " (server stopped, after the outage was told, try $i)"; done
assert_eq "$(q b "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged' AND id BETWEEN $F AND $L")" 0 \
    "rows a acknowledged while it could not store them"
# shellcheck disable=SC2086
kill -CONT $FROZEN
FROZEN=""
wait_for 20 "a tells it works again" grep -q "database: working again" "$T/a/daemon.log"
delivered_pg() {
    [ "$(timeout 5 "$PSQL" -X -A -t -d "$URI" -c "SELECT count(*) FROM outbound_messages WHERE state NOT IN ('acknowledged', 'send_failed')")" = 0 ]
}
wait_for 30 "all 222 of a's rows acknowledged" delivered_pg
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages")" "222|222" "b stored a's rows once"
wait_for 30 "b's 30 rows acknowledged" count_is b \
    "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $F AND $L AND state = 'acknowledged'" 30
assert_eq "$(pq "SELECT count(*) || '|' || count(DISTINCT message_id) FROM inbound_messages WHERE payload::json->>'t' = 'toa'")" \
    "30|30" "a stored b's rows once, in PostgreSQL"
q b "SELECT message_id FROM outbound_messages WHERE id BETWEEN $F AND $L ORDER BY 1" > "$T/sent"
pq "SELECT message_id FROM inbound_messages WHERE payload::json->>'t' = 'toa' ORDER BY 1" > "$T/got"
cmp -s "$T/sent" "$T/got" || fail "a stored other messages than b sent"
told=$(grep -c "database: cannot\|database: failing" "$T/a/daemon.log" || true)
assert_eq "$told" 1 "log lines telling the outage"
assert_eq "$(grep -c "database: working again" "$T/a/daemon.log")" 1 "log lines telling its end"
note "frozen server: $(grep -o 'working again after [0-9.]* s ([0-9]* failed attempts)' "$T/a/daemon.log")"

# 2. The server stops for good: a keeps answering, and retries with a backoff.
sh "$PGC" stop "$PGD" >&2
rows b gone 5 16 127.0.0.1 "$PA"
for i in 1 2 3; do answers_a " (server gone, try $i)"; done
wait_for 10 "a tells the second outage" sh -c "[ \$(grep -c 'database: cannot' '$T/a/daemon.log') -ge 2 ]"
# over 3 s of retries (b retransmits, a's watch retries): a does not spin; its CPU time stays small
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$T/a/securedgram.pid")/stat"; }
c0=$(cpu) e0=$(js a '.store.errors')
end=$(( $(date +%s) + 3 ))
while [ "$(date +%s)" -lt "$end" ]; do answers_a " (server gone)"; done
c1=$(cpu) e1=$(js a '.store.errors')
ticks=$(getconf CLK_TCK)
[ $((c1 - c0)) -le $((ticks * 3 / 10)) ] || fail "a used $((c1 - c0)) ticks of CPU in 3 s with the server gone (of $ticks a second)"
note "server gone: $((e1 - e0)) failed database calls and $((c1 - c0))/$ticks s of CPU in 3 s"
assert_eq "$(q b "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged' AND id BETWEEN $F AND $L")" 0 \
    "rows a acknowledged with the server gone"
stop a
stop b
