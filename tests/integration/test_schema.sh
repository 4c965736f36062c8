# The database contract: the daemon creates exactly data/schema.sql, opens a
# database made from that file or by the original, and adds a missing
# read_count, the peer columns (issue 11) and the sequence columns and the
# peer_sequence table (sequence numbers), keeping every row as it was; a
# tool's open adds them too.
. "$(dirname "$0")/lib.sh"

SCHEMA="$(cd "$(dirname "$0")/../.." && pwd)/data/schema.sql"
# The original's schema: data/schema.sql without the peer and sequence columns
# and the peer_sequence table.
original_schema() {
    sed -e '/^    peer /d' -e '/^    sequence /d' -e '/^    updated_at /s/,$//' \
        -e '/^CREATE TABLE IF NOT EXISTS peer_sequence/,/^);/d' "$SCHEMA"
}
# The release before sequence numbers: the original's with the peer columns.
peer_schema() {
    sed -e '/^    sequence /d' -e '/^    peer /s/,$//' \
        -e '/^CREATE TABLE IF NOT EXISTS peer_sequence/,/^);/d' "$SCHEMA"
}
# column DB TABLE NAME: "type|notnull|default|last" of that column ("" if none).
column() {
    sqlite3 "$1" "SELECT type || '|' || \"notnull\" || '|' || ifnull(dflt_value, 'none') || '|' ||
                  (cid = (SELECT max(cid) FROM pragma_table_info('$2')))
                  FROM pragma_table_info('$2') WHERE name = '$3'"
}
# peer_column DB TABLE: the same for its peer column, which is followed by sequence.
peer_column() { column "$1" "$2" peer; }
# has_seq_table DB: 1 if peer_sequence is there, else 0.
has_seq_table() { sqlite3 "$1" "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'peer_sequence'"; }
# rows DB: every row of both tables, every column but peer and sequence, in id order.
rows() {
    for t in outbound_messages inbound_messages; do
        cols=$(sqlite3 "$1" "SELECT group_concat('quote(' || name || ')', ' || ''|'' || ') FROM pragma_table_info('$t') WHERE name NOT IN ('peer', 'sequence')")
        sqlite3 "$1" "SELECT $cols FROM $t ORDER BY id"
    done
}
P=$(freeport)
mkpeer s "$P"

# What the daemon creates is what data/schema.sql creates.
start s; stop s
sqlite3 "$T/from_file.db" < "$SCHEMA" >/dev/null
sqlite3 "$T/s/securedgram.db" .schema > "$T/daemon.schema"
sqlite3 "$T/from_file.db" .schema > "$T/file.schema"
cmp -s "$T/daemon.schema" "$T/file.schema" || fail "schemas differ: $(diff "$T/daemon.schema" "$T/file.schema")"
for t in outbound_messages inbound_messages; do
    assert_eq "$(peer_column "$T/s/securedgram.db" $t)" "TEXT|0|none|0" "$t.peer: TEXT, nullable, no default"
    assert_eq "$(column "$T/s/securedgram.db" $t sequence)" "INTEGER|0|none|1" "$t.sequence: INTEGER, nullable, no default, the last column"
done
assert_eq "$(sqlite3 "$T/s/securedgram.db" "SELECT group_concat(name || ':' || type || ':' || \"notnull\" || ':' || pk) FROM pragma_table_info('peer_sequence')")" \
    "peer:TEXT:1:1,last:INTEGER:1:0" "peer_sequence (peer, last)"
assert_eq "$(sqlite3 "$T/s/securedgram.db" "PRAGMA journal_mode")" wal "journal mode"
note "the daemon's schema is data/schema.sql's"

# A database made from the file is used as it is.
rm -f "$T/s/securedgram.db"*
cp "$T/from_file.db" "$T/s/securedgram.db"
start s
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK"
stop s

# An old database: inbound table without read_count, BLOB sender addresses, an
# extra column of someone's own. The daemon migrates it and keeps every row.
rm -f "$T/s/securedgram.db"*
original_schema | sed 's/^    read_count .*$//' | sqlite3 "$T/s/securedgram.db" >/dev/null
q s "ALTER TABLE outbound_messages ADD COLUMN my_note TEXT"
q s "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, ack_sent)
     VALUES ('$(newid)', CAST('10.0.0.1' AS BLOB), 4000, '{}', '2020-01-01T00:00:00.000000000', 'ack_sent', 1)"
