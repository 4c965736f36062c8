# A keyholder flooding partial messages cannot push reassembly memory past its bound, and
# complete messages from others still get through (docs/wire.md, "Bounds").
#
# b (127.0.0.3) holds at most SECUREDGRAM_REASSEMBLY_MEMORY=4M of messages being put
# together, a quarter (1 MiB) per peer, messages of at most SECUREDGRAM_MAX_MESSAGE=1M.
# Its peers file names two version 2 peers: a (127.0.0.2), a real daemon, and mallory
# (127.0.0.7), a keyholder with no daemon: sgtest seals as mallory with K(mallory->b).
#   - mallory sends the first part (only) of 3,000 messages of 1,000,000 bytes each, a
#     fresh id each: room for a whole message is taken at its first part, so each one
#     evicts mallory's own previous one (a peer over its quarter evicts its own oldest);
#   - meanwhile, and after, a sends small messages and messages of ~500 KB (in parts):
#     every one is stored once, byte for byte, and acknowledged, those sent during the
#     flood before it ends;
#   - meanwhile mallory's own one-part message is stored (it needs no reassembly), and
#     after the flood a complete message of mallory's in parts is stored too;
#   - reassembly_bytes, sampled all through, never passes the two peers' quarters (so
#     never 4 MiB); reassembly_evicted counts the flood; b's RSS stays bounded.
# The 30 s age-out of an incomplete message is checked only with REASM_AGEOUT=1 (it makes
# the test take over 30 s; tests/unit/test_reasm.c checks it with a clock of its own).
. "$(dirname "$0")/lib.sh"

MIB=1048576
MALLORY=127.0.0.7
FLOOD=${FLOOD:-3000}           # partial messages mallory starts
FLOOD_RATE=${FLOOD_RATE:-$((1500 / SLOW))} # first parts a second: the flood lasts about 2 s
FLOOD_LEN=1000000 # bytes of each (a message of 878 parts of 1,140), the room each one takes
PA=$(freeport); PB=$(freeport)
KAB=$(sg keygen); KMB=$(sg keygen)
mkpeer a "$PA" "$SECRET" 127.0.0.2
mkpeer b "$PB" "$SECRET" 127.0.0.3
for n in a b; do
    printf 'SECUREDGRAM_PEERS=%s\nSECUREDGRAM_NAME=%s\nSECUREDGRAM_MAX_RETRIES=100\n' "$T/$n/peers" "$n" >> "$T/$n/.env"
done
printf 'SECUREDGRAM_MAX_MESSAGE=1M\nSECUREDGRAM_REASSEMBLY_MEMORY=4M\n' >> "$T/b/.env"
printf '[peer b]\nendpoint = 127.0.0.3:%s\nkey = %s\n' "$PB" "$KAB" > "$T/a/peers"
printf '[peer a]\nendpoint = 127.0.0.2:%s\nkey = %s\n\n[peer mallory]\nallowed = %s\nkey = %s\n' \
    "$PA" "$KAB" "$MALLORY" "$KMB" > "$T/b/peers"
chmod 600 "$T/a/peers" "$T/b/peers"
start a
(cd "$T/b" && sg start) # the default level: -v would log a line per message
PID=$(cat "$T/b/securedgram.pid")

