# sg-send: every option, the receipt field by field, payload from an argument,
# '-', stdin and --file; message ids as the original takes them (-m in any
# case, a payload id that is not hex left for the daemon to replace); every
# bad input is one ERROR line, exit 1 and no row; the size limit counting what
# the daemon adds, at the byte, against a real daemon; the database found by
# --db, the environment and .env; a file that is not a securedgram database
# left byte for byte as it was (by sg-send and by the daemon); a busy
# database; --wait against a real daemon (acknowledged, send_failed, timeout);
# and --peer NAME (issue 11): the row's peer instead of a destination, the
# receipt, the name checked, exclusive with DST_ADDR DST_PORT, the peer in
# --wait's outcome, and the smaller limit of a version 2 datagram.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

send() { "$SG_BIN/sg-send" "$@"; }
jf() { printf '%s\n' "$1" | jq -r "$2"; }
rows() { q a "SELECT count(*) FROM outbound_messages"; }

# fails_with TEXT CMD...: CMD exits 1 with one stderr line "ERROR: ...TEXT...", no
# stdout, and no outbound row is added (ADDED=1: one row is, for --wait).
fails_with() {
    want=$1
    shift
    before=$(rows)
    expect_error "$want" "$@"
    assert_eq "$(rows)" "$((before + ${ADDED:-0}))" "$*: rows after a failure"
}

P=$(freeport)
DEAD=$(freeport)
mkpeer a "$P"
echo "SECUREDGRAM_MAX_RETRIES=1" >> "$T/a/.env"
start a
stop a
cd "$T/a"

# ---- the receipt, field by field, and the row ----
out=$(send 127.0.0.1 "$DEAD" '{"a":0.1,"b":12345678901234567890}')
ID1=$(jf "$out" .row_id)
expected=$(printf '{\n  "status": "queued",\n  "row_id": %s,\n  "message_id": null,\n  "dst_addr": "127.0.0.1",\n  "dst_port": %s\n}' "$ID1" "$DEAD")
assert_eq "$out" "$expected" "receipt text"
assert_eq "$(jf "$out" 'keys_unsorted | join(",")')" "status,row_id,message_id,dst_addr,dst_port" "receipt keys"
assert_eq "$(jf "$out" '.row_id | type')" number "row_id type"
assert_eq "$(jf "$out" '.dst_port | type')" number "dst_port type"
assert_eq "$(q a "SELECT state || '|' || ifnull(message_id,'NULL') || '|' || dst_addr || '|' || dst_port || '|' || payload FROM outbound_messages WHERE id=$ID1")" \
    "pending|NULL|127.0.0.1|$DEAD|{\"a\":0.1,\"b\":12345678901234567890}" "row 1"
note "receipt is exactly the five keys, pretty-printed; the row is pending and as given"

# Payload with a message_id, no -m: the row gets the payload's id.
M1=$(newid)
out=$(send 127.0.0.1 "$DEAD" "{\"message_id\":\"$M1\",\"x\":1}")
assert_eq "$(jf "$out" .message_id)" "$M1" "receipt message_id from the payload"
assert_eq "$(q a "SELECT message_id FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "$M1" "row message_id from the payload"
# -m and no payload id: the row gets -m, the payload is stored unchanged.
M2=$(newid)
out=$(send -m "$M2" 127.0.0.1 "$DEAD" '{"x":2}')
assert_eq "$(jf "$out" .message_id)" "$M2" "receipt message_id from -m"
assert_eq "$(q a "SELECT message_id || '|' || payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "$M2|{\"x\":2}" "row with -m"
# -m equal to the payload's id is fine; --message-id long form too.
M3=$(newid)
out=$(send --message-id "$M3" 127.0.0.1 "$DEAD" "{\"message_id\":\"$M3\"}")
assert_eq "$(jf "$out" .message_id)" "$M3" "-m equal to the payload id"
note "message_id from the payload, from -m, and both when equal"

