# sg-recv: messages received by a real daemon, every filter, limit, order and
# format (all checked with jq), read marking and its atomicity under two
# concurrent readers, marking that sets updated_at (so sg-clean does not take
# a message read today for an old one), --follow as the original (only new
# rows, a banner on stderr; --backlog and --since-id for older ones) picking
# up new rows promptly, errors, a file that is not a securedgram database
# (left byte for byte), a busy database, rows marked unread again when the
# output cannot be written, hostile payloads (nested 98 deep) that must
# not blow up memory or output, and --peer NAME (issue 11): only that peer's
# rows, each row's peer shown (null for the shared secret's); each row's
# sequence (the last column), null for a message sealed with version 1.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
# Background sg-recv --follow processes are stopped whatever way the test ends.
BG=""
trap 'rc_=$?; for p in $BG; do kill "$p" 2>/dev/null || true; done; (exit $rc_); cleanup' EXIT

send() { "$SG_BIN/sg-send" "$@"; }
recv() { "$SG_BIN/sg-recv" "$@"; }
jf() { printf '%s\n' "$1" | jq -r "$2"; }
jc() { printf '%s\n' "$1" | jq -c "$2"; }

# inb MESSAGE_ID SRC_ADDR_SQL STATE READ_COUNT PAYLOAD_SQL: an inbound row; prints its id.
inb() {
    q a "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, read_count) VALUES ('$1', $2, 4000, $5, '2025-01-01T00:00:00.000000000', '$3', $4); SELECT last_insert_rowid();"
}
reads() { q a "SELECT read_count FROM inbound_messages WHERE id = $1"; }

PA=$(freeport)
PB=$(freeport)
mkpeer a "$PA"
mkpeer b "$PB"
start a
start b

# ---- messages received by a real daemon ----
M1=$(newid); M2=$(newid); M3=$(newid)
(cd "$T/b" && send -q --wait=10 -m "$M1" 127.0.0.1 "$PA" '{"n":1,"text":"first"}')
(cd "$T/b" && send -q --wait=10 -m "$M2" 127.0.0.1 "$PA" '{"n":2,"x":0.1,"big":123456789012345678901234567890}')
(cd "$T/b" && send -q --wait=10 -m "$M3" 127.0.0.1 "$PA" '{"n":3,"nested":{"a":[1,{"b":null}],"e":{}}}')
cd "$T/a"
out=$(recv --no-mark)
assert_eq "$(jf "$out" 'type')" array "default output is an array"
assert_eq "$(jf "$out" 'length')" 3 "three unread messages"
assert_eq "$(jf "$out" '[.[].message_id] | join(",")')" "$M3,$M2,$M1" "newest first"
assert_eq "$(jf "$out" '[.[].id] | (. == (sort | reverse))')" true "ids descending"
cols=$(q a "SELECT name FROM pragma_table_info('inbound_messages') ORDER BY cid" | paste -sd, -)
assert_eq "$(jf "$out" '.[0] | keys_unsorted | join(",")')" "$cols" "every column, in table order"
assert_eq "$(jf "$out" '.[2].payload | type')" object "payload shown parsed"
assert_eq "$(jc "$out" '.[2].payload')" "{\"message_id\":\"$M1\",\"n\":1,\"text\":\"first\"}" "payload content"
assert_eq "$(jc "$out" '.[0].payload.nested')" '{"a":[1,{"b":null}],"e":{}}' "nested payload"
assert_eq "$(jf "$out" '.[0].src_addr')|$(jf "$out" '.[0].src_port')" "127.0.0.1|$PB" "sender address and port"
assert_eq "$(jf "$out" '[.[] | .state] | unique | join(",")')" ack_sent "rows are ack_sent"
assert_eq "$(jf "$out" '[.[] | .read_count] | unique | join(",")')" 0 "read_count 0"
assert_eq "$(jf "$out" '.[0].ack_sent_at | type')" string "ack_sent_at"
# Numbers exactly as the sender wrote them (jq itself would round the big one).
assert_eq "$(recv --no-mark -p -c -i "$M2")" "{\"message_id\":\"$M2\",\"n\":2,\"x\":0.1,\"big\":123456789012345678901234567890}" "numbers kept exactly"
printf '%s\n' "$out" | grep -qF '"big": 123456789012345678901234567890' || fail "big integer changed in the pretty output"
printf '%s\n' "$out" | grep -qF '"x": 0.1,' || fail "0.1 changed in the pretty output"
note "three messages from a real daemon: every column in order, newest first, payload parsed, numbers exact"