# counters: b's counters line from `securedgram status`, one NAME=VALUE a line, in $T/counters.
counters() {
    (cd "$T/b" && sg status) > "$T/status" || fail "securedgram status failed: $(cat "$T/status")"
    sed -n 's/^counters: //p' "$T/status" | tr ' ' '\n' > "$T/counters"
    grep -q '^reassembly_bytes=' "$T/counters" || fail "no reassembly_bytes in: $(cat "$T/status")"
}
field() { sed -n "s/^$1=//p" "$T/counters"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
# as_mallory ARGS...: sgtest parts-send/parts-flood to b as mallory, from mallory's address.
as_mallory() {
    cmd=$1
    shift
    SGTEST_SRC=$MALLORY sgtest "$cmd" 127.0.0.3 "$PB" "$KMB" mallory b "$@"
}

T0=$(date +%s%N)
# 0. Before the flood: a's messages in parts get through; what b holds and its RSS at rest.
rows a warm 2 500000 b
delivered a b warm "$F" "$L" 10
counters
assert_eq "$(field reassembly_bytes)" 0 "reassembly_bytes after a's messages were stored"
rss0=$(rss)

# 1. The flood, and while it lasts a's messages (4 of ~500 KB and 30 small ones, queued
# together) and a one-part message of mallory's; reassembly_bytes and b's RSS sampled
# until it ends.
FT0=$(date +%s%N)
as_mallory parts-flood "$FLOOD" "$FLOOD_LEN" 1140 "$FLOOD_RATE" > "$T/flood" &
FPID=$!
wait_for 5 "b to take mallory's first parts" sh -c \
    "cd '$T/b' && '$SG_BIN/securedgram' status | grep -q 'parts_received=[1-9]'"
rows a during 4 500000 b; FB=$F; LB=$L
rows a duringsmall 30 100 b; FS=$F; LS=$L
MID=$(newid)
as_mallory parts-send "$MID" 200 > "$T/mallory_small" ||
    fail "mallory's one-part message during the flood: $(cat "$T/mallory_small")"
# acked FIRST LAST: a has every row FIRST..LAST acknowledged.
acked() { count_is a "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $1 AND $2 AND state = 'acknowledged'" $(($2 - $1 + 1)); }
samples=0 maxbytes=0 maxrss=$rss0 stage=waiting
while alive "$FPID"; do
    counters
    b=$(field reassembly_bytes) r=$(rss)
    [ "$b" -gt "$maxbytes" ] && maxbytes=$b
    [ "$r" -gt "$maxrss" ] && maxrss=$r
    samples=$((samples + 1))
    if [ "$stage" = waiting ] && acked "$FS" "$LS" && acked "$FB" "$LB" && alive "$FPID"; then
        stage="after $(( ($(date +%s%N) - FT0) / 1000000 )) ms"
    fi
    sleep 0.05 # a sampling interval, not a wait for anything
done
wait "$FPID" || fail "sgtest parts-flood exited with status $?"
[ "$samples" -ge 5 ] || fail "only $samples samples of reassembly_bytes during the flood"
read -r _ sent _ part_acks _ flood_ms < "$T/flood"
assert_eq "$sent" "$FLOOD" "first parts mallory sent"
# The flood lasts about 2 s, a's 34 messages take a fraction of that: they went through it.
[ "$stage" != waiting ] || fail "a's messages were not all acknowledged while the flood lasted"
delivered a b duringsmall "$FS" "$LS" 1
delivered a b during "$FB" "$LB" 1
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id = '$MID' AND peer = 'mallory'")" 1 \
    "mallory's one-part message stored"
note "during a flood of $FLOOD partial 1 MB messages from mallory ($flood_ms ms, $part_acks part ACKs back): a's 30 small ones and 4 of 500 KB stored and ACKed ($stage), and mallory's one-part one"

# 2. After the flood: a's messages still get through, and so does a whole message of
# mallory's in parts (its room evicts mallory's last partial one).
rows a aftersmall 10 100 b
delivered a b aftersmall "$F" "$L" 20
rows a after 2 500000 b
delivered a b after "$F" "$L" 20
MID2=$(newid)
as_mallory parts-send "$MID2" 500000 > "$T/mallory_big" ||
    fail "mallory's message in parts after the flood: $(cat "$T/mallory_big")"
assert_eq "$(q b "SELECT count(*), length(payload) FROM inbound_messages WHERE message_id = '$MID2' AND peer = 'mallory'")" \
    "1|500000" "mallory's 500,000-byte message stored once"
note "after it: a's 10 small ones and 2 of 500 KB stored and ACKed, and mallory's own 500 KB in parts ($(cat "$T/mallory_big"))"

# 3. The figures: memory held within the bounds, the flood evicted, RSS bounded.
counters
evicted=$(field reassembly_evicted) refused=$(field reassembly_refused)
parts=$(field parts_received) bytes=$(field reassembly_bytes)
[ "$maxbytes" -le $((4 * MIB)) ] || fail "reassembly_bytes reached $maxbytes, over SECUREDGRAM_REASSEMBLY_MEMORY"
# Each peer is held to its quarter, complete messages waiting to be stored included, so
# with two peers sending b never holds more than two quarters.
[ "$maxbytes" -le $((2 * MIB)) ] || fail "reassembly_bytes reached $maxbytes, over two peers' quarters"
[ "$maxbytes" -ge "$FLOOD_LEN" ] || fail "reassembly_bytes peaked at $maxbytes: the flood was not held"
[ "$evicted" -gt 1000 ] || fail "reassembly_evicted is $evicted after $FLOOD partial messages"
assert_eq "$bytes" 0 "reassembly_bytes once everything was stored (mallory's last partial message evicted by its whole one)"
grown=$((maxrss - rss0))
[ "$maxrss" -lt 65536 ] || fail "b's RSS reached $maxrss kB (at rest $rss0 kB)"
[ "$grown" -lt 16384 ] || fail "b's RSS grew by $grown kB during the flood (from $rss0 kB)"
note "reassembly_bytes at most $maxbytes in $samples samples (bound $((4 * MIB)), a quarter $MIB), now $bytes; evicted $evicted, refused $refused, parts_received $parts; RSS $rss0 -> $maxrss kB"

# 4. (REASM_AGEOUT=1) A partial message of mallory's ages out 30 s after its only part.
if [ -n "${REASM_AGEOUT:-}" ]; then
    as_mallory parts-flood 1 "$FLOOD_LEN" > /dev/null
    wait_for 5 "b to hold mallory's partial message" sh -c \
        "cd '$T/b' && '$SG_BIN/securedgram' status | grep -q 'reassembly_bytes=$((FLOOD_LEN + 110)) '"
    t1=$(date +%s%N)
    wait_for 40 "mallory's partial message to age out" sh -c \
        "cd '$T/b' && '$SG_BIN/securedgram' status | grep -q 'reassembly_bytes=0 '"
    aged=$(( ($(date +%s%N) - t1) / 1000000 ))
    [ "$aged" -ge 29000 ] || fail "mallory's partial message went after $aged ms, not 30 s"
    counters
    assert_eq "$(field reassembly_evicted)" $((evicted + 1)) "evictions after the age-out"
    note "mallory's partial message aged out after $aged ms, counted (evicted $(field reassembly_evicted))"
fi
note "$(( ($(date +%s%N) - T0) / 1000000 )) ms in all"
stop a; stop b