# -m in upper or mixed case, with spaces around it: lowercased, as the original does.
M4=$(newid)
out=$(send -m " $(printf '%s' "$M4" | tr a-f A-F) " 127.0.0.1 "$DEAD" '{"x":4}')
assert_eq "$(jf "$out" .message_id)" "$M4" "receipt: -m in uppercase is lowercased"
assert_eq "$(q a "SELECT message_id FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "$M4" "row: -m lowercased"
# ... and the payload may then carry the same id in lowercase.
M5=$(newid)
out=$(send -m "$(printf '%s' "$M5" | tr a-f A-F)" 127.0.0.1 "$DEAD" "{\"message_id\":\"$M5\"}")
assert_eq "$(jf "$out" .message_id)" "$M5" "-m uppercase, payload id lowercase"
# A payload message_id that is not 24 lowercase hex (a UUID, a number, uppercase
# hex), no -m: queued as it is with a NULL row message_id; the receipt says null,
# because the daemon makes the id when it sends (replacing the payload's).
for pid in '"123e4567-e89b-12d3-a456-426614174000"' 42 "\"$(newid | tr a-f A-F)\"" null; do
    out=$(send 127.0.0.1 "$DEAD" "{\"message_id\":$pid,\"k\":1}")
    assert_eq "$(jf "$out" .message_id)" null "receipt for payload message_id $pid"
    assert_eq "$(q a "SELECT ifnull(message_id,'NULL') || '|' || payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" \
        "NULL|{\"message_id\":$pid,\"k\":1}" "row for payload message_id $pid"
done
note "-m in any case is lowercased; a payload id that is not hex is queued, receipt null"

# ---- payload sources ----
out=$(printf '{"src":"dash"}' | send 127.0.0.1 "$DEAD" -)
assert_eq "$(q a "SELECT payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" '{"src":"dash"}' "payload from '-'"
out=$(printf '\n  {"src":"stdin"}\n\n' | send 127.0.0.1 "$DEAD")
assert_eq "$(q a "SELECT payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" '{"src":"stdin"}' "payload from stdin, trimmed"
printf '{\n  "src": "file",\n  "n": [1, 2]\n}\n' > "$T/payload.json"
out=$(send --file "$T/payload.json" 127.0.0.1 "$DEAD")
assert_eq "$(q a "SELECT payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "$(printf '{\n  "src": "file",\n  "n": [1, 2]\n}')" "payload from --file"
out=$(send -f "$T/payload.json" 127.0.0.1 "$DEAD")
assert_eq "$(q a "SELECT json_extract(payload,'\$.src') FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" file "payload from -f"
out=$(send ::1 "$DEAD" '{"v6":true}')
assert_eq "$(jf "$out" .dst_addr)" "::1" "IPv6 destination"
out=$(send localhost 65535 '{}')
assert_eq "$(jf "$out" .dst_addr)|$(jf "$out" .dst_port)" "localhost|65535" "localhost and port 65535"
note "payload from an argument, '-', stdin, --file and -f; IPv6 and localhost"

# -q: no receipt, the row is there.
before=$(rows)
out=$(send -q 127.0.0.1 "$DEAD" '{"quiet":1}')
assert_eq "$out" "" "-q prints nothing"
assert_eq "$(rows)" "$((before + 1))" "-q queued a row"
out=$(send --quiet 127.0.0.1 "$DEAD" '{"quiet":2}')
assert_eq "$out" "" "--quiet prints nothing"
note "-q and --quiet"

# ---- every bad input: one ERROR line, exit 1, no row ----
fails_with "not a JSON object (it is an array)" send 127.0.0.1 "$DEAD" '[1,2]'
fails_with "not a JSON object (it is an array)" send -m "$(newid)" 127.0.0.1 "$DEAD" '[1,2]'
fails_with "not a JSON object (it is a string)" send 127.0.0.1 "$DEAD" '"text"'
fails_with "not a JSON object (it is a number)" send 127.0.0.1 "$DEAD" '42'
fails_with "not valid JSON" send 127.0.0.1 "$DEAD" 'not json'
fails_with "not valid JSON" send 127.0.0.1 "$DEAD" '{"a":1'
fails_with "not valid JSON" send 127.0.0.1 "$DEAD" '{"a":1} {"b":2}'
fails_with "payload is empty" send 127.0.0.1 "$DEAD" ''
fails_with "payload is empty" send 127.0.0.1 "$DEAD" -
fails_with "payload is empty" send 127.0.0.1 "$DEAD" '   '
fails_with "payload message_id is not 24 lowercase hex digits" send -m "$(newid)" 127.0.0.1 "$DEAD" '{"message_id":"ABC"}'
fails_with "payload message_id is not 24 lowercase hex digits" send -m "$M2" 127.0.0.1 "$DEAD" "{\"message_id\":\"$(printf '%s' "$M2" | tr a-f A-F)\"}"
fails_with "acknowledgement" send 127.0.0.1 "$DEAD" "{\"type\":\"ACK\",\"message_id\":\"$(newid)\"}"
fails_with "--message-id 'abc' is not 24 hex digits" send -m abc 127.0.0.1 "$DEAD" '{}'
fails_with "is not 24 hex digits" send -m "$(newid | sed 's/^./g/')" 127.0.0.1 "$DEAD" '{}'
fails_with "is not 24 hex digits" send -m "$(newid)0" 127.0.0.1 "$DEAD" '{}'
OTHER=$(newid)
fails_with "differs from the payload's message_id $OTHER" send -m "$M2" 127.0.0.1 "$DEAD" "{\"message_id\":\"$OTHER\"}"
fails_with "message_id $M1 is already used" send 127.0.0.1 "$DEAD" "{\"message_id\":\"$M1\"}"
fails_with "message_id $M2 is already used" send -m "$M2" 127.0.0.1 "$DEAD" '{}'
fails_with "DST_ADDR 'example.com' is not an IPv4 or IPv6 address" send example.com "$DEAD" '{}'
fails_with "DST_ADDR '999.1.1.1'" send 999.1.1.1 "$DEAD" '{}'
fails_with "DST_ADDR ''" send '' "$DEAD" '{}'
fails_with "DST_PORT '0' is not a port number (1-65535)" send 127.0.0.1 0 '{}'
fails_with "DST_PORT '65536'" send 127.0.0.1 65536 '{}'
fails_with "DST_PORT 'abc'" send 127.0.0.1 abc '{}'
fails_with "DST_PORT '+5'" send 127.0.0.1 +5 '{}'
fails_with "DST_PORT ' 5'" send 127.0.0.1 ' 5' '{}'
fails_with "missing DST_ADDR and DST_PORT" send
fails_with "missing DST_PORT" send 127.0.0.1
fails_with "unexpected argument 'extra'" send 127.0.0.1 "$DEAD" '{}' extra
fails_with "not both" send -f "$T/payload.json" 127.0.0.1 "$DEAD" '{}'
fails_with "cannot read $T/nope.json" send -f "$T/nope.json" 127.0.0.1 "$DEAD"
fails_with "cannot read $T" send -f "$T" 127.0.0.1 "$DEAD"
fails_with "unknown option '-x'" send -x 127.0.0.1 "$DEAD" '{}'
fails_with "unknown option '--bogus'" send --bogus=1 127.0.0.1 "$DEAD" '{}'
fails_with "option '-m' needs a value" send 127.0.0.1 "$DEAD" '{}' -m
fails_with "option '--db' needs a value" send 127.0.0.1 "$DEAD" '{}' --db
fails_with "--wait: 'abc' is not a number of seconds" send --wait=abc 127.0.0.1 "$DEAD" '{}'
fails_with "--wait: '0' is not a number of seconds" send --wait=0 127.0.0.1 "$DEAD" '{}'
fails_with "--wait: '-1'" send --wait=-1 127.0.0.1 "$DEAD" '{}'
fails_with "--wait takes its value after '=': --wait=10" send --wait 10 127.0.0.1 "$DEAD" '{}'
# A payload larger than one datagram.
head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"pad":"/; s/$/"}/' > "$T/big.json"
fails_with "one datagram carries at most" send -f "$T/big.json" 127.0.0.1 "$DEAD"
head -c 17000000 /dev/zero | tr '\0' 'a' > "$T/huge.json"
fails_with "more than" send -f "$T/huge.json" 127.0.0.1 "$DEAD"
fails_with "nested too deeply" send 127.0.0.1 "$DEAD" "{\"n\":$(printf '%.0s[' $(seq 101))1$(printf '%.0s]' $(seq 101))}"
note "bad JSON, ids, addresses, ports, arguments and options: one ERROR line, exit 1, no row"