# ---- read marking ----
ID1=$(q a "SELECT id FROM inbound_messages WHERE message_id='$M1'")
out=$(recv)
assert_eq "$(jf "$out" 'length')" 3 "first read shows all three"
assert_eq "$(jf "$out" '[.[] | .read_count] | unique | join(",")')" 0 "shown read_count is the value before the read"
assert_eq "$(q a "SELECT group_concat(read_count) FROM inbound_messages")" "1,1,1" "all marked read"
assert_eq "$(recv)" "[]" "nothing unread: an empty array"
assert_eq "$(recv -c)" "" "nothing unread: -c prints nothing"
out=$(recv -r)
assert_eq "$(jf "$out" 'length')" 3 "-r shows read messages"
assert_eq "$(jf "$out" '[.[] | .read_count] | unique | join(",")')" 1 "-r shows read_count 1"
assert_eq "$(reads "$ID1")" 2 "-r marks again"
out=$(recv --read-included --no-mark)
assert_eq "$(jf "$out" '[.[] | .read_count] | unique | join(",")')" 2 "--read-included"
assert_eq "$(reads "$ID1")" 2 "--no-mark leaves read_count"
note "marking: shown count is the one before, -r/--read-included, --no-mark"

# Marking sets updated_at, as the original does: a message that arrived 10 days
# ago and is read now is not "10 days old" to sg-clean. --no-mark writes nothing.
q a "UPDATE inbound_messages SET read_count = 0, updated_at = strftime('%Y-%m-%dT%H:%M:%f', 'now', '-10 days')"
old=$(q a "SELECT group_concat(updated_at) FROM inbound_messages")
recv --no-mark > /dev/null
assert_eq "$(q a "SELECT group_concat(updated_at) FROM inbound_messages")" "$old" "--no-mark leaves updated_at"
recv > /dev/null
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE read_count = 1 AND abs(julianday(updated_at) - julianday('now')) * 86400 < 60")" 3 "marking read set updated_at to now"
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]'")" 3 "updated_at in the original's format"
"$SG_BIN/sg-clean" -y 7d > "$T/clean.out"
assert_eq "$(q a "SELECT count(*) FROM inbound_messages")" 3 "sg-clean 7d kept the messages read a moment ago"
note "marking read sets updated_at (sg-clean 7d keeps a 10-day-old message read now); --no-mark writes nothing"

# ---- --follow: as the original, only rows that arrive after it starts ----
# An unread message already there (M0) is not shown by a plain --follow, nor
# marked; --backlog shows the newest rows first; --since-id every row after it.
M0=$(newid)
R0=$(inb "$M0" "'192.0.2.9'" ack_sent 0 "'{\"n\":0}'")
"$SG_BIN/sg-recv" -f -c --interval 5 > "$T/follow.out" 2> "$T/follow.err" &
FPID=$!
"$SG_BIN/sg-recv" -f --no-mark -r --since-id "$ID1" > "$T/follow2.out" 2> "$T/follow2.err" &
FPID2=$!
"$SG_BIN/sg-recv" -f -c --no-mark -r --backlog -n 2 > "$T/follow3.out" 2> "$T/follow3.err" &
FPID3=$!
BG="$FPID $FPID2 $FPID3"
has_n() { [ "$(jq -s length "$1" 2>/dev/null)" = "$2" ]; }
wait_for 5 "the pretty follower's first rows" has_n "$T/follow2.out" 3
wait_for 5 "the backlog follower's first rows" has_n "$T/follow3.out" 2
BANNER="Following new messages (since id $R0). Press Ctrl+C to stop."
wait_for 5 "the follower's banner" grep -qxF "$BANNER" "$T/follow.err"
M4=$(newid)
t0=$(date +%s%N)
(cd "$T/b" && send -q -m "$M4" 127.0.0.1 "$PA" '{"n":4,"late":true}')
wait_for 3 "the follower shows the new message" grep -q "$M4" "$T/follow.out"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -lt 2500 ] || fail "--follow took $el ms (the fallback interval is 5000)"
M5=$(newid)
R5=$(inb "$M5" "'192.0.2.5'" received 0 "'{\"n\":5}'")
wait_for 3 "the follower shows a row inserted with SQL" grep -q "$M5" "$T/follow.out"
wait_for 3 "the pretty follower shows both" grep -q "$M5" "$T/follow2.out"
wait_for 3 "the backlog follower shows both" grep -q "$M5" "$T/follow3.out"
kill -TERM "$FPID"
rc=0; wait "$FPID" || rc=$?
assert_eq "$rc" 0 "--follow exits 0 on TERM"
kill -INT "$FPID2"
rc=0; wait "$FPID2" || rc=$?
assert_eq "$rc" 0 "--follow exits 0 on INT"
kill -INT "$FPID3"
rc=0; wait "$FPID3" || rc=$?
assert_eq "$rc" 0 "--follow --backlog exits 0 on INT"
BG=""
assert_eq "$(cat "$T/follow.err")" "$(printf '%s\n\nStopped.' "$BANNER")" "--follow: the original's banner and Stopped. on stderr"
assert_eq "$(printf '\nStopped.')" "$(cat "$T/follow2.err")" "--follow --since-id: no banner (as the original)"
assert_eq "$(wc -l < "$T/follow.out")" 2 "--follow -c: one line per new row"
assert_eq "$(jq -r .message_id "$T/follow.out" | paste -sd, -)" "$M4,$M5" "--follow: only new rows, oldest first"
assert_eq "$(reads "$R0")" 0 "--follow left the unread message that was there before it alone"
assert_eq "$(jq -s 'map(.read_count) | join(",")' -r "$T/follow.out")" "0,0" "--follow shows the count before"
assert_eq "$(reads "$R5")" 1 "--follow marks what it shows"
assert_eq "$(jq -s 'map(.message_id) | join(",")' -r "$T/follow2.out")" "$M2,$M3,$M0,$M4,$M5" "pretty --follow --since-id: every row after it, a stream of objects, oldest first"
assert_eq "$(jq -r .message_id "$T/follow3.out" | paste -sd, -)" "$M3,$M0,$M4,$M5" "--follow --backlog -n 2: the 2 newest rows, then the new ones"
note "--follow shows only new rows (the original's banner on stderr), in ${el} ms with a 5 s interval; --since-id and --backlog show older ones; TERM/INT end it cleanly"
stop a
stop b

