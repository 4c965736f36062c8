# The tools on PostgreSQL (issue 14): the same rows, put into a SQLite file and a
# PostgreSQL database with the same statement, give the same output from every
# read of sg-recv (each format and filter, marking as read), sg-clean (dry runs,
# then a deletion) and sg-send (a receipt, --retry, --retry-failed). The only
# differences allowed are the database's name where a tool prints it, and the
# times the tools write from their own clock (today's, normalised to DB and NOW). Then what an operator gets wrong at start: a role that does not exist,
# a server that refuses the connection, a database that does not exist: one
# ERROR line and exit 1, from the daemon and from a tool, and nothing made.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
SQ=$T/s.db

# Both databases made as the daemon makes them (its first start), then the same rows.
P=$(freeport)
mkpeer d "$P"
start d --db "$SQ"
stop d
start d --db "$URI"
stop d
ROWS="INSERT INTO outbound_messages (id, message_id, dst_addr, dst_port, payload, state, retry_count,
        created_at, sent_at, ack_received_at, last_error, updated_at, peer, sequence) VALUES
  (1, 'aaaaaaaaaaaaaaaaaaaaaa01', '10.0.0.1', 7000, '{\"message_id\":\"aaaaaaaaaaaaaaaaaaaaaa01\",\"n\":1}',
      'acknowledged', 0, '2020-01-01T00:00:00.000', '2020-01-01T00:00:01.000', '2020-01-01T00:00:02.000', NULL,
      '2020-01-01T00:00:02.000', NULL, NULL),
  (2, 'aaaaaaaaaaaaaaaaaaaaaa02', '::1', 7001, '{\"s\":\"caf\\u00e9 \\\"q\\\" é ✓\",\"a\":[1,2.5,null,true]}',
      'sent', 3, '2020-01-01T00:01:00.000', '2020-01-01T00:01:01.000', NULL, NULL, '2020-01-01T00:01:01.000', 'paris', 7),
  (3, NULL, '10.0.0.2', 7000, '{\"n\":3}', 'pending', 0, '2026-01-01T00:00:00.000', NULL, NULL, NULL,
      '2026-01-01T00:00:00.000', NULL, NULL),
  (4, 'aaaaaaaaaaaaaaaaaaaaaa04', '10.0.0.1', 7000, 'not json at all', 'send_failed', 10,
      '2020-01-02T00:00:00.000', '2020-01-02T00:00:01.000', NULL, 'max retries exceeded (no ACK)',
      '2020-01-02T00:05:00.000', NULL, NULL),
  (5, 'aaaaaaaaaaaaaaaaaaaaaa05', '10.0.0.3', 7002, '{}', 'send_failed', 2, '2020-01-03T00:00:00.000',
      NULL, NULL, 'peer not answering; not sent', '2020-01-03T00:00:00.000', 'paris', NULL);
INSERT INTO inbound_messages (id, message_id, src_addr, src_port, payload, crypto_timestamp, state, ack_sent,
        read_count, received_at, ack_sent_at, updated_at, peer, sequence) VALUES
  (1, 'bbbbbbbbbbbbbbbbbbbbbb01', '10.0.0.2', 40000, '{\"message_id\":\"bbbbbbbbbbbbbbbbbbbbbb01\",\"t\":\"x\"}',
      '2020-01-01T00:00:00.123456789Z', 'ack_sent', 1, 0, '2020-01-01T00:00:00.200', '2020-01-01T00:00:00.201',
      '2020-01-01T00:00:00.201', NULL, NULL),
  (2, 'bbbbbbbbbbbbbbbbbbbbbb02', '10.0.0.2', 40001, '[1,{\"deep\":{\"er\":\"ü\"}}]', '2020-01-01T00:00:01Z',
      'ack_sent', 1, 2, '2020-01-01T00:00:01.000', '2020-01-01T00:00:01.001', '2020-01-01T00:00:01.001', 'paris', 3),
  (3, 'bbbbbbbbbbbbbbbbbbbbbb03', '::ffff:10.0.0.9', 40002, 'plain text', '2026-01-01T00:00:00Z',
      'received', 0, 0, '2026-01-01T00:00:00.000', NULL, '2026-01-01T00:00:00.000', NULL, NULL),
  (4, 'bbbbbbbbbbbbbbbbbbbbbb04', '10.0.0.4', 40003, '{\"n\":4}', '2020-01-04T00:00:00Z', 'ack_failed', 0, 1,
      '2020-01-04T00:00:00.000', NULL, '2020-01-04T00:00:00.000', 'lyon', 1);"
sqlite3 "$SQ" "$ROWS" || fail "the rows do not go into SQLite"
pq "$ROWS" || fail "the rows do not go into PostgreSQL"
# the next ids as SQLite's AUTOINCREMENT gives them
pq "SELECT setval(pg_get_serial_sequence('outbound_messages', 'id'), 5);
    SELECT setval(pg_get_serial_sequence('inbound_messages', 'id'), 4)" > /dev/null