# ---- --peer NAME: a row for a peer of the daemon's peers file ----
out=$(send --peer berlin '{"to":"berlin"}')
PR=$(jf "$out" .row_id)
expected=$(printf '{\n  "status": "queued",\n  "row_id": %s,\n  "message_id": null,\n  "peer": "berlin"\n}' "$PR")
assert_eq "$out" "$expected" "--peer receipt text"
assert_eq "$(q a "SELECT state || '|' || ifnull(message_id,'NULL') || '|' || quote(dst_addr) || '|' || dst_port || '|' || peer || '|' || payload FROM outbound_messages WHERE id=$PR")" \
    "pending|NULL|''|0|berlin|{\"to\":\"berlin\"}" "--peer row: peer set, no destination ('' and 0)"
assert_eq "$(q a "SELECT count(*) FROM outbound_messages WHERE peer IS NULL AND id = $ID1")" 1 "a row with a destination has peer NULL"
# with -m, from '-', stdin and --file, a name of every allowed kind, 64 bytes long
M6=$(newid)
out=$(printf '{"src":"dash"}' | send -m "$M6" --peer berlin-1.dc_2 -)
assert_eq "$(jf "$out" '[.message_id, .peer] | join(",")')" "$M6,berlin-1.dc_2" "--peer with -m and '-'"
assert_eq "$(q a "SELECT peer || '|' || message_id || '|' || payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "berlin-1.dc_2|$M6|{\"src\":\"dash\"}" "--peer row with -m"
out=$(printf '{"src":"stdin"}' | send --peer=B2)
assert_eq "$(q a "SELECT peer || '|' || payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" 'B2|{"src":"stdin"}' "--peer=NAME, payload from stdin"
N64=$(printf 'n%.0s' $(seq 64))
out=$(send -f "$T/payload.json" --peer "$N64")
assert_eq "$(q a "SELECT peer FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "$N64" "a 64-byte name, payload from --file"
assert_eq "$(send -q --peer berlin '{"q":1}')" "" "--peer -q prints nothing"
note "--peer NAME: the row has peer = NAME, dst_addr '' and dst_port 0; the receipt names the peer"