# ---- limit and order over crafted rows ----
q a "DELETE FROM inbound_messages"
q a "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 25)
     INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state)
     SELECT lower(hex(randomblob(12))), '10.9.9.9', 4000, '{\"n\":' || k || '}', '2025', 'ack_sent' FROM c"
# N K: the id of the crafted row whose payload is {"n":K}.
N() { q a "SELECT id FROM inbound_messages WHERE payload = '{\"n\":$1}' AND src_addr = '10.9.9.9'"; }
out=$(recv --no-mark)
assert_eq "$(jf "$out" 'length')" 20 "default limit 20"
assert_eq "$(jf "$out" '[.[].payload.n] | join(",")')" "$(seq 25 -1 6 | paste -sd, -)" "the 20 newest, newest first"
assert_eq "$(jf "$(recv --no-mark -n 5)" '[.[].payload.n] | join(",")')" "25,24,23,22,21" "-n 5"
assert_eq "$(jf "$(recv --no-mark --limit 3)" 'length')" 3 "--limit 3"
assert_eq "$(jf "$(recv --no-mark -n 0)" 'length')" 25 "-n 0 shows all"
out=$(recv -n 5)
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE read_count = 1")" 5 "-n 5 marks five"
assert_eq "$(reads "$(N 25)")|$(reads "$(N 20)")" "1|0" "the five newest were marked"
assert_eq "$(jf "$(recv --no-mark -n 0)" 'length')" 20 "twenty left unread"
assert_eq "$(jf "$(recv --no-mark --since-id "$(N 22)" -r)" '[.[].payload.n] | join(",")')" "25,24,23" "--since-id"
assert_eq "$(jf "$(recv --no-mark --since-id "$(N 15)")" '[.[].payload.n] | join(",")')" "20,19,18,17,16" "--since-id with unread only"
note "limit (default 20, -n, --limit, 0 = all), newest first, --since-id"

# ---- formats ----
out=$(recv --no-mark -c -n 3)
assert_eq "$(printf '%s\n' "$out" | wc -l)" 3 "-c: one line per row"
assert_eq "$(printf '%s\n' "$out" | jq -r 'type' | paste -sd, -)" "object,object,object" "-c lines are objects"
assert_eq "$(printf '%s\n' "$out" | jq -r .payload.n | paste -sd, -)" "20,19,18" "-c newest first"
assert_eq "$(recv --no-mark --compact -n 1)" "$(recv --no-mark -c -n 1)" "--compact"
out=$(recv --no-mark -p -n 2)
assert_eq "$(jc "$out" .)" '[{"n":20},{"n":19}]' "-p: an array of payloads"
assert_eq "$out" "$(printf '[\n  {\n    "n": 20\n  },\n  {\n    "n": 19\n  }\n]')" "-p pretty layout"
assert_eq "$(recv --no-mark -p -c -n 2)" "$(printf '{"n":20}\n{"n":19}')" "-p -c: one payload per line"
assert_eq "$(recv --no-mark --payload-only --compact -n 1)" '{"n":20}' "--payload-only"
BADJ=$(newid)
RB=$(inb "$BADJ" "'10.9.9.9'" received 0 "'not json {'")
WS=$(newid)
RW=$(inb "$WS" "'10.9.9.9'" received 0 "'{ \"a\" : [ 1 , 2 ] ,\"s\":\"x\\u00e9\\\"y\" , \"e\": [ ] }'")
assert_eq "$(recv --no-mark -p -i "$BADJ")" '"not json {"' "invalid JSON payload shown as a string"
assert_eq "$(jf "$(recv --no-mark -i "$RB")" '.payload')" "not json {" "invalid payload string in the row"
assert_eq "$(recv --no-mark -p -i "$WS")" "$(printf '{\n  "a": [\n    1,\n    2\n  ],\n  "s": "x\\u00e9\\"y",\n  "e": []\n}')" "payload re-indented, escapes kept"
assert_eq "$(recv --no-mark -p -c -i "$WS")" '{"a":[1,2],"s":"x\u00e9\"y","e":[]}' "payload compacted"
note "-c, -p, -p -c; invalid payloads as strings; payloads re-laid out, not re-encoded"

