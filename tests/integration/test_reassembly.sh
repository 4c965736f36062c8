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
FLOOD_LEN=1000000 # bytes of each (a message of 878 parts of 1,140; room taken: 1,000,110)
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

# rows TAG N PAD: N rows from a to peer b (one transaction), each with PAD bytes of padding;
# sets F and L to the first and last row ids.
rows() {
    q a "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $2)
         INSERT INTO outbound_messages (peer, dst_addr, dst_port, payload)
         SELECT 'b', '', 0, json_object('t', '$1', 'n', n,
                'pad', substr(replace(hex(randomblob(($3 + 1) / 2)), '0', 'x'), 1, $3)) FROM s;
         SELECT (max(id) - $2 + 1) || ' ' || max(id) FROM outbound_messages" > "$T/ids"
    read -r F L < "$T/ids"
}
# delivered TAG N FIRST LAST SECS: rows FIRST..LAST acknowledged within SECS; b stored
# each exactly once, its payload byte for byte as a sent it.
delivered() {
    wait_for "$5" "$1: $2 rows acknowledged" count_is a \
        "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $3 AND $4 AND state='acknowledged'" "$2"
    assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages
                      WHERE json_extract(payload, '\$.t') = '$1'")" "$2|$2" "$1: b stored each row once"
    q a "SELECT message_id, hex(sha3(payload)) FROM outbound_messages WHERE id BETWEEN $3 AND $4 ORDER BY 1" > "$T/sent_ids"
    q b "SELECT message_id, hex(sha3(payload)) FROM inbound_messages WHERE json_extract(payload, '\$.t') = '$1' ORDER BY 1" > "$T/recv_ids"
    cmp -s "$T/sent_ids" "$T/recv_ids" || fail "$1: b stored other messages than a sent"
}

# a's rows go in batches of one kind, the small ones before the large ones, each batch
# once the one before is ACKed. Not for the receiver: a sender bug (not reassembly's)
# leaves rows pending for good when they are claimed while a's flow window to b is full
# of parts in flight, which a batch of small rows committed after large ones does (the
# destination is blocked in dests_admit, and never unblocked: txparts frees the window
# with flow_done, bypassing dests_release, which alone takes it off the blocked list).
T0=$(date +%s%N)
# 0. Before the flood: a's messages in parts get through; what b holds and its RSS at rest.
rows warm 2 500000
delivered warm 2 "$F" "$L" 10
counters
assert_eq "$(field reassembly_bytes)" 0 "reassembly_bytes after a's messages were stored"
rss0=$(rss)

# 1. The flood, and while it lasts a's messages (30 small ones, then 4 of ~500 KB) and a
# one-part message of mallory's; reassembly_bytes and b's RSS sampled until it ends.
FT0=$(date +%s%N)
as_mallory parts-flood "$FLOOD" "$FLOOD_LEN" 1140 "$FLOOD_RATE" > "$T/flood" &
FPID=$!
wait_for 5 "b to take mallory's first parts" sh -c \
    "cd '$T/b' && '$SG_BIN/securedgram' status | grep -q 'parts_received=[1-9]'"
rows duringsmall 30 100; FS=$F; LS=$L
MID=$(newid)
as_mallory parts-send "$MID" 200 > "$T/mallory_small" ||
    fail "mallory's one-part message during the flood: $(cat "$T/mallory_small")"
# acked COUNT FIRST LAST: a has COUNT of rows FIRST..LAST acknowledged.
acked() { count_is a "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $2 AND $3 AND state = 'acknowledged'" "$1"; }
# a's small rows first, its large ones once those are ACKed: see the note on a's rows above.
samples=0 maxbytes=0 maxrss=$rss0 stage=small
while alive "$FPID"; do
    counters
    b=$(field reassembly_bytes) r=$(rss)
    [ "$b" -gt "$maxbytes" ] && maxbytes=$b
    [ "$r" -gt "$maxrss" ] && maxrss=$r
    samples=$((samples + 1))
    case $stage in
    small) if acked 30 "$FS" "$LS"; then rows during 4 500000; FB=$F; LB=$L; stage=large; fi ;;
    large) if acked 4 "$FB" "$LB" && alive "$FPID"; then
               stage="after $(( ($(date +%s%N) - FT0) / 1000000 )) ms"
           fi ;;
    esac
    sleep 0.05 # a sampling interval, not a wait for anything
done
wait "$FPID" || fail "sgtest parts-flood exited with status $?"
[ "$samples" -ge 5 ] || fail "only $samples samples of reassembly_bytes during the flood"
read -r _ sent _ part_acks _ flood_ms < "$T/flood"
assert_eq "$sent" "$FLOOD" "first parts mallory sent"
# The flood lasts about 2 s, a's 34 messages take a fraction of that: they went through it.
case $stage in
small | large) fail "a's messages were not all acknowledged while the flood lasted (at: $stage)" ;;
esac
delivered duringsmall 30 "$FS" "$LS" 1
delivered during 4 "$FB" "$LB" 1
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id = '$MID' AND peer = 'mallory'")" 1 \
    "mallory's one-part message stored"
note "during a flood of $FLOOD partial 1 MB messages from mallory ($flood_ms ms, $part_acks part ACKs back): a's 30 small ones and 4 of 500 KB stored and ACKed ($stage), and mallory's one-part one"

# 2. After the flood: a's messages still get through, and so does a whole message of
# mallory's in parts (its room evicts mallory's last partial one).
rows aftersmall 10 100
delivered aftersmall 10 "$F" "$L" 20
rows after 2 500000
delivered after 2 "$F" "$L" 20
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