fails_with "--peer NAME and DST_ADDR DST_PORT are mutually exclusive" send --peer berlin 127.0.0.1 "$DEAD" '{}'
fails_with "--peer NAME and DST_ADDR DST_PORT are mutually exclusive" send --peer berlin 127.0.0.1 "$DEAD"
fails_with "--peer NAME and DST_ADDR DST_PORT are mutually exclusive" send 127.0.0.1 "$DEAD" --peer berlin '{}'
for bad in .berlin -berlin '' 'a b' 'a/b' 'caf\303\251' "${N64}x" 'a;b' '*'; do
    name=$(printf '%b' "$bad")
    fails_with "--peer: '$name' is not a peer name (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)" send --peer "$name" '{}'
done
fails_with "--peer: the name is not a peer name" send --peer "$(printf 'a\nb')" '{}'
fails_with "option '--peer' needs a value" send '{}' --peer
fails_with "not a JSON object (it is an array)" send --peer berlin '[1]'
fails_with "message_id $M6 is already used" send --peer berlin "{\"message_id\":\"$M6\"}"
note "--peer with a destination, a bad name (one line even with a newline in it), no name: one ERROR line, no row"

# --wait with --peer: the outcome names the peer (the row's fate set by hand: no daemon runs).
# bg_wait PAYLOAD ARGS...: sg-send --wait ARGS PAYLOAD in the background; sets BGW, WR (its row).
bg_wait() {
    p=$1
    shift
    ( rc=0; send -q "$@" "$p" > "$T/wout" 2> "$T/werr" || rc=$?; echo "$rc" > "$T/wrc" ) &
    BGW=$!
    wait_for 5 "the row of $p" count_is a "SELECT count(*) FROM outbound_messages WHERE payload = '$p'" 1
    WR=$(q a "SELECT id FROM outbound_messages WHERE payload = '$p'")
}
bg_wait '{"w":1}' --peer berlin --wait=20
q a "UPDATE outbound_messages SET state = 'send_failed', last_error = 'no such peer: berlin' WHERE id = $WR"
wait "$BGW"
assert_eq "$(cat "$T/wrc")|$(cat "$T/werr")" "1|ERROR: message not delivered to peer berlin (row $WR is send_failed): no such peer: berlin" "--peer --wait: send_failed"
bg_wait '{"w":2}' --peer berlin --wait=20
q a "UPDATE outbound_messages SET state = 'acknowledged' WHERE id = $WR"
wait "$BGW"
assert_eq "$(cat "$T/wrc")|$(cat "$T/werr")" "0|" "--peer --wait: acknowledged"
ADDED=1 fails_with "timed out after 0.3 s waiting for row $(( $(q a "SELECT max(seq) FROM sqlite_sequence WHERE name = 'outbound_messages'") + 1 )) to peer berlin to be acknowledged (it is still 'pending')" \
    send -q --peer berlin --wait=0.3 '{"w":3}'
