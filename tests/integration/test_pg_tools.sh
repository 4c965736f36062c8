# The tools on PostgreSQL (issue 14: "every tool works on either backend with the
# same options and output"). The same rows, put into a SQLite file and a PostgreSQL
# database with the same statement, give the same output from every read of sg-recv
# (each format and filter, marking as read, --follow), sg-clean (dry runs, text and
# --json, then a deletion) and sg-send (a receipt, --retry, --retry-failed). Then
# rows made by real daemons: a daemon on each backend sends messages to itself
# (sg-send --wait), and sg-recv, sg-clean and `securedgram status --json`'s queue
# give the same output for both. Then what an operator gets wrong at start: a role
# that does not exist, a wrong password and none (scram-sha-256 for one role), a
# server that refuses the connection (a TCP port and a socket directory where
# nothing listens), a database that does not exist (postgresql:// and postgres://):
# one ERROR line and exit 1, from the daemon (--db, and SECUREDGRAM_DB in its .env)
# and from each tool, no password shown, and nothing made (no file, database, role
# or table); and a database without our tables, for the tools.
#
# What the comparison normalises, and why (everything else must be byte for byte):
#   - the database's location where a tool prints it (the SQLite path, the URI):
#     DB. They name different databases;
#   - times of today (YYYY-MM-DDT... from the clock of the tool or the daemon that
#     wrote them, or of the envelope): NOW. Two runs never write the same instant;
#     the fixture rows' fixed times are compared as they are;
#   - with an AGE (sg-clean 30d) only, the cutoff it prints (text and --json): CUTOFF.
#     It is "now - AGE", a second or more apart in two runs; a --before cutoff is
#     compared as it is.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
# Nothing of the caller's libpq environment (PGPASSWORD, PGHOST, ...) may change a result.
for v in $(env | sed -n 's/^\(PG[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
# sup DB SQL: as the cluster's superuser
sup() { timeout -k 2 20 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "postgresql://postgres@/$1?host=$PGD&port=$PORT" -c "$2" < /dev/null; }
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

# norm DB [age]: stdin with the normalisations above (DB: the location to hide).
norm() {
    shown=$(printf '%s\n' "$1" | sed 's/[&|]/\\&/g')
    if [ "${2:-}" = age ]; then
        set -- "$1" -e 's/^Cutoff: [0-9-]* [0-9:]*/Cutoff: CUTOFF/' -e 's/^  "cutoff": "[^"]*"/  "cutoff": "CUTOFF"/'
    else
        set -- "$1" -e ''
    fi
    shift
    sed -e "s|$shown|DB|g" -e "s/$(date -u +%Y-%m-%d)T[0-9:.]*/NOW/g" "$@"
}
# run_on DB OUT [age] TOOL ARGS...: the tool's output (stdout and stderr) and exit status
# on DB, normalised, in OUT. Stdin is empty (sg-clean's question).
run_on() {
    db=$1 out=$2 mode=
    shift 2
    [ "$1" = age ] && { mode=age; shift; }
    rc=0
    "$@" --db "$db" < /dev/null > "$T/raw" 2>&1 || rc=$?
    norm "$db" $mode < "$T/raw" > "$out"
    echo "exit $rc" >> "$out"
}
# differ WHAT: the outputs of the two backends, $T/out.sqlite and $T/out.pg, are the same
differ() {
    if ! cmp -s "$T/out.sqlite" "$T/out.pg"; then
        diff -u "$T/out.sqlite" "$T/out.pg" >&2 || true
        fail "$1: the output differs between SQLite (-) and PostgreSQL (+)"
    fi
    [ "$(wc -l < "$T/out.sqlite")" -gt 1 ] || fail "$1: no output"
}
# same_in SQLITE_DB PG_DB NAME [age] TOOL ARGS...: the tool on the SQLite database,
# then on the PostgreSQL one; the same output and exit status.
N=0
same_in() {
    sdb=$1 pdb=$2 what=$3
    shift 3
    N=$((N + 1))
    run_on "$sdb" "$T/out.sqlite" "$@"
    run_on "$pdb" "$T/out.pg" "$@"
    differ "$what"
}
same() { same_in "$SQ" "$URI" "$@"; }
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
same "sg-clean --dry-run 30d" age "$C" --dry-run 30d
same "sg-clean --dry-run --json 30d" age "$C" --dry-run --json 30d
same "sg-clean --dry-run --json --before --all-states" "$C" --dry-run --json --all-states --before 2026-06-01T00:00Z
same "sg-clean --dry-run --before" "$C" --dry-run --before 2020-01-02T12:00Z --outbound-only
same "sg-clean --dry-run --include-unread" age "$C" --dry-run --include-unread --inbound-only 1d
same "sg-clean --dry-run -s" age "$C" --dry-run -s send_failed 1d
same "sg-clean without a yes" age "$C" --no-vacuum 30d
same "sg-clean -y" age "$C" -y 30d
same "the rows sg-clean left" "$R" -o -n 0 -c
same "the inbound rows sg-clean left" "$R" -r --no-mark -n 0 -c
S=$SG_BIN/sg-send
same "sg-send" "$S" -m cccccccccccccccccccccc01 10.0.0.8 7003 '{"hello":"wörld"}'
same "sg-send, a message_id taken" "$S" -m cccccccccccccccccccccc01 10.0.0.8 7003 '{"hello":"again"}'
same "sg-send --peer" "$S" --peer lyon '{"to":"lyon"}'
same "sg-send, bad JSON" "$S" 10.0.0.8 7003 '{"unclosed":'
same "sg-send --retry-failed --peer" "$S" --retry-failed --peer paris
same "sg-send --retry of a row not failed" "$S" --retry 6
same "sg-send --retry" "$S" --retry 4
same "sg-send --retry-failed" "$S" --retry-failed
same "the rows sg-send wrote" "$R" -o --since-id 5 -n 0 -c

# --follow, without a daemon (the database watched): the rows there since an id, then
# one another program inserts; the tool is stopped (TERM) once it has shown it.
follow_on() {
    rm -f "$T/follow.out"
    "$R" --db "$1" -f -r -c --no-mark --since-id 1 --interval 0.1 > "$T/follow.out" 2>&1 < /dev/null &
    echo $! > "$T/follow.bg.pid"
    wait_for 10 "sg-recv --follow to show the rows since id 1" sh -c "[ \$(grep -c '^{' '$T/follow.out') -ge 2 ]"
    $2 "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp)
        VALUES ('bbbbbbbbbbbbbbbbbbbbbb09', '127.0.0.1', 9, '{\"late\":true}', '2026-02-02T00:00:00.000000000Z')" > /dev/null
    wait_for 10 "sg-recv --follow to show the new row" grep -q late "$T/follow.out"
    kill -TERM "$(cat "$T/follow.bg.pid")"
    wait "$(cat "$T/follow.bg.pid")" || true
    rm -f "$T/follow.bg.pid"
    norm "$1" < "$T/follow.out" > "$3"
}
sq() { sqlite3 "$SQ" "$1"; }
follow_on "$SQ" sq "$T/out.sqlite"
follow_on "$URI" pq "$T/out.pg"
N=$((N + 1))
differ "sg-recv --follow"
same "sg-recv, after the one inserted while following" "$R" -r --no-mark -n 0 -c
note "$N reads and writes of sg-recv, sg-clean and sg-send: the same output on both backends"

# Rows made by real daemons: a daemon on each backend (in turn, on the same port, so the
# rows name the same addresses) sends 3 messages to itself, each acknowledged and stored;
# the receipts of sg-send --wait, status --json's queue and the reads must be the same.
sup postgres "CREATE DATABASE exch OWNER securedgram" > /dev/null
URI2="postgresql://securedgram@/exch?host=$PGD&port=$PORT" SQ2=$T/x.db
PE=$(freeport)
mkpeer e "$PE"
js() { (cd "$T/$1" && sg status --json) | jq -c "$2"; }
QUEUE='{"outbound":{"acknowledged":3},"inbound":{"ack_sent":3}}'
queue_is() { [ "$(js e .queue)" = "$QUEUE" ]; }
exchange() {
    db=$1 out=$2
    start e --db "$db"
    : > "$out"
    for k in 1 2 3; do
        (cd "$T/e" && run_on "$db" "$T/one" "$S" --wait=10 -m "dddddddddddddddddddddd0$k" 127.0.0.1 "$PE" \
            "{\"k\":$k,\"s\":\"é ✓ \\\"q\\\"\",\"a\":[1,2.50,-0]}")
        cat "$T/one" >> "$out"
    done
    wait_for 10 "the daemon's queue: 3 acknowledged, 3 stored and ACKed" queue_is
    js e '{queue, stored: .counters.stored, acknowledged: .counters.acknowledged, acks_sent: .counters.acks_sent,
           send_failed: .counters.send_failed}' >> "$out"
    stop e
}
exchange "$SQ2" "$T/out.sqlite"
exchange "$URI2" "$T/out.pg"
differ "sg-send --wait to a daemon, and status --json"
n0=$N
same_in "$SQ2" "$URI2" "the daemon's outbound rows" "$R" -o -n 0
same_in "$SQ2" "$URI2" "the daemon's inbound rows, marked" "$R"
same_in "$SQ2" "$URI2" "the daemon's inbound rows, read" "$R" -r --no-mark -c
same_in "$SQ2" "$URI2" "the daemon's payloads" "$R" -p -r --no-mark -n 2
same_in "$SQ2" "$URI2" "sg-recv -o -i message_id" "$R" -o -i dddddddddddddddddddddd02
same_in "$SQ2" "$URI2" "sg-clean of the daemon's rows" age "$C" --dry-run --json 0s
same_in "$SQ2" "$URI2" "sg-clean of the daemon's rows, deleted" age "$C" -y -s ack_sent 0s
same_in "$SQ2" "$URI2" "what was left" "$R" -o -c -n 0
note "3 messages a daemon sent itself on each backend: the same receipts and status queue, and $((N - n0)) reads"

