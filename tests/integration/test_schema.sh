# The database contract: the daemon creates exactly data/schema.sql, opens a
# database made from that file or by the original, and adds a missing read_count.
. "$(dirname "$0")/lib.sh"

SCHEMA="$(cd "$(dirname "$0")/../.." && pwd)/data/schema.sql"
P=$(freeport)
mkpeer s "$P"

# What the daemon creates is what data/schema.sql creates.
start s; stop s
sqlite3 "$T/from_file.db" < "$SCHEMA" >/dev/null
sqlite3 "$T/s/securedgram.db" .schema > "$T/daemon.schema"
sqlite3 "$T/from_file.db" .schema > "$T/file.schema"
cmp -s "$T/daemon.schema" "$T/file.schema" || fail "schemas differ: $(diff "$T/daemon.schema" "$T/file.schema")"
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
sed 's/^    read_count .*$//' "$SCHEMA" | sqlite3 "$T/s/securedgram.db" >/dev/null
q s "ALTER TABLE outbound_messages ADD COLUMN my_note TEXT"
q s "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, ack_sent)
     VALUES ('$(newid)', CAST('10.0.0.1' AS BLOB), 4000, '{}', '2020-01-01T00:00:00.000000000', 'ack_sent', 1)"
[ "$(q s "SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name='read_count'")" = 0 ] ||
    fail "the old schema already has read_count"
start s
assert_eq "$(q s "SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name='read_count'")" 1 "read_count added"
assert_eq "$(q s "SELECT read_count, typeof(src_addr) FROM inbound_messages")" "0|blob" "old row kept"
ROW=$(q s "INSERT INTO outbound_messages (dst_addr, dst_port, payload, my_note) VALUES ('127.0.0.1', $P, '{}', 'mine'); SELECT last_insert_rowid();")
wait_for 5 "delivery with an extra column" state_is s "$ROW" acknowledged
assert_eq "$(q s "SELECT my_note FROM outbound_messages WHERE id=$ROW")" mine "extra column kept"
stop s
note "an old database is migrated (read_count) and its rows and extra columns kept"