note "--peer --wait: acknowledged (0), send_failed and timed out (1) name the peer"

# ---- which database ----
mkdir -p "$T/other"
sqlite3 "$T/other/x.db" < "$HERE/../../data/schema.sql" > /dev/null
out=$(send --db "$T/other/x.db" 127.0.0.1 "$DEAD" '{"db":"flag"}')
assert_eq "$(sqlite3 "$T/other/x.db" "SELECT payload FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" '{"db":"flag"}' "--db"
out=$(SECUREDGRAM_DB="$T/other/x.db" send 127.0.0.1 "$DEAD" '{"db":"env"}')
assert_eq "$(sqlite3 "$T/other/x.db" "SELECT count(*) FROM outbound_messages WHERE payload LIKE '%env%'")" 1 "SECUREDGRAM_DB"
(cd "$T/other" && printf 'SECUREDGRAM_DB=x.db\n' > .env && send -q 127.0.0.1 "$DEAD" '{"db":"dotenv"}')
assert_eq "$(sqlite3 "$T/other/x.db" "SELECT count(*) FROM outbound_messages WHERE payload LIKE '%dotenv%'")" 1 "SECUREDGRAM_DB from .env"
# Missing database: exactly two lines, the hint naming securedgram start and --db.
rc=0
send --db "$T/missing.db" 127.0.0.1 "$DEAD" '{}' > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc" 1 "missing database exit status"
assert_eq "$(sed -n 1p "$T/err")" "ERROR: Database not found at $T/missing.db" "missing database line 1 (the original's)"
assert_eq "$(wc -l < "$T/err")" 2 "missing database: two lines"
sed -n 2p "$T/err" | grep -q "securedgram start" || fail "hint does not mention securedgram start"
sed -n 2p "$T/err" | grep -qF -- "--db PATH" || fail "hint does not mention --db PATH"
[ ! -e "$T/missing.db" ] || fail "sg-send created the missing database"
note "--db, SECUREDGRAM_DB, .env; a missing database gives the two-line hint"

# ---- -V, -h ----
assert_eq "$(send -V)" "sg-send $(sed -n 's/.*SG_VERSION "\(.*\)"/\1/p' "$HERE/../../src/util/version.h")" "-V"
assert_eq "$(send --version)" "$(send -V)" "--version"
help=$(send --help)
for opt in --message-id --file --quiet --wait --peer --db --version --help -m -f -q -V -h DST_ADDR DST_PORT NAME; do
    printf '%s\n' "$help" | grep -qF -- "$opt" || fail "--help does not mention $opt"
done
assert_eq "$(send -h)" "$help" "-h"
note "-V prints the version; --help lists every option"

# ---- a busy database: waited for up to the busy timeout, then a clear error ----
hold_lock() { # SECS: holds the write lock for SECS seconds in the background
    printf 'BEGIN IMMEDIATE;\nINSERT INTO outbound_messages (dst_addr, dst_port, payload, state) VALUES (%s);\n.shell touch %s/locked; sleep %s\nCOMMIT;\n' \
        "'127.0.0.1', 1, '{}', 'acknowledged'" "$T" "$1" | sqlite3 securedgram.db > /dev/null &
    LOCKER=$!
    wait_for 5 "the lock is held" test -e "$T/locked"
    rm -f "$T/locked"
}
hold_lock 1
out=$(send 127.0.0.1 "$DEAD" '{"waited":1}')
assert_eq "$(jf "$out" .status)" queued "queued after waiting for a short lock"
wait "$LOCKER"
hold_lock 7
t0=$(date +%s%N)
fails_with "Database is busy: database is locked" send 127.0.0.1 "$DEAD" '{"busy":1}'
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -ge 4500 ] || fail "gave up on a busy database after only $el ms"
wait "$LOCKER"
grep -qF "The daemon or another process is holding the lock. Try again." "$T/err" || fail "busy: not the original's wording: $(cat "$T/err")"
note "a short lock is waited out; a long one is 'Database is busy' after ${el} ms"