# ---- -i: one row by id or message_id, whatever its read state ----
out=$(recv -i "$(N 25)")
assert_eq "$(jf "$out" type)" object "-i prints the bare object"
assert_eq "$(jf "$out" '.id|tostring')|$(jf "$out" .read_count)" "$(N 25)|1" "-i shows a read row"
assert_eq "$(reads "$(N 25)")" 2 "-i marks the row"
MID=$(q a "SELECT message_id FROM inbound_messages WHERE id=$(N 24)")
out=$(recv --id "$MID" --no-mark)
assert_eq "$(jf "$out" '.id|tostring')" "$(N 24)" "-i by message_id"
assert_eq "$(reads "$(N 24)")" 1 "-i --no-mark"
assert_eq "$(recv -i "$(N 24)" -c --no-mark | wc -l)" 1 "-i -c: one line"
assert_eq "$(recv -i "$(N 24)" -c --no-mark | jq -r .id)" "$(N 24)" "-i -c object"
expect_error "no inbound message with id 999999" recv -i 999999
expect_error "no inbound message with message_id $(printf '%024d' 7)" recv -i "$(printf '%024d' 7)"
expect_error "that matches the filters" recv -i "$(N 24)" -s received
UPPER=$(printf '%s' "$MID" | tr a-f A-F)
assert_eq "$(jf "$(recv --no-mark -i "$UPPER")" '.id|tostring')" "$(N 24)" "-i message_id in uppercase (lowercased, as the original)"
expect_error "--id: 'xyz' is neither a row id nor a 24-hex message_id" recv -i xyz
expect_error "--id: '0'" recv -i 0
note "-i by id and by message_id: the bare object, read or not; no match is an error"

# ---- filters: state, sender (TEXT and BLOB), outbound and destination ----
q a "UPDATE inbound_messages SET state='ack_failed' WHERE id IN ($(N 1), $(N 2))"
assert_eq "$(jf "$(recv --no-mark -r -n 0 -s ack_failed)" '[.[].payload.n] | join(",")')" "2,1" "-s ack_failed"
assert_eq "$(jf "$(recv --no-mark -r -n 0 --state received)" 'length')" 2 "--state received"
T1=$(newid); B1=$(newid); O1=$(newid); V6=$(newid)
RT1=$(inb "$T1" "'10.0.0.7'" ack_sent 0 "'{\"from\":\"text\"}'")
RB1=$(inb "$B1" "CAST('10.0.0.7' AS BLOB)" ack_sent 0 "'{\"from\":\"blob\"}'")
inb "$O1" "'10.0.0.8'" ack_sent 0 "'{\"from\":\"other\"}'" > /dev/null
inb "$V6" "'2001:db8::1'" ack_sent 0 "'{\"from\":\"v6\"}'" > /dev/null
assert_eq "$(q a "SELECT typeof(src_addr) FROM inbound_messages WHERE id=$RB1")" blob "a BLOB src_addr row (as the Ruby original writes)"
out=$(recv --no-mark --from 10.0.0.7)
assert_eq "$(jf "$out" '[.[].payload.from] | join(",")')" "blob,text" "--from matches TEXT and BLOB src_addr"
assert_eq "$(jf "$out" '[.[].src_addr] | join(",")')" "10.0.0.7,10.0.0.7" "a BLOB src_addr is shown as text"
assert_eq "$(jf "$(recv --no-mark --from ::ffff:10.0.0.7)" 'length')" 2 "--from an IPv4-mapped address"
assert_eq "$(jf "$(recv --no-mark --from 2001:0db8:0:0::1)" '.[0].payload.from')" v6 "--from IPv6, any spelling"
assert_eq "$(jf "$(recv --no-mark --from 10.0.0.9)" 'length')" 0 "--from no match"
out=$(recv --from 10.0.0.7)
assert_eq "$(reads "$RT1")|$(reads "$RB1")" "1|1" "--from marks what it shows"
Q1=$(newid); Q2=$(newid)
send -q --db "$T/a/securedgram.db" -m "$Q1" 10.1.1.1 9000 '{"to":"one"}'
send -q -m "$Q2" 10.1.1.2 9000 '{"to":"two"}'
q a "INSERT INTO outbound_messages (dst_addr, dst_port, payload, state) VALUES ('10.1.1.1', 9001, '{\"to\":\"three\"}', 'acknowledged')"
upd=$(q a "SELECT group_concat(updated_at) FROM outbound_messages")
out=$(recv -o)
assert_eq "$(jf "$out" '[.[].payload.to] | join(",")')" "three,two,one" "-o: outbound rows, newest first"
ocols=$(q a "SELECT name FROM pragma_table_info('outbound_messages') ORDER BY cid" | paste -sd, -)
assert_eq "$(jf "$out" '.[0] | keys_unsorted | join(",")')" "$ocols" "-o: every outbound column in order"
assert_eq "$(jf "$(recv --outbound)" 'length')" 3 "-o never marks: shown again"
assert_eq "$(q a "SELECT group_concat(updated_at) FROM outbound_messages")" "$upd" "-o changes nothing"
assert_eq "$(jf "$(recv -o --to 10.1.1.1)" '[.[].payload.to] | join(",")')" "three,one" "--to"
assert_eq "$(jf "$(recv -o -s pending)" '[.[].payload.to] | join(",")')" "two,one" "-o -s pending"
assert_eq "$(jf "$(recv -o -i "$Q2")" '.dst_addr')" "10.1.1.2" "-o -i message_id"
assert_eq "$(jf "$(recv -o -n 1 -p)" '.[0].to')" three "-o -p"
note "-s, --from (TEXT and BLOB rows, any spelling), -o, --to, -o -s, -o -i"