# What an operator gets wrong at start: one ERROR line, exit 1, from the daemon and each
# tool, and nothing made. A role with a password, asked for on the socket (scram-sha-256;
# pgcluster.sh trusts every other login there): the line goes before pgcluster's, as the
# first line that matches decides. The file is rewritten in place (its owner kept).
sup postgres "SET password_encryption = 'scram-sha-256'; CREATE ROLE pwuser LOGIN PASSWORD 'rightpw';
              GRANT CONNECT ON DATABASE securedgram TO pwuser" > /dev/null
sup postgres "CREATE DATABASE empty OWNER securedgram" > /dev/null
HBA=$PGD/data/pg_hba.conf
{ echo "local all pwuser scram-sha-256"; cat "$HBA"; } > "$T/hba" && cat "$T/hba" > "$HBA"
sup postgres "SELECT pg_reload_conf()" > /dev/null
asks_password() {
    ! timeout 5 "$PSQL" -X -w -d "postgresql://pwuser@/securedgram?host=$PGD&port=$PORT" -c 'SELECT 1' > "$T/pw" 2>&1 < /dev/null &&
        grep -q password "$T/pw"
}
wait_for 10 "the server to ask pwuser for a password" asks_password
assert_eq "$(timeout 5 "$PSQL" -X -w -A -t -d "postgresql://pwuser:rightpw@/securedgram?host=$PGD&port=$PORT" -c 'SELECT current_user' < /dev/null)" \
    pwuser "psql with pwuser's password"