# ---- --wait against a real daemon ----
start a
out=$(send --wait=10 127.0.0.1 "$P" '{"hello":"me"}')
WID=$(jf "$out" .row_id)
assert_eq "$(jf "$out" .status)" queued "--wait still prints the receipt first"
assert_eq "$(q a "SELECT state FROM outbound_messages WHERE id=$WID")" acknowledged "--wait returned once acknowledged"
t0=$(date +%s%N)
send -q --wait 127.0.0.1 "$P" '{"hello":"again"}' || fail "--wait (default timeout) failed"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -lt 1000 ] || fail "--wait took $el ms for a message to ourselves"
note "--wait exits 0 when the daemon's own message is acknowledged (${el} ms)"

# send_failed: nothing listens on DEAD, max retries 1, retry interval 1 s.
ADDED=1 fails_with "message not delivered" send -q --wait=15 127.0.0.1 "$DEAD" '{"to":"nobody"}'
LAST=$(q a "SELECT max(id) FROM outbound_messages")
assert_eq "$(q a "SELECT state FROM outbound_messages WHERE id=$LAST")" send_failed "row of the failed --wait"
why=$(q a "SELECT last_error FROM outbound_messages WHERE id=$LAST")
[ -n "$why" ] || fail "send_failed row without last_error"
grep -qF "row $LAST is send_failed): $why" "$T/err" || fail "the error does not give the row and its last_error: $(cat "$T/err")"
# A timeout shorter than the retries: exit 1, the row is left as it is.
ADDED=1 fails_with "timed out after 0.5 s waiting for row" send -q --wait=0.5 127.0.0.1 "$DEAD" '{"to":"nobody"}'
note "--wait exits 1 with last_error for send_failed, and on a timeout"