[ "$(q s "SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name='read_count'")" = 0 ] ||
    fail "the old schema already has read_count"
start s
assert_eq "$(q s "SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name='read_count'")" 1 "read_count added"
assert_eq "$(peer_column "$T/s/securedgram.db" inbound_messages)" "TEXT|0|none|0" "peer added after read_count"
assert_eq "$(column "$T/s/securedgram.db" inbound_messages sequence)" "INTEGER|0|none|1" "sequence added after peer"
assert_eq "$(q s "SELECT read_count, typeof(src_addr) FROM inbound_messages")" "0|blob" "old row kept"
ROW=$(q s "INSERT INTO outbound_messages (dst_addr, dst_port, payload, my_note) VALUES ('127.0.0.1', $P, '{}', 'mine'); SELECT last_insert_rowid();")
wait_for 5 "delivery with an extra column" state_is s "$ROW" acknowledged
assert_eq "$(q s "SELECT my_note FROM outbound_messages WHERE id=$ROW")" mine "extra column kept"
stop s
note "an old database is migrated (read_count) and its rows and extra columns kept"

# An original's database (read_count, no peer) with rows in both tables: the
# daemon adds peer to both tables, NULL in every row, and every other value of
# every row stays as it was; messages then flow as before, stored with peer NULL.
rm -f "$T/s/securedgram.db"*
original_schema | sqlite3 "$T/s/securedgram.db" >/dev/null
q s "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, retry_count, sent_at, ack_received_at, last_error)
     VALUES ('$(newid)', '10.0.0.2', 61773, '{\"o\":1}', 'acknowledged', 2, '2020-01-01T00:00:01.000', '2020-01-01T00:00:02.000', NULL),
            (NULL, '10.0.0.3', 7, '{\"o\":2}', 'send_failed', 10, NULL, NULL, 'max retries exceeded (no ACK)')"
q s "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, ack_sent, read_count, ack_sent_at)
     VALUES ('$(newid)', '10.0.0.4', 4000, '{\"i\":1}', '2020-01-01T00:00:00.000000000', 'ack_sent', 1, 3, '2020-01-01T00:00:00.500')"
for t in outbound_messages inbound_messages; do
    assert_eq "$(peer_column "$T/s/securedgram.db" $t)" "" "the original's $t has no peer"
    assert_eq "$(column "$T/s/securedgram.db" $t sequence)" "" "the original's $t has no sequence"
done
cp "$T/s/securedgram.db" "$T/for_tool.db"
before=$(rows "$T/s/securedgram.db")
start s
for t in outbound_messages inbound_messages; do
    assert_eq "$(peer_column "$T/s/securedgram.db" $t)" "TEXT|0|none|0" "$t.peer added by the daemon"
    assert_eq "$(column "$T/s/securedgram.db" $t sequence)" "INTEGER|0|none|1" "$t.sequence added by the daemon, after peer"
done
assert_eq "$(has_seq_table "$T/s/securedgram.db")" 1 "peer_sequence added by the daemon"
assert_eq "$(rows "$T/s/securedgram.db")" "$before" "every row kept, value for value"
assert_eq "$(q s "SELECT (SELECT count(*) FROM outbound_messages WHERE peer IS NULL) || '|' || (SELECT count(*) FROM inbound_messages WHERE peer IS NULL)")" "2|1" "peer NULL in the old rows"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK after the migration"
assert_eq "$(q s "SELECT count(*) FROM inbound_messages WHERE message_id = '$ID' AND peer IS NULL AND sequence IS NULL")" 1 "a shared-secret message is stored with peer and sequence NULL"
ROW=$(q s "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.1', $P, '{}'); SELECT last_insert_rowid();")
wait_for 5 "delivery after the migration" state_is s "$ROW" acknowledged
assert_eq "$(q s "SELECT ifnull(sequence, 'null') FROM outbound_messages WHERE id = $ROW")" null "a row sent with version 1 has no sequence"
stop s
start s
stop s
assert_eq "$(peer_column "$T/s/securedgram.db" inbound_messages)" "TEXT|0|none|0" "opened again: the column is not added twice"
assert_eq "$(q s "SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name = 'sequence'")" 1 "opened again: sequence is not added twice"
note "an original's database gets peer and sequence (NULL) in both tables and peer_sequence; every row kept; messages flow"

