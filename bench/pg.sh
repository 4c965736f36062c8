#!/bin/sh
# make bench-pg (and the end of make bench): the PostgreSQL backend (issue 14) against
# SQLite, in the same run, on a throw-away cluster (tests/tools/pgcluster.sh: a Unix
# socket, fsync on, Debian's defaults otherwise).
#   throughput  N rows (100,000) inserted in one transaction into the senders' queue for a
#               SQLite receiver B, timed from their commit until all are acknowledged.
#               sqlite: A on a SQLite file (sgbench throughput, as bench/run.sh);
#               pg x1: A on PostgreSQL; pg x2: A1 and A2 sharing that one queue. The rows
#               are inserted with psql, then NOTIFY securedgram_outbound, as a program that
#               wants them sent at once would. Runs alternate (sqlite, pg x1, pg x2), REPS
#               times, so that the machine's noise falls on each alike; the medians.
#   inbound     the same N rows from a SQLite A to B on PostgreSQL (B's inserts).
#   latency     insert -> acknowledged, one message at a time (sgbench latency on SQLite; on
#               PostgreSQL a DO block that commits a row, then waits for its ACK).
# Every run checks that every row was acknowledged and stored once (exit 1 if not).
# Prints a table and adds "pg" to bench/results.json. No targets: reported, not enforced.
set -eu
: "${BIN:?}" "${SGBENCH:?}" "${SGTEST:?}"
BIN=$(realpath "$BIN"); SGBENCH=$(realpath "$SGBENCH"); SGTEST=$(realpath "$SGTEST")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGC=$ROOT/tests/tools/pgcluster.sh
OUT=${OUT:-bench/results.json}
REPS=${PG_REPS:-3}
N=${N:-100000}
W=$(mktemp -d /var/tmp/sgbench-pg.XXXXXX)
chmod 0711 "$W" # the server's user reaches its directory in it
NAMES="a a1 a2 b"
cleanup() {
    for d in $NAMES; do
        [ -f "$W/$d/securedgram.pid" ] && (cd "$W/$d" && "$BIN/securedgram" stop >/dev/null 2>&1) || true
    done
    [ -d "$W/pg" ] && sh "$PGC" stop "$W/pg" >&2
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '%s\n' "$*" >&2; }
URI=$(sh "$PGC" start "$W/pg")
PSQL=$(sh "$PGC" bindir)/psql
pq() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" "$@" < /dev/null; }
KEY=$("$BIN/securedgram" keygen)
port() { "$SGTEST" freeport; }

