#!/bin/sh
# make bench's lossy part (also alone: make bench-lossy). Two daemons that know each
# other as wire 2 peers (a peers file, pair key), a at 127.0.0.2 and b at 127.0.0.3,
# talk through sgrelay (tests/tools/sgrelay.c): a sends to the relay at 127.0.0.10,
# which sends on to b from 127.0.0.11 and carries b's ACKs back; 25 ms of delay each
# way (RTT 50 ms), the same loss each way. Fresh daemons and relay for each case.
#   burst       LOSSY_N (5,000) small rows inserted at once: msg/s from their commit
#               until the last is acknowledged, and p50/p99 of each row's own stamps
#               (ack_received_at - created_at, both ms): these include the wait behind
#               the rest of the burst (the window's slow start alone takes ~6 RTTs)
#   paced       LOSSY_PACED_N (1,000) rows, one transaction each, LOSSY_PACED_RATE a
#               second (250): p50/p99 of their stamps on a lightly loaded pair, what a
#               lost datagram or ACK costs a message; the p99 goal is checked on these
#   1 MiB       one row of LOSSY_BIG_BYTES (1,040,000; a JSON object, under
#               SECUREDGRAM_MAX_MESSAGE with the message_id the daemon adds) through a
#               relay capped at LOSSY_RATE bytes/s (10 MB/s) both ways, at 0% and 1%
#               loss: commit -> acknowledged over the ideal, size / rate + one RTT;
#               a row that fails or times out is "n/a (its last_error)", not an error
# Goals (printed as goal met / goal missed; in results.json under "lossy"):
#   at 1% loss, paced p99 <= 4 x RTT (200 ms); 1 MiB at 1% loss within 2 x the ideal.
# A missed goal exits 2, as the other targets do (LOSSY_ENFORCE=0: only printed). Exits 1
# if a message was lost, duplicated or stuck.
# LOSSY_POLICY sets SECUREDGRAM_RETRY_POLICY (fixed|adaptive|auto) on both daemons;
# unset: nothing is set, the daemon's default. LOSSY_ENV: more .env lines for both.
set -eu
: "${BIN:?}" "${SGBENCH:?}" "${SGTEST:?}" "${SG_RELAY:?}"
BIN=$(realpath "$BIN"); SGBENCH=$(realpath "$SGBENCH"); SGTEST=$(realpath "$SGTEST")
SG_RELAY=$(realpath "$SG_RELAY")
OUT=${OUT:-bench/results.json}
LOSSY_ENFORCE=${LOSSY_ENFORCE:-1} # 0: a missed goal is printed, and does not exit 2
LOSSY_POLICY=${LOSSY_POLICY:-}
LOSSY_ENV=${LOSSY_ENV:-}
LOSSES=${LOSSY_LOSSES-0 1 5}     # percent, each way (empty: only the 1 MiB cases)
N=${LOSSY_N:-5000}
PN=${LOSSY_PACED_N:-1000}
PRATE=${LOSSY_PACED_RATE:-250}
BIG=${LOSSY_BIG_BYTES:-1040000}
RATE=${LOSSY_RATE:-10000000}     # bytes of UDP payload per second, each way
DELAY=25                         # ms each way
RTT_MS=$((2 * DELAY))
# Datagrams the relay holds per direction, those waiting out their delay included. Without
# a rate cap there is no bottleneck to queue at: the limit is above what the daemon can
# have in flight (8,192 messages and their ACKs), and no datagram is dropped for room
# (with sgrelay's default of 1,000, a burst's window of ~2,000 lost hundreds at 0% loss).
# With the cap it is the bottleneck's buffer: 1,000 datagrams, ~0.14 s at 10 MB/s.
QUEUE=${LOSSY_QUEUE:-20000}
BIG_QUEUE=${LOSSY_BIG_QUEUE:-1000}
SEED=${LOSSY_SEED:-1}
WAIT_BURST=45 WAIT_PACED=40 WAIT_BIG=30 # seconds: each case's deadline
RELAY_SECS=150                   # a relay's own limit (--max-seconds), above any case
W=$(mktemp -d /var/tmp/sglossy.XXXXXX)
# Every SECUREDGRAM_* of the caller's environment, so that only the .env files count.
for v in $(env | sed -n 's/^\(SECUREDGRAM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# Everything started is stopped on exit: relays (SIGTERM, their pid files), daemons
# (securedgram stop, bounded; then SIGKILL).
cleanup() {
    for pf in "$W"/*.relay.pid; do
        [ -f "$pf" ] && kill -TERM "$(cat "$pf")" 2>/dev/null || true
    done
    for d in "$W"/*/; do
        [ -f "$d/securedgram.pid" ] || continue
        p=$(cat "$d/securedgram.pid" 2>/dev/null || true)
        (cd "$d" && timeout 20 "$BIN/securedgram" stop >/dev/null 2>&1) || true
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
port() { "$SGTEST" freeport; }
PAIRKEY=$("$BIN/securedgram" keygen)

# pair: fresh daemons a and b on new ports, each the other's wire 2 peer; a's rows to
# the relay (127.0.0.10:$PR) are sealed for b, and b takes a's datagrams from the
# relay's source address 127.0.0.11 (its ACKs go back to where the datagram came from).
pair() {
    PA=$(port); PB=$(port); PR=$(port)
    for n in a b; do
        rm -rf "${W:?}/$n"
        mkdir -p "$W/$n"
        if [ "$n" = a ]; then addr=127.0.0.2 p=$PA; else addr=127.0.0.3 p=$PB; fi
        {
            printf 'SECUREDGRAM_ADDRESS=%s\nSECUREDGRAM_PORT=%s\n' "$addr" "$p"
            printf 'SECUREDGRAM_LOG=%s\nSECUREDGRAM_USER=%s\n' "$W/$n/daemon.log" "$(id -un)"
            printf 'SECUREDGRAM_PEERS=%s\nSECUREDGRAM_NAME=%s\n' "$W/$n/peers" "$n"
            [ -z "$LOSSY_POLICY" ] || printf 'SECUREDGRAM_RETRY_POLICY=%s\n' "$LOSSY_POLICY"
            # shellcheck disable=SC2086 # one line per word
            [ -z "$LOSSY_ENV" ] || printf '%s\n' $LOSSY_ENV
        } > "$W/$n/.env"
        chmod 600 "$W/$n/.env"
    done
    printf '[peer b]\nendpoint = 127.0.0.10:%s\nkey = %s\n' "$PR" "$PAIRKEY" > "$W/a/peers"
    printf '[peer a]\nallowed = 127.0.0.11\nkey = %s\n' "$PAIRKEY" > "$W/b/peers"
    chmod 600 "$W/a/peers" "$W/b/peers"
    for n in a b; do
        (cd "$W/$n" && timeout 20 "$BIN/securedgram" start) ||
            { say "FAIL: daemon $n did not start"; tail -n 5 "$W/$n/daemon.log" >&2 || true; exit 1; }
    done
}
unpair() {
    for n in a b; do
        (cd "$W/$n" && timeout 20 "$BIN/securedgram" stop >/dev/null) || {
            kill -9 "$(cat "$W/$n/securedgram.pid")" 2>/dev/null || true
        }
    done
}

# relay NAME QUEUE OPTIONS...: sgrelay from 127.0.0.10:$PR to b, bounded in time and
# datagrams; returns once it is bound. unrelay NAME stops it and waits for its stats.
relay() {
    n=$1 q=$2
    shift 2
    rm -f "$W/$n.ready" "$W/$n.stats"
    "$SG_RELAY" --max-seconds "$RELAY_SECS" --max-packets 5000000 --queue "$q" \
        --seed "$SEED" --delay "$DELAY" --ready "$W/$n.ready" --stats "$W/$n.stats" "$@" \
        --source 127.0.0.11 "127.0.0.10:$PR" "127.0.0.3:$PB" &
    echo $! > "$W/$n.relay.pid"
    i=0
    while [ ! -f "$W/$n.ready" ]; do
        i=$((i + 1))
        [ "$i" -le 500 ] || { say "FAIL: relay $n did not bind"; exit 1; }
        kill -0 "$(cat "$W/$n.relay.pid")" 2>/dev/null || { say "FAIL: relay $n exited"; exit 1; }
        sleep 0.01
    done
}
unrelay() {
    pid=$(cat "$W/$1.relay.pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || { say "FAIL: relay $1 exited with status $?"; exit 1; }
    rm -f "$W/$1.relay.pid"
    [ -f "$W/$1.stats" ] || { say "FAIL: relay $1 wrote no stats"; exit 1; }
}

# policy_note: the retry policy the daemons run with, as daemon a reports it: SIGHUP makes the
# daemon re-read .env (unchanged) and log its running configuration, retry policy
# included. Done once, on an idle pair, before any traffic. A daemon that logs no
# policy is reported as such, one that does not know the setting as ignoring it.
policy_note() {
    set_to=${LOSSY_POLICY:-not set}
    log=$W/a/daemon.log
    kill -HUP "$(cat "$W/a/securedgram.pid")"
    i=0
    while ! grep -q "configuration reloaded\|reload refused" "$log" 2>/dev/null && [ "$i" -lt 300 ]; do
        i=$((i + 1))
        sleep 0.01
    done
    said=$(sed -n 's/.*configuration reloaded (.*\(retry policy [^,]*\),.*/\1/p' "$log" | tail -n 1)
    if [ -n "$said" ]; then
        echo "$set_to; the daemon logs: $said"
    elif grep -q "SECUREDGRAM_RETRY_POLICY is not a securedgram setting" "$log" 2>/dev/null; then
        echo "$set_to (ignored: not a setting of this daemon)"
    else
        echo "$set_to (the daemon does not log it)"
    fi
}
relay_note() {
    jq -r '"relay: lost ab \(.ab.dropped_loss)/\(.ab.received), ba \(.ba.dropped_loss)/\(.ba.received); queue drops \(.ab.dropped_queue)/\(.ba.dropped_queue); most late \(.ab.late_us)/\(.ba.late_us) us"' "$1"
}

say "== lossy: wire 2 peers through sgrelay, ${DELAY} ms each way (RTT ${RTT_MS} ms), loss each way: $LOSSES %"
T_START=$(date +%s%N)
: > "$W/cases"
POLICY=""
for L in $LOSSES; do
    pair
    [ -n "$POLICY" ] || { POLICY=$(policy_note); say "   retry policy: $POLICY"; }
    relay "loss$L" "$QUEUE" --loss "$L"
    "$SGBENCH" rows "$W/a/securedgram.db" 127.0.0.10 "$PR" "$N" 0 "$WAIT_BURST" > "$W/burst.$L"
    "$SGBENCH" rows "$W/a/securedgram.db" 127.0.0.10 "$PR" "$PN" "$PRATE" "$WAIT_PACED" > "$W/paced.$L"
    unrelay "loss$L"
    say "   loss $L%: burst $(jq -c . "$W/burst.$L")"
    say "            paced $(jq -c . "$W/paced.$L")"
    say "            $(relay_note "$W/loss$L.stats")"
    if [ "$(jq '.open' "$W/burst.$L")" != 0 ] || [ "$(jq '.open' "$W/paced.$L")" != 0 ]; then
        say "FAIL: loss $L%: rows still open after the deadline"; exit 1
    fi
    "$SGBENCH" check "$W/a/securedgram.db" "$W/b/securedgram.db" $((N + PN)) ||
        { say "FAIL: loss $L%: messages lost, duplicated or failed"; exit 1; }
    [ "$(sqlite3 -cmd ".timeout 5000" "$W/b/securedgram.db" "SELECT count(*) FROM inbound_messages WHERE peer = 'a'")" = $((N + PN)) ] ||
        { say "FAIL: loss $L%: B's rows do not all name peer a"; exit 1; }
    jq -n --argjson loss "$L" --slurpfile b "$W/burst.$L" --slurpfile p "$W/paced.$L" \
        --slurpfile r "$W/loss$L.stats" '{loss_pct: $loss, burst: $b[0], paced: $p[0], relay: $r[0]}' \
        >> "$W/cases"
    unpair
done

# The 1 MiB message: through a relay capped at RATE both ways, at 0% and 1% loss.
: > "$W/bigs"
IDEAL=$(awk -v b="$BIG" -v r="$RATE" -v rtt="$RTT_MS" 'BEGIN {printf "%.4f", b / r + rtt / 1000}')
for L in 0 1; do
    pair
    relay "big$L" "$BIG_QUEUE" --loss "$L" --rate "$RATE"
    "$SGBENCH" big "$W/a/securedgram.db" 127.0.0.10 "$PR" "$BIG" "$WAIT_BIG" > "$W/big.$L"
    unrelay "big$L"
    state=$(jq -r '.state' "$W/big.$L")
    if [ "$state" = acknowledged ]; then
        got=$(sqlite3 -cmd ".timeout 5000" "$W/a/securedgram.db" "ATTACH '$W/b/securedgram.db' AS b;
               SELECT count(*), sum(i.message_id = o.message_id AND length(i.payload) >= $BIG)
               FROM b.inbound_messages i, main.outbound_messages o" 2>&1 || true)
        [ "$got" = "1|1" ] ||
            { say "FAIL: 1 MiB at $L%: acknowledged, but B holds (rows|the same id and size): $got"; exit 1; }
        ratio=$(jq --argjson i "$IDEAL" '.seconds / $i * 100 | round / 100' "$W/big.$L")
        txt="$(jq -r '.seconds' "$W/big.$L") s, $ratio x ideal"
    else
        ratio=null
        if [ "$(jq '.timed_out' "$W/big.$L")" = true ]; then
            txt="n/a (not acknowledged in $WAIT_BIG s: $state)"
        else
            txt="n/a ($(jq -r '.last_error // "no error"' "$W/big.$L"))"
        fi
    fi
    echo "$txt" > "$W/bigtxt.$L"
    say "   1 MiB at $L% loss, $RATE bytes/s: $(jq -c . "$W/big.$L")"
    say "            $(relay_note "$W/big$L.stats")"
    jq -n --argjson loss "$L" --argjson rate "$RATE" --argjson ideal "$IDEAL" --argjson ratio "$ratio" \
        --slurpfile b "$W/big.$L" --slurpfile r "$W/big$L.stats" \
        '{loss_pct: $loss, rate_bytes_per_s: $rate, ideal_s: $ideal, result: $b[0],
          ratio_to_ideal: $ratio, relay: $r[0]}' >> "$W/bigs"
    unpair
done
WALL=$(( ($(date +%s%N) - T_START) / 1000000 ))

# The goals, from the 1% loss runs (a case not run counts as missed).
P99_1=$(jq -s 'map(select(.loss_pct == 1))[0].paced.p99_ms // null' "$W/cases")
BIG_1=$(jq -s 'map(select(.loss_pct == 1))[0].ratio_to_ideal // null' "$W/bigs")
met() { [ "$1" != null ] && awk "BEGIN { exit !($1 $2) }"; }
if met "$P99_1" "<= 4 * $RTT_MS"; then G1=true; else G1=false; fi
if met "$BIG_1" "<= 2"; then G2=true; else G2=false; fi

LOSSY=$(jq -n --argjson rtt "$RTT_MS" --argjson delay "$DELAY" --arg policy "$POLICY" \
    --arg setting "$LOSSY_POLICY" --argjson seed "$SEED" --argjson queue "$QUEUE" --argjson big_queue "$BIG_QUEUE" \
    --argjson wall "$WALL" --argjson enforce "$([ "$LOSSY_ENFORCE" = 1 ] && echo true || echo false)" \
    --argjson p99 "$P99_1" --argjson big "$BIG_1" --argjson g1 "$G1" --argjson g2 "$G2" \
    --slurpfile cases "$W/cases" --slurpfile bigs "$W/bigs" '
    {rtt_ms: $rtt, delay_ms_each_way: $delay,
     retry_policy: (if $setting == "" then null else $setting end), retry_policy_note: $policy,
     relay_seed: $seed, relay_queue: $queue, relay_queue_capped: $big_queue, wall_ms: $wall,
     cases: $cases, big: $bigs,
     goals: {paced_p99_at_1pct_ms: {value: $p99, target: (4 * $rtt), met: $g1},
             big_at_1pct_ratio_to_ideal: {value: $big, target: 2, met: $g2}},
     enforced: $enforce}')
if [ -s "$OUT" ] && jq -e . "$OUT" >/dev/null 2>&1; then
    jq --argjson l "$LOSSY" '.lossy = $l' "$OUT" > "$W/out.json"
else
    jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson l "$LOSSY" '{date: $date, lossy: $l}' > "$W/out.json"
fi
cat "$W/out.json" > "$OUT"

row() {
    line=$(printf '%-44s' "$1")
    for L in $LOSSES; do line="$line$(printf ' %14s' "$(jq -s -r --argjson l "$L" "map(select(.loss_pct == \$l))[0] | $2" "$W/cases")")"; done
    echo "$line"
}
ms() { echo "(.$1.$2 // \"-\" | if type == \"number\" then (. * 10 | round / 10) else . end)"; }
echo
echo "securedgram through a lossy relay: wire 2 peers, ${DELAY} ms each way (RTT ${RTT_MS} ms); retry policy: $POLICY"
row "figure (loss each way)" '"\(.loss_pct) %"'
row "burst of $N at once (msg/s)" '.burst.msg_per_s'
row "burst: insert -> acknowledged p50 (ms)" "$(ms burst p50_ms)"
row "burst: insert -> acknowledged p99 (ms)" "$(ms burst p99_ms)"
row "paced $PN at $PRATE/s: insert -> ack p50 (ms)" "$(ms paced p50_ms)"
row "paced: insert -> acknowledged p99 (ms)" "$(ms paced p99_ms)"
row "paced: insert -> acknowledged max (ms)" "$(ms paced max_ms)"
row "retransmissions, burst + paced" '.burst.retransmissions + .paced.retransmissions'
row "relay: lost a->b / b->a" '"\(.relay.ab.dropped_loss) / \(.relay.ba.dropped_loss)"'
row "relay: queue drops a->b / b->a" '"\(.relay.ab.dropped_queue) / \(.relay.ba.dropped_queue)"'
CAP="$BIG B at $(awk -v r="$RATE" 'BEGIN {print r / 1e6}') MB/s"
printf '%-44s %s\n' "1 MiB ($CAP), 0 % loss" "$(cat "$W/bigtxt.0") (ideal $IDEAL s)"
printf '%-44s %s\n' "1 MiB ($CAP), 1 % loss" "$(cat "$W/bigtxt.1")"
goal() { if [ "$1" = true ]; then echo "goal met"; else echo "goal missed"; fi; }
echo "goal: at 1 % loss, paced p99 <= $((4 * RTT_MS)) ms (4 x RTT): $P99_1 ms: $(goal "$G1")"
echo "goal: 1 MiB at 1 % loss within 2 x ideal ($IDEAL s): $(cat "$W/bigtxt.1"): $(goal "$G2")"
echo "lossy part: $((WALL / 1000)) s; results: $OUT (\"lossy\")"
if [ "$LOSSY_ENFORCE" = 1 ]; then
    [ "$G1" = true ] && [ "$G2" = true ] || exit 2
else
    [ "$G1" = true ] && [ "$G2" = true ] || echo "(LOSSY_ENFORCE=0: a missed goal does not exit 2)"
fi
exit 0