# ---- --peer: only the rows of one peer; every row shows its peer ----
q a "UPDATE inbound_messages SET read_count = 1"
# inp MESSAGE_ID SRC_ADDR PEER_SQL: an unread inbound row from a peer; prints its id.
inp() {
    q a "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, peer) VALUES ('$1', '$2', 4000, '{\"peer\":\"' || ifnull($3, 'none') || '\"}', '2025', 'ack_sent', $3); SELECT last_insert_rowid();"
}
PB1=$(inp "$(newid)" 10.3.3.1 "'berlin'")
PP1=$(inp "$(newid)" 10.3.3.2 "'paris'")
PN1=$(inp "$(newid)" 10.3.3.1 NULL)
PB2=$(inp "$(newid)" 10.3.3.2 "'berlin'")
out=$(recv --no-mark --peer berlin)
assert_eq "$(jf "$out" '[.[].id] | join(",")')" "$PB2,$PB1" "--peer: only its rows, newest first"
assert_eq "$(jf "$out" '[.[].peer] | unique | join(",")')" berlin "--peer: each row shows its peer"
assert_eq "$(jf "$out" '.[0] | keys_unsorted | .[-2:] | join(",")')" peer,sequence "peer, then sequence: the last columns"
out=$(recv --no-mark -n 3)
assert_eq "$(jc "$out" '[.[] | [.id, .peer]]')" "[[$PB2,\"berlin\"],[$PN1,null],[$PP1,\"paris\"]]" "without --peer: every row, peer null for the shared secret's"
assert_eq "$(jf "$(recv --no-mark -i "$PN1")" 'has("peer")')" true "a shared-secret row has \"peer\": null"
assert_eq "$(recv --no-mark -c -i "$PB1" | grep -c '"peer":"berlin","sequence":null}$')" 1 "-c shows the peer"
printf '%s\n' "$(recv --no-mark -i "$PP1")" | grep -qx '  "peer": "paris",' || fail "the pretty output does not show the peer on its line"
assert_eq "$(jf "$(recv --no-mark --peer berlin --from 10.3.3.2)" '[.[].id] | join(",")')" "$PB2" "--peer with --from: both must hold"
assert_eq "$(jf "$(recv --no-mark --peer paris -s ack_failed)" 'length')" 0 "--peer with --state"
assert_eq "$(jf "$(recv --no-mark --peer rome)" 'length')" 0 "--peer of no row: an empty array"
expect_error "no inbound message with id $PP1 that matches the filters" recv --no-mark -i "$PP1" --peer berlin
assert_eq "$(jf "$(recv --no-mark -i "$PB1" --peer berlin)" .id)" "$PB1" "-i with --peer"
# --peer marks only what it shows
out=$(recv --peer berlin)
assert_eq "$(reads "$PB1")|$(reads "$PB2")|$(reads "$PP1")|$(reads "$PN1")" "1|1|0|0" "--peer marks only its rows"
assert_eq "$(jf "$(recv --peer berlin)" length)" 0 "--peer: its rows are read now"
assert_eq "$(jf "$(recv --no-mark)" '[.[].id] | join(",")')" "$PN1,$PP1" "the other rows are still unread"
# outbound: -o --peer shows the rows sg-send --peer queued (and each outbound row's peer)
OP=$(send --peer berlin '{"to":"berlin"}' | jq -r .row_id)
send -q --peer paris '{"to":"paris"}'
out=$(recv -o --peer berlin)
assert_eq "$(jc "$out" '[.[] | [.id, .peer, .dst_addr, .dst_port]]')" "[[$OP,\"berlin\",\"\",0]]" "-o --peer: the rows to it, without a destination"
assert_eq "$(jf "$(recv -o -n 0)" '[.[] | .peer // "null"] | join(",")')" "paris,berlin,null,null,null" "-o: every row's peer"
# --follow --peer: only that peer's new rows
"$SG_BIN/sg-recv" -f -c --peer berlin > "$T/followp.out" 2> "$T/followp.err" &
FPP=$!
BG=$FPP
wait_for 5 "the --peer follower's banner" grep -q "^Following new messages" "$T/followp.err"
inp "$(newid)" 10.3.3.1 "'paris'" > /dev/null
LB=$(inp "$(newid)" 10.3.3.1 "'berlin'")
wait_for 5 "the --peer follower shows berlin's new row" grep -q "\"id\":$LB," "$T/followp.out"
kill -TERM "$FPP"
wait "$FPP" || fail "--follow --peer did not end cleanly"
BG=""
assert_eq "$(jq -r '[.id, .peer] | join(",")' "$T/followp.out")" "$LB,berlin" "--follow --peer: only the new row of that peer"
expect_error "--peer: '.x' is not a peer name" recv --peer .x
expect_error "--peer: '' is not a peer name" recv -o --peer ''
expect_error "option '--peer' needs a value" recv --peer
note "--peer: only its rows (inbound from it, outbound to it, followed), marked alone; every row shows its peer, null for the shared secret"