# ---- the size limit counts what the daemon adds, to the byte ----
# pad FILE PREFIX N: FILE holds PREFIX"p":"aaa..."} of exactly N bytes.
pad() {
    fill=$(( $3 - ${#2} - 7 ))
    { printf '%s"p":"' "$2"; head -c "$fill" /dev/zero | tr '\0' a; printf '"}'; } > "$1"
    assert_eq "$(wc -c < "$1")" "$3" "size of $1"
}
MAXJ=$(sed -n 's/^#define ENVELOPE_MAX_DATAGRAM \([0-9]*\).*/\1/p' "$HERE/../../src/wire/envelope.h")
MAXJ=$((MAXJ - 36)) # nonce 12, tag 16, timestamp 8: the largest JSON text one datagram carries
# No message_id: the daemon inserts "message_id":"<24 hex>", (40 bytes).
pad "$T/s1" '{' $((MAXJ - 40))
out=$(send --wait=10 -f "$T/s1" 127.0.0.1 "$P") || fail "the largest payload without an id was refused or not delivered: $(cat "$T/err" 2>/dev/null)"
assert_eq "$(q a "SELECT state || '|' || length(payload) FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "acknowledged|$MAXJ" "sent with the id inserted: exactly one full datagram"
pad "$T/s2" '{' $((MAXJ - 39))
fails_with "payload is $((MAXJ - 39)) bytes, $((MAXJ + 1)) with the message_id the daemon adds; one datagram carries at most $MAXJ" send -f "$T/s2" 127.0.0.1 "$P"
fails_with "$((MAXJ + 1)) with the message_id the daemon adds" send -m "$(newid)" -f "$T/s2" 127.0.0.1 "$P"
pad "$T/s3" '{' "$MAXJ"
fails_with "with the message_id the daemon adds" send -f "$T/s3" 127.0.0.1 "$P"
# A message_id that is not hex is replaced by "<24 hex>": here 3 bytes become 26.
pad "$T/s4" '{"message_id":"x",' $((MAXJ - 23))
out=$(send --wait=10 -f "$T/s4" 127.0.0.1 "$P") || fail "the largest payload with a non-hex id was refused or not delivered"
assert_eq "$(q a "SELECT state || '|' || length(payload) FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "acknowledged|$MAXJ" "sent with the id replaced: one full datagram"
pad "$T/s5" '{"message_id":"x",' $((MAXJ - 22))
fails_with "$((MAXJ + 1)) with the message_id the daemon adds" send -f "$T/s5" 127.0.0.1 "$P"
# A payload with its own id is sent as it is: the whole datagram is for it.
pad "$T/s6" "{\"message_id\":\"$(newid)\"," "$MAXJ"
out=$(send --wait=10 -f "$T/s6" 127.0.0.1 "$P") || fail "the largest payload with its own id was refused or not delivered"
pad "$T/s7" "{\"message_id\":\"$(newid)\"," $((MAXJ + 1))
fails_with "payload is $((MAXJ + 1)) bytes; one datagram carries at most $MAXJ" send -f "$T/s7" 127.0.0.1 "$P"
note "size: what sg-send queues the daemon sends ($MAXJ-byte JSON, with the id it adds or replaces); one byte more is refused"
# --peer: a version 2 peer takes a message in parts, up to 16 MiB (PART_MAX_MESSAGE; the
# daemon's SECUREDGRAM_MAX_MESSAGE may be less: then its row fails there, saying so).
# sg-send does not read the daemon's peers file, so this holds for any --peer.
MAXP=16777216
pad "$T/p1" '{' $((MAXJ + 1000))
out=$(send -f "$T/p1" --peer berlin) || fail "a payload over one datagram for a peer was refused: $(cat "$T/err" 2>/dev/null)"
assert_eq "$(q a "SELECT peer || '|' || length(payload) FROM outbound_messages WHERE id=$(jf "$out" .row_id)")" "berlin|$((MAXJ + 1000))" "a payload of several parts for a peer"
pad "$T/p2" '{' $((MAXP - 39))
fails_with "payload is $((MAXP - 39)) bytes, $((MAXP + 1)) with the message_id the daemon adds; one message to a peer carries at most $MAXP" send -f "$T/p2" --peer berlin
pad "$T/p3" "{\"message_id\":\"$(newid)\"," $((MAXP + 1))
fails_with "payload is $((MAXP + 1)) bytes; one message to a peer carries at most $MAXP" send -f "$T/p3" --peer berlin
fails_with "one datagram carries at most $MAXJ (a version 2 peer, named with --peer" send -f "$T/p1" 127.0.0.1 "$DEAD"
note "size with --peer: up to $MAXP bytes (in parts), one byte more refused; without, one datagram"
rm -f "$T/p2" "$T/p3"
stop a

# ---- a file that is not a securedgram database: refused, left byte for byte ----
# pristine FILE: the sha256 of FILE; unchanged FILE SUM: it still has it, and no -wal or -shm is left.
pristine() { sha256sum < "$1"; }
unchanged() {
    assert_eq "$(pristine "$1")" "$2" "$1 changed"
    [ ! -e "$1-wal" ] && [ ! -e "$1-shm" ] || fail "$1: a -wal or -shm was left"
}
: > "$T/empty.db"
sqlite3 "$T/foreign.db" "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('x')"
assert_eq "$(sqlite3 "$T/foreign.db" "PRAGMA journal_mode")" delete "the foreign database's journal mode"
E0=$(pristine "$T/empty.db")
F0=$(pristine "$T/foreign.db")
fails_with "ERROR: $T/empty.db is not a securedgram database (no table outbound_messages)" send --db "$T/empty.db" 127.0.0.1 "$DEAD" '{}'
fails_with "ERROR: $T/foreign.db is not a securedgram database (no table outbound_messages)" send --db "$T/foreign.db" 127.0.0.1 "$DEAD" '{}'
unchanged "$T/empty.db" "$E0"
unchanged "$T/foreign.db" "$F0"
assert_eq "$(wc -c < "$T/empty.db")" 0 "the empty file is still empty"
# The daemon makes its tables in a new database or an empty file (as when an
# operator creates the file first to set its owner and mode), never in someone
# else's.
mkdir -p "$T/d"
cp "$T/foreign.db" "$T/d/foreign.db"
rc=0
(cd "$T/a" && sg --db "$T/d/foreign.db" start) 2> "$T/err" || rc=$?
[ "$rc" -ne 0 ] || { stop a; fail "the daemon started on a foreign database"; }
grep -qF "$T/d/foreign.db is not a securedgram database (no table outbound_messages)" "$T/err" || fail "daemon on a foreign database: $(cat "$T/err")"
unchanged "$T/d/foreign.db" "$F0"
: > "$T/d/new.db"
(cd "$T/a" && sg --db "$T/d/new.db" start) || fail "the daemon refused an empty file"
(cd "$T/a" && sg stop > /dev/null)
assert_eq "$(sqlite3 "$T/d/new.db" "SELECT count(*) FROM sqlite_master WHERE name IN ('outbound_messages', 'inbound_messages')")" 2 "the daemon made its tables in the empty file"
note "sg-send and the daemon leave a foreign database (and sg-send an empty file) byte for byte; the daemon sets up an empty file"