# same NAME TOOL ARGS...: the tool's output and exit status on SQLite, then on PostgreSQL;
# they must be the same, the database's name aside. Stdin is empty (sg-clean's question).
N=0
same() {
    what=$1
    shift
    N=$((N + 1))
    for db in "$SQ" "$URI"; do
        rc=0
        "$@" --db "$db" < /dev/null > "$T/out" 2>&1 || rc=$?
        shown=$(echo "$URI" | sed 's/&/\\&/g')
        sed -e "s|$shown|DB|g" -e "s/$(date -u +%Y-%m-%d)T[0-9:.]*/NOW/g" -e "s|$SQ|DB|g" -e "s|postgresql://securedgram@/securedgram?host=$PGD&port=$PORT|DB|g" \
            "$T/out" > "$T/out.$([ "$db" = "$SQ" ] && echo sqlite || echo pg)"
        echo "exit $rc" >> "$T/out.$([ "$db" = "$SQ" ] && echo sqlite || echo pg)"
    done
    if ! cmp -s "$T/out.sqlite" "$T/out.pg"; then
        diff -u "$T/out.sqlite" "$T/out.pg" >&2 || true
        fail "$what: the output differs between SQLite (-) and PostgreSQL (+)"
    fi
    [ -s "$T/out.sqlite" ] || fail "$what: no output"
}
R=$SG_BIN/sg-recv
same "sg-recv, every inbound row" "$R" -r --no-mark -n 0
same "sg-recv, every outbound row" "$R" -o -n 0
same "sg-recv -o -s send_failed -c" "$R" -o -s send_failed -c
same "sg-recv -o --to 10.0.0.1" "$R" -o --to 10.0.0.1 -c
same "sg-recv --from" "$R" --from 10.0.0.2 -r --no-mark -c
same "sg-recv --peer" "$R" --peer paris -r --no-mark -c
same "sg-recv -o --peer" "$R" -o --peer paris -c
same "sg-recv -i message_id" "$R" -i bbbbbbbbbbbbbbbbbbbbbb02
same "sg-recv -o -i row" "$R" -o -i 2
same "sg-recv -i a missing row" "$R" -i 99
same "sg-recv -p" "$R" -p -r --no-mark
same "sg-recv --since-id -n 2" "$R" --since-id 1 -r --no-mark -n 2 -c
same "sg-recv -s ack_failed" "$R" -s ack_failed -r --no-mark -c
same "sg-recv, the unread, marked" "$R"
same "sg-recv, the unread again: none" "$R"
same "sg-recv, the read counts after marking" "$R" -r --no-mark -c
same "sg-recv, a bad state" "$R" -s nosuch
C=$SG_BIN/sg-clean
same "sg-clean --dry-run 30d" "$C" --dry-run 30d
same "sg-clean --dry-run --before" "$C" --dry-run --before 2020-01-02T12:00Z --outbound-only
same "sg-clean --dry-run --include-unread" "$C" --dry-run --include-unread --inbound-only 1d
same "sg-clean without a yes" "$C" --no-vacuum 30d
same "sg-clean -y" "$C" -y 30d
same "the rows sg-clean left" "$R" -o -n 0 -c
same "the inbound rows sg-clean left" "$R" -r --no-mark -n 0 -c
S=$SG_BIN/sg-send
same "sg-send" "$S" -m cccccccccccccccccccccc01 10.0.0.8 7003 '{"hello":"wörld"}'
same "sg-send, a message_id taken" "$S" -m cccccccccccccccccccccc01 10.0.0.8 7003 '{"hello":"again"}'
same "sg-send --peer" "$S" --peer lyon '{"to":"lyon"}'
same "sg-send, bad JSON" "$S" 10.0.0.8 7003 '{"unclosed":'
same "sg-send --retry-failed --peer" "$S" --retry-failed --peer paris
same "sg-send --retry of a row not failed" "$S" --retry 6
same "the rows sg-send wrote" "$R" -o --since-id 5 -n 0 -c
note "$N reads and writes of sg-recv, sg-clean and sg-send: the same output on both backends"

# What an operator gets wrong at start: one ERROR line, exit 1, from the daemon and a tool.
FREE=$(sgtest freeport)
for bad in \
    "PostgreSQL refused the login for user nosuchrole|postgresql://nosuchrole@/securedgram?host=$PGD&port=$PORT" \
    "cannot connect to PostgreSQL at 127.0.0.1 port $FREE|postgresql://securedgram@127.0.0.1:$FREE/securedgram" \
    "database \"nosuchdb\" does not exist|postgresql://securedgram@/nosuchdb?host=$PGD&port=$PORT" \
    "cannot connect to PostgreSQL at 127.0.0.1 port $FREE|postgresql://securedgram:s3cret@127.0.0.1:$FREE/securedgram"; do
    want=${bad%%|*} db=${bad#*|}
    (cd "$T/d" && expect_error "$want" "$SG_BIN/securedgram" --db "$db" start)
    [ ! -s "$T/d/securedgram.pid" ] || fail "a failed start left a pid file"
    not_running d || fail "a daemon runs after a failed start"
    expect_error "$want" "$R" --db "$db"
    ! grep -q s3cret "$T/err" || fail "the password is in the error: $(cat "$T/err")"
done
assert_eq "$(pq "SELECT count(*) FROM pg_database WHERE datname = 'nosuchdb'")" 0 "a database made by a failed start"
note "a missing role, a refused connection, a missing database: one ERROR line and exit 1"