# ---- sequence: a version 2 sender's number, in every row (null without one) ----
# inq MESSAGE_ID PEER SEQUENCE_SQL: an unread inbound row with a sequence; prints its id.
inq() {
    q a "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, peer, sequence) VALUES ('$1', '10.3.3.1', 4000, '{\"seq\":' || ifnull($3, 0) || '}', '2025', 'ack_sent', '$2', $3); SELECT last_insert_rowid();"
}
SQ2=$(inq "$(newid)" berlin 2)
SQ1=$(inq "$(newid)" berlin 1)
SQM=$(inq "$(newid)" paris 9223372036854775807)
out=$(recv --no-mark -i "$SQ2")
assert_eq "$(jf "$out" .sequence)" 2 "a row's sequence"
assert_eq "$(jf "$out" 'keys_unsorted | last')" sequence "sequence is the last column"
printf '%s\n' "$out" | grep -qx '  "sequence": 2' || fail "the pretty output does not show the sequence on its own last line"
assert_eq "$(recv --no-mark -c -i "$SQ1" | grep -c '"peer":"berlin","sequence":1}$')" 1 "-c shows the sequence"
recv --no-mark -c -i "$SQM" | grep -q '"sequence":9223372036854775807}$' || fail "the largest sequence is not shown exactly"
assert_eq "$(recv --no-mark -c -i "$PN1" | grep -c '"peer":null,"sequence":null}$')" 1 "a version 1 row: sequence null"
assert_eq "$(jf "$(recv --no-mark -i "$PN1")" 'has("sequence")')" true "a version 1 row has \"sequence\": null"
out=$(recv --no-mark -r --peer berlin -n 0)
assert_eq "$(jc "$out" '[.[] | select(.sequence != null)] | sort_by(.sequence) | [.[].id]')" "[$SQ1,$SQ2]" "a peer's rows in its order, by sequence"
assert_eq "$(jf "$(recv --no-mark -p -i "$SQ2")" .seq)" 2 "-p: the payload alone, no sequence"
# outbound rows show theirs too (the number given when first sent to a version 2 peer)
q a "UPDATE outbound_messages SET sequence = 7 WHERE id = $OP"
assert_eq "$(jf "$(recv -o -i "$OP")" '[.peer, .sequence] | map(tostring) | join(",")')" berlin,7 "-o: an outbound row's sequence"
assert_eq "$(jf "$(recv -o -n 0)" '.[0] | keys_unsorted | last')" sequence "-o: sequence is the last column"
assert_eq "$(jf "$(recv -o -n 0)" '[.[] | .sequence // "null"] | join(",")')" "null,7,null,null,null" "-o: null where a row has none"
note "sequence: the last column of every row, the number exactly as stored, null for version 1; -o too"