# peer NAME PORT [DB]: a fresh daemon directory
peer() {
    rm -rf "${W:?}/$1"
    mkdir -p "$W/$1"
    {
        printf 'SECUREDGRAM_SECRET=%s\nSECUREDGRAM_ADDRESS=127.0.0.1\nSECUREDGRAM_PORT=%s\n' "$KEY" "$2"
        printf 'SECUREDGRAM_LOG=%s/%s/daemon.log\nSECUREDGRAM_USER=%s\n' "$W" "$1" "$(id -un)"
        [ $# -lt 3 ] || printf 'SECUREDGRAM_DB=%s\n' "$3"
    } > "$W/$1/.env"
    chmod 600 "$W/$1/.env"
}
start() { (cd "$W/$1" && "$BIN/securedgram" start); }
stop() { (cd "$W/$1" && "$BIN/securedgram" stop >/dev/null); }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
now_ns() { date +%s%N; }
fresh_pg() {
    pq -c "TRUNCATE outbound_messages, inbound_messages RESTART IDENTITY" > /dev/null 2>&1 || true
}
# once_in_b: B stored each of the N rows once
once_in_b() {
    got=$(sqlite3 "$W/b/securedgram.db" "SELECT count(*) || ' ' || count(DISTINCT message_id) FROM inbound_messages")
    [ "$got" = "$N $N" ] || { say "FAIL: B stored $got of $N rows (count, distinct)"; exit 1; }
}

# run_sqlite R: A (SQLite) -> B, msg/s on stdout
run_sqlite() {
    peer a "$PA"; peer b "$PB"
    start a; start b
    "$SGBENCH" throughput "$W/a/securedgram.db" "$PB" "$N" | jq -r .msg_per_s
    "$SGBENCH" check "$W/a/securedgram.db" "$W/b/securedgram.db" "$N" >&2 ||
        { say "FAIL: messages lost, duplicated or stuck (sqlite run $1)"; exit 1; }
    stop a; stop b
}

# run_pg R K: K daemons (1 or 2) on PostgreSQL -> B, msg/s on stdout
run_pg() {
    fresh_pg
    peer b "$PB"; start b
    peer a1 "$PA" "$URI"; start a1
    [ "$2" -lt 2 ] || { peer a2 "$PA2" "$URI"; start a2; }
    pq -c "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
           SELECT '127.0.0.1', $PB, '{\"content\":\"bench row ' || n || '\"}' FROM generate_series(1, $N) n" \
       -c "NOTIFY securedgram_outbound" > /dev/null
    t0=$(now_ns)
    pq -c "DO \$\$ BEGIN LOOP EXIT WHEN (SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged') >= $N;
           PERFORM pg_sleep(0.005); END LOOP; END \$\$" > /dev/null
    t1=$(now_ns)
    echo $((N * 1000000000 / (t1 - t0)))
    [ "$(pq -c "SELECT count(*) FROM outbound_messages WHERE state <> 'acknowledged'")" = 0 ] ||
        { say "FAIL: rows not acknowledged (pg x$2 run $1)"; exit 1; }
    once_in_b
    if [ "$2" -ge 2 ]; then
        pq -c "SELECT string_agg(c::text, ' ') FROM (SELECT count(*) c FROM outbound_messages
               GROUP BY split_part(claimed_by, ':', 2) ORDER BY 1 DESC) s" > "$W/share.$1"
        stop a2
    fi
    stop a1; stop b
}

# run_inbound R: A (SQLite) -> B on PostgreSQL, msg/s
run_inbound() {
    fresh_pg
    peer a "$PA"; peer b "$PB" "$URI"
    start a; start b
    "$SGBENCH" throughput "$W/a/securedgram.db" "$PB" "$N" | jq -r .msg_per_s
    [ "$(pq -c "SELECT count(*) || ' ' || count(DISTINCT message_id) FROM inbound_messages")" = "$N $N" ] ||
        { say "FAIL: B on PostgreSQL did not store each row once (inbound run $1)"; exit 1; }
    stop a; stop b
}

PA=$(port); PA2=$(port); PB=$(port)
say "== PostgreSQL: throughput, $N rows, $REPS runs each (sqlite, pg x1, pg x2, inbound)"
: > "$W/sq"; : > "$W/p1"; : > "$W/p2"; : > "$W/in"
for r in $(seq 1 "$REPS"); do
    run_sqlite "$r" >> "$W/sq"
    run_pg "$r" 1 >> "$W/p1"
    run_pg "$r" 2 >> "$W/p2"
    run_inbound "$r" >> "$W/in"
    say "   run $r: sqlite $(tail -n 1 "$W/sq"), pg x1 $(tail -n 1 "$W/p1"), pg x2 $(tail -n 1 "$W/p2") (rows each: $(cat "$W/share.$r")), inbound $(tail -n 1 "$W/in") msg/s"
done
SQ=$(median < "$W/sq") P1=$(median < "$W/p1") P2=$(median < "$W/p2") IN=$(median < "$W/in")