# A tool opening an original's database adds the columns too (the daemon need
# not have run first), and shows them.
out=$("$SG_BIN/sg-recv" --db "$T/for_tool.db" --no-mark -r -c)
for t in outbound_messages inbound_messages; do
    assert_eq "$(peer_column "$T/for_tool.db" $t)" "TEXT|0|none|0" "$t.peer added by sg-recv"
    assert_eq "$(column "$T/for_tool.db" $t sequence)" "INTEGER|0|none|1" "$t.sequence added by sg-recv"
done
assert_eq "$(has_seq_table "$T/for_tool.db")" 1 "peer_sequence added by sg-recv"
assert_eq "$(rows "$T/for_tool.db")" "$before" "sg-recv's migration kept every row"
assert_eq "$(printf '%s\n' "$out" | jq -c '[.read_count, .peer, .sequence]')" '[3,null,null]' "sg-recv shows the new columns as null"
note "a tool's open migrates an original's database the same way"

# The release before sequence numbers (peer, no sequence, no peer_sequence):
# the daemon adds the sequence columns (NULL in every row, after peer) and the
# table; every value, peer included, stays.
rm -f "$T/s/securedgram.db"*
peer_schema | sqlite3 "$T/s/securedgram.db" >/dev/null
q s "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, peer)
     VALUES ('$(newid)', '', 0, '{\"o\":1}', 'acknowledged', 'berlin'), ('$(newid)', '10.0.0.3', 7, '{\"o\":2}', 'acknowledged', NULL)"
q s "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, ack_sent, read_count, peer)
     VALUES ('$(newid)', '10.0.0.4', 4000, '{\"i\":1}', '2020-01-01T00:00:00.000000000', 'ack_sent', 1, 1, 'paris')"
assert_eq "$(peer_column "$T/s/securedgram.db" inbound_messages)" "TEXT|0|none|1" "the release before: peer is last"
assert_eq "$(has_seq_table "$T/s/securedgram.db")" 0 "the release before: no peer_sequence"
cp "$T/s/securedgram.db" "$T/for_tool2.db"
before=$(rows "$T/s/securedgram.db")
peers=$(q s "SELECT group_concat(ifnull(peer, '-')) FROM (SELECT peer FROM outbound_messages ORDER BY id)")
start s
for t in outbound_messages inbound_messages; do
    assert_eq "$(column "$T/s/securedgram.db" $t sequence)" "INTEGER|0|none|1" "$t.sequence added after peer"
done
assert_eq "$(has_seq_table "$T/s/securedgram.db")" 1 "peer_sequence added"
assert_eq "$(rows "$T/s/securedgram.db")" "$before" "every row kept"
assert_eq "$(q s "SELECT group_concat(ifnull(peer, '-')) FROM (SELECT peer FROM outbound_messages ORDER BY id)")" "$peers" "peers kept"
assert_eq "$(q s "SELECT count(*) FROM outbound_messages WHERE sequence IS NULL") $(q s "SELECT count(*) FROM inbound_messages WHERE sequence IS NULL")" "2 1" "sequence NULL in the old rows"
stop s
"$SG_BIN/sg-clean" --db "$T/for_tool2.db" --dry-run 1s > /dev/null || fail "sg-clean on the release before's database"
assert_eq "$(column "$T/for_tool2.db" outbound_messages sequence)|$(has_seq_table "$T/for_tool2.db")" "INTEGER|0|none|1|1" "sg-clean's open adds them too"
assert_eq "$(rows "$T/for_tool2.db")" "$before" "sg-clean's migration kept every row"
note "the release before sequence numbers: sequence (NULL) after peer in both tables, peer_sequence; rows kept, by the daemon or a tool"