# ---- errors ----
expect_error "--limit: '-1' is not a whole number" recv -n -1
expect_error "--limit: 'abc'" recv -n abc
expect_error "--limit: '1.5'" recv --limit 1.5
expect_error "--from filters inbound messages" recv -o --from 10.0.0.7
expect_error "--to filters outbound messages" recv --to 10.0.0.7
expect_error "--from: 'nowhere' is not an IPv4 or IPv6 address" recv --from nowhere
expect_error "--to: '1.2.3'" recv -o --to 1.2.3
expect_error "--interval applies only with --follow" recv --interval 2
expect_error "--backlog applies only with --follow" recv --backlog
expect_error "--interval: '0'" recv -f --interval 0
expect_error "--interval: 'x'" recv -f --interval x
expect_error "cannot be used with --follow" recv -i 1 -f
expect_error "cannot be used with --since-id" recv -i 1 --since-id 3
expect_error "--since-id: '-3'" recv --since-id -3
expect_error "--state: 'bogus' is not an inbound state" recv -s bogus
expect_error "--state: 'pending' is not an inbound state" recv -s pending
expect_error "--state: 'ack_sent' is not an outbound state" recv -o -s ack_sent
expect_error "unknown option '--bogus'" recv --bogus
expect_error "unknown option '-z'" recv -z
expect_error "option '-n' needs a value" recv -n
expect_error "unexpected argument 'extra'" recv extra
rc=0
recv --db "$T/missing.db" > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc|$(wc -l < "$T/err")" "1|2" "missing database: exit 1, two lines"
assert_eq "$(sed -n 1p "$T/err")" "ERROR: Database not found at $T/missing.db" "missing database line (the original's)"
assert_eq "$(recv -V)" "sg-recv $(sed -n 's/.*SG_VERSION "\(.*\)"/\1/p' "$HERE/../../src/util/version.h")" "-V"
help=$(recv --help)
for opt in --limit --outbound --state --from --to --peer --id --read-included --no-mark --follow \
           --backlog --interval --since-id --compact --payload-only --db --version --help \
           -n -o -s -i -r -f -c -p -V -h; do
    printf '%s\n' "$help" | grep -qF -- "$opt" || fail "--help does not mention $opt"
done
note "invalid values and combinations are one ERROR line; -V; --help lists every option"

# ---- a failed write marks the rows unread again ----
q a "UPDATE inbound_messages SET read_count = 0"
before=$(q a "SELECT count(*) FROM inbound_messages WHERE read_count = 0")
rc=0
recv -n 0 > /dev/full 2> "$T/err" || rc=$?
assert_eq "$rc" 1 "writing to a full device fails"
grep -q "^ERROR: cannot write the output.*stay unread" "$T/err" || fail "unexpected error: $(cat "$T/err")"
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE read_count = 0")" "$before" "rows unread after the failed write"
note "a failed write leaves every row unread"

# ---- two readers at once never share an unread message ----
q a "UPDATE inbound_messages SET read_count = 1"
round=1
while [ "$round" -le 20 ]; do
    q a "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 10)
         INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state)
         SELECT lower(hex(randomblob(12))), '10.5.5.5', 1, '{\"r\":$round}', '2025', 'ack_sent' FROM c"
    "$SG_BIN/sg-recv" -n 0 -c > "$T/r1" 2> "$T/e1" &
    p1=$!
    "$SG_BIN/sg-recv" -n 0 -c > "$T/r2" 2> "$T/e2" &
    p2=$!
    wait "$p1" || fail "reader 1 failed in round $round: $(cat "$T/e1")"
    wait "$p2" || fail "reader 2 failed in round $round: $(cat "$T/e2")"
    jq -r .message_id "$T/r1" | sort > "$T/i1"
    jq -r .message_id "$T/r2" | sort > "$T/i2"
    both=$(comm -12 "$T/i1" "$T/i2" | wc -l)
    assert_eq "$both" 0 "round $round: messages returned to both readers"
    assert_eq "$(cat "$T/i1" "$T/i2" | wc -l)" 10 "round $round: every new message returned once"
    cat "$T/i1" "$T/i2" >> "$T/all"
    round=$((round + 1))
done
assert_eq "$(sort -u "$T/all" | wc -l)" 200 "200 distinct messages returned"
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE src_addr='10.5.5.5' AND read_count = 1")" 200 "each marked exactly once"
note "20 rounds of two concurrent readers: 200 messages, none returned twice"

# ---- a busy database ----
printf 'BEGIN IMMEDIATE;\nUPDATE inbound_messages SET read_count = 0 WHERE src_addr = %s;\n.shell touch %s/locked; sleep 7\nCOMMIT;\n' \
    "'10.9.9.9'" "$T" | sqlite3 securedgram.db > /dev/null &