say "== PostgreSQL: insert -> acknowledged, one at a time"
peer a "$PA"; peer b "$PB"; start a; start b
"$SGBENCH" latency "$W/a/securedgram.db" "$PB" 30 > /dev/null
"$SGBENCH" latency "$W/a/securedgram.db" "$PB" 300 > "$W/lat_sq"
stop a; stop b
fresh_pg
peer b "$PB"; start b
peer a1 "$PA" "$URI"; start a1
pq -c "CREATE TABLE bench_lat (ms float8)" > /dev/null
pq -c "DO \$\$ DECLARE rid bigint; t0 timestamptz; BEGIN
         FOR i IN 1..330 LOOP
           INSERT INTO outbound_messages (dst_addr, dst_port, payload)
             VALUES ('127.0.0.1', $PB, '{\"content\":\"latency probe\"}') RETURNING id INTO rid;
           PERFORM pg_notify('securedgram_outbound', '');
           COMMIT;
           t0 := clock_timestamp();
           LOOP
             EXIT WHEN (SELECT state FROM outbound_messages WHERE id = rid) = 'acknowledged';
             IF clock_timestamp() - t0 > interval '10 s' THEN RAISE EXCEPTION 'row % not acknowledged in 10 s', rid; END IF;
             PERFORM pg_sleep(0.0002);
           END LOOP;
           IF i > 30 THEN INSERT INTO bench_lat VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000); END IF;
           COMMIT;
         END LOOP; END \$\$" > /dev/null
LAT_PG=$(pq -c "SELECT json_build_object('n', count(*), 'p50_ms', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
                  'p99_ms', round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3)) FROM bench_lat")
stop a1; stop b
L_SQ50=$(jq .p50_ms "$W/lat_sq") L_SQ99=$(jq .p99_ms "$W/lat_sq")
L_PG50=$(echo "$LAT_PG" | jq .p50_ms) L_PG99=$(echo "$LAT_PG" | jq .p99_ms)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo
echo "PostgreSQL against SQLite (medians of $REPS runs, $N rows; latency of 300 messages)"
printf '%-42s %12s %12s %8s\n' "figure" "PostgreSQL" "SQLite" "ratio"
printf '%-42s %12s %12s %8s\n' "throughput, one daemon (msg/s)" "$P1" "$SQ" "$(ratio "$P1" "$SQ")"
printf '%-42s %12s %12s %8s\n' "throughput, two daemons on one queue" "$P2" "$SQ" "$(ratio "$P2" "$SQ")"
printf '%-42s %12s %12s %8s\n' "inbound: stored by a receiver (msg/s)" "$IN" "$SQ" "$(ratio "$IN" "$SQ")"
printf '%-42s %12s %12s %8s\n' "insert -> acknowledged p50 (ms)" "$L_PG50" "$L_SQ50" "$(ratio "$L_PG50" "$L_SQ50")"
printf '%-42s %12s %12s %8s\n' "insert -> acknowledged p99 (ms)" "$L_PG99" "$L_SQ99" "$(ratio "$L_PG99" "$L_SQ99")"

PG=$(jq -n --argjson sq "$SQ" --argjson p1 "$P1" --argjson p2 "$P2" --argjson in "$IN" \
    --argjson lsq "$(cat "$W/lat_sq")" --argjson lpg "$LAT_PG" --argjson reps "$REPS" --argjson n "$N" \
    '{n: $n, reps: $reps, throughput_msg_per_s: {sqlite: $sq, pg_one: $p1, pg_two: $p2, pg_inbound: $in},
      ratio_to_sqlite: {pg_one: ($p1 / $sq), pg_two: ($p2 / $sq), pg_inbound: ($in / $sq)},
      insert_to_ack_ms: {sqlite: $lsq, pg: $lpg}}')
if [ -s "$OUT" ] && jq -e . "$OUT" > /dev/null 2>&1; then
    jq --argjson p "$PG" '.pg = $p' "$OUT" > "$W/out.json"
else
    jq -n --argjson p "$PG" '{pg: $p}' > "$W/out.json"
fi
cat "$W/out.json" > "$OUT"
echo "results: $OUT (pg)"