mkdir -m 0755 "$T/nopg"
FREE=$(sgtest freeport)
# what the cluster has: databases, roles, and the tables of the database 'empty'
cluster() { sup postgres "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database" &&
            sup postgres "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles" &&
            sup empty "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"; }
cluster > "$T/cluster.before"
files() { (cd "$T/d" && find . ! -name daemon.log | sort); }
files > "$T/files.before"
cases=0
for bad in \
    "PostgreSQL refused the login for user nosuchrole at $PGD port $PORT: role \"nosuchrole\" does not exist|postgresql://nosuchrole@/securedgram?host=$PGD&port=$PORT" \
    "PostgreSQL refused the login for user pwuser at $PGD port $PORT: password authentication failed for user \"pwuser\"|postgresql://pwuser:s3cret@/securedgram?host=$PGD&port=$PORT" \
    "PostgreSQL refused the login for user pwuser at $PGD port $PORT|postgresql://pwuser@/securedgram?host=$PGD&port=$PORT" \
    "cannot connect to PostgreSQL at 127.0.0.1 port $FREE: |postgresql://securedgram@127.0.0.1:$FREE/securedgram" \
    "cannot connect to PostgreSQL at 127.0.0.1 port $FREE: |postgresql://securedgram:s3cret@127.0.0.1:$FREE/securedgram" \
    "cannot connect to PostgreSQL at $T/nopg port $PORT: |postgresql://securedgram@/securedgram?host=$T/nopg&port=$PORT" \
    "database \"nosuchdb\" does not exist|postgresql://securedgram@/nosuchdb?host=$PGD&port=$PORT" \
    "database \"nosuchdb\" does not exist|postgres://securedgram@/nosuchdb?host=$PGD&port=$PORT"; do
    want=${bad%%|*} db=${bad#*|}
    cases=$((cases + 1))
    (cd "$T/d" && expect_error "$want" "$SG_BIN/securedgram" --db "$db" start)
    ! grep -q s3cret "$T/err" || fail "the password is in the daemon's error: $(cat "$T/err")"
    not_running d || fail "a daemon runs after a failed start"
    # the same from the .env, for the daemon and a tool
    cp "$T/d/.env" "$T/env.orig"
    printf 'SECUREDGRAM_DB=%s\n' "$db" >> "$T/d/.env"
    (cd "$T/d" && expect_error "$want" "$SG_BIN/securedgram" start)
    (cd "$T/d" && expect_error "$want" "$R")
    cat "$T/env.orig" > "$T/d/.env"
    expect_error "$want" "$R" --db "$db"
    ! grep -q s3cret "$T/err" || fail "the password is in sg-recv's error: $(cat "$T/err")"
    expect_error "$want" "$S" --db "$db" 127.0.0.1 9 '{"n":1}'
    expect_error "$want" "$S" --db "$db" --retry-failed
    expect_error "$want" "$C" --db "$db" --dry-run 1d
    expect_error "$want" "$C" --db "$db" -y 1d
    files > "$T/files.after"
    cmp -s "$T/files.before" "$T/files.after" || fail "a failed start made files: $(diff "$T/files.before" "$T/files.after")"
done
# a database that is there but not ours: the tools refuse it, and make no table in it
E="postgresql://securedgram@/empty?host=$PGD&port=$PORT"
NOTOURS="PostgreSQL database \"empty\" (schema public) is not a securedgram database (no table outbound_messages)"
expect_error "$NOTOURS" "$R" --db "$E"
expect_error "$NOTOURS" "$S" --db "$E" 127.0.0.1 9 '{"n":1}'
expect_error "$NOTOURS" "$C" --db "$E" -y 1d
cluster > "$T/cluster.after"
cmp -s "$T/cluster.before" "$T/cluster.after" || fail "a failed start or tool changed the cluster: $(diff "$T/cluster.before" "$T/cluster.after")"
note "$cases bad databases (a missing role, a wrong and no password, a refused TCP port and socket, a missing database): one ERROR line and exit 1 from the daemon and each tool, nothing made"