LOCKER=$!
wait_for 5 "the lock is held" test -e "$T/locked"
recv --no-mark -n 1 > /dev/null || fail "--no-mark cannot read while another process writes"
t0=$(date +%s%N)
expect_error "Database is busy: database is locked" recv
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -ge 4500 ] || fail "gave up on a busy database after only $el ms"
wait "$LOCKER"
note "while locked, --no-mark reads; marking is 'Database is busy' after ${el} ms"

# ---- a file that is not a securedgram database: refused, left byte for byte ----
refuses_foreign recv "" "-o" "-f" "-n 0 --no-mark"
note "a foreign database or an empty file: one ERROR line, the file byte for byte as it was"

# ---- hostile payloads: memory and output stay bounded ----
# 50 valid payloads nested 98 deep (the daemon accepts 100) and padded to 64 KB:
# indented, each would grow a hundredfold (326 MB of output, as much memory).
command -v /usr/bin/time > /dev/null || fail "GNU time is missing (scripts/deps.sh test installs it)"
q a "DELETE FROM inbound_messages"
q a "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 50)
     INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state)
     SELECT lower(hex(randomblob(12))), '10.6.6.6', 4000,
            '{\"k\":' || k || ',\"deep\":' || replace(hex(zeroblob(97)), '00', '[') ||
            replace(hex(zeroblob(32000)), '00', '1,') || '1' || replace(hex(zeroblob(97)), '00', ']') || '}',
            '2025', 'ack_sent' FROM c"
in_kb=$(( $(q a "SELECT sum(length(payload)) FROM inbound_messages") / 1024 ))
# rss_of NAME ARGS...: runs sg-recv ARGS into $T/NAME.out; prints its peak RSS in KB.
rss_of() {
    n=$1
    shift
    /usr/bin/time -f %M -o "$T/$n.rss" "$SG_BIN/sg-recv" "$@" > "$T/$n.out" || fail "sg-recv $* failed"
    tail -n 1 "$T/$n.rss"
}
# About 6 MB in fact (16 MB built with ASan); unbounded, it was 320 MB.
max_kb=40960
for args in "-n 0" "-n 0 -c" "-n 0 -p" "-n 0 -f --backlog"; do
    name=$(printf '%s' "$args" | tr -d ' -')
    if [ "$args" = "-n 0 -f --backlog" ]; then
        # --follow keeps running: its high-water mark once it has shown every row.
        "$SG_BIN/sg-recv" $args --no-mark > "$T/$name.out" &
        FP=$!
        BG=$FP
        wait_for 10 "the follower's 50 rows" has_n "$T/$name.out" 50
        kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$FP/status")
        kill -TERM "$FP"
        wait "$FP" || fail "sg-recv $args did not end cleanly"
        BG=""
    else
        kb=$(rss_of "$name" $args --no-mark)
    fi
    out_kb=$(( $(wc -c < "$T/$name.out") / 1024 ))
    [ "$kb" -lt "$max_kb" ] || fail "sg-recv $args: peak RSS $kb KB for $in_kb KB of payloads (bound $max_kb)"
    [ "$out_kb" -lt $(( 2 * in_kb )) ] || fail "sg-recv $args: $out_kb KB of output for $in_kb KB of payloads"
    jq -s -e 'length >= 1' "$T/$name.out" > /dev/null || fail "sg-recv $args: output is not JSON"
    note "hostile payloads, sg-recv $args: ${kb} KB peak RSS, ${out_kb} KB out for ${in_kb} KB in"
done
assert_eq "$(jq 'length' "$T/n0.out")" 50 "every hostile row shown"
# Shown compact, on one line, but the same JSON: the stored text comes back byte for byte.
assert_eq "$(jq -c '.[0].payload' "$T/n0.out" | wc -c)" "$(q a "SELECT length(payload) + 1 FROM inbound_messages WHERE payload LIKE '{\"k\":50,%'")" "a hostile payload, compact"
assert_eq "$(jq -r '.[0].payload.k' "$T/n0.out")|$(jq -r '.[0].read_count' "$T/n0.out")" "50|0" "hostile rows newest first, unread"
grep -q '^    "payload": {"k":50,"deep":\[\[\[' "$T/n0.out" || fail "the compact payload is not on the payload's line"
assert_eq "$(wc -l < "$T/n0c.out")" 50 "-c: one line per hostile row"
# The marking still happens (once, atomically): a plain read marks all 50.
kb=$(rss_of mark -n 0)
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE read_count = 1")" 50 "hostile rows marked read"
[ "$kb" -lt "$max_kb" ] || fail "marking read: peak RSS $kb KB"
note "hostile payloads shown compact within the indented output, JSON intact, rows marked"
