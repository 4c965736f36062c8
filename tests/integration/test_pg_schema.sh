# The PostgreSQL schema (issue 14), on a throw-away cluster (tests/tools/pgcluster.sh:
# initdb in $T/pg as an unprivileged user, a Unix socket only, stopped and removed at
# the end): data/schema-pg.sql applies twice to the same result; its tables have
# data/schema.sql's columns (names, order, NOT NULL, defaults, types) and indexes,
# plus claimed_by and lease_until; a row inserted as any program would gets SQLite's
# defaults (state, counters, timestamps in SQLite's text, in UTC whatever the session's
# zone); two claimers with SKIP LOCKED never get the same row; the lease reclaim and
# a NOTIFY work as the file's comments say; the rows survive restarts (fast, and
# immediate: a crash). No PostgreSQL installed is a failure, never a skip.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PGC=$ROOT/tests/tools/pgcluster.sh
SCHEMA=$ROOT/data/schema.sql
SCHEMA_PG=$ROOT/data/schema-pg.sql
PGD=$T/pg

# The cluster is stopped before lib.sh's cleanup removes $T, whatever the exit; on a
# failure, its log first.
pg_cleanup() {
    rc=$?
    for d in "$PGD" "$T/nowhere.pg"; do
        [ -d "$d" ] || continue
        if [ "$rc" -ne 0 ] && [ -f "$d/postgres.log" ]; then
            echo "--- $d/postgres.log (last 20 lines)" >&2
            tail -n 20 "$d/postgres.log" >&2
        fi
        sh "$PGC" stop "$d" >&2 || rc=1
    done
    set +e
    (exit "$rc")
    cleanup # reads the status from $?
}
trap pg_cleanup EXIT
# the server's user (postgres, when we are root) must reach $T/pg: $T is mode 0700
[ "$(id -u)" -ne 0 ] || chmod 0711 "$T"

# 1. The cluster: up, as an unprivileged user, on a socket only.
expect_error "PGCLUSTER_BINDIR=$T/nowhere has no initdb" env PGCLUSTER_BINDIR="$T/nowhere" sh "$PGC" start "$T/nowhere.pg"
[ ! -e "$T/nowhere.pg" ] || fail "a failed start made $T/nowhere.pg"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
URI=$(sh "$PGC" start "$PGD") || fail "pgcluster.sh start failed (is PostgreSQL installed? apt-get install postgresql postgresql-client)"
t_start=$(( $(ms) - t0 ))
PSQL=$(sh "$PGC" bindir)/psql
PG_DUMP=$(dirname "$PSQL")/pg_dump
# pq ARGS...: psql on the cluster as securedgram: unaligned, tuples only, quiet, bounded.
pq() { timeout -k 2 20 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" "$@" < /dev/null; }
PORT=${URI##*port=}
case $URI in "postgresql://securedgram@/securedgram?host=$PGD&port=$PORT") ;; *) fail "URI: $URI" ;; esac
[ -S "$PGD/.s.PGSQL.$PORT" ] || fail "no socket $PGD/.s.PGSQL.$PORT"
assert_eq "$(pq -c 'SELECT 1')" 1 "psql \"$URI\" -c 'select 1'"
assert_eq "$(pq -c "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user")" \
    "securedgram false" "the URI's role"
assert_eq "$(pq -c 'SHOW listen_addresses')" "" "listen_addresses (no TCP)"
PGPID=$(head -n 1 "$PGD/data/postmaster.pid")
if [ "$(id -u)" -eq 0 ]; then
    assert_eq "$(stat -c %U "/proc/$PGPID")" postgres "the server's user"
fi
note "cluster in $PGD started in ${t_start} ms: $URI, as $(stat -c %U "/proc/$PGPID"), no TCP"

# 2. The schema applies twice: the same schema, one version row, not a word on a re-run.
# dump: the schema, less the random key of pg_dump's \restrict lines (15.14 and later).
dump() {
    timeout -k 2 20 "$PG_DUMP" --schema-only -d "$URI" > "$T/dump" || fail "pg_dump"
    sed -e '/^\\restrict /d' -e '/^\\unrestrict /d' "$T/dump"
}
pq -f "$SCHEMA_PG" > "$T/apply1" 2>&1 || fail "schema-pg.sql: $(cat "$T/apply1")"
dump > "$T/dump1"
pq -f "$SCHEMA_PG" > "$T/apply2" 2>&1 || fail "schema-pg.sql, again: $(cat "$T/apply2")"
dump > "$T/dump2"
cmp -s "$T/dump1" "$T/dump2" || fail "a second run changed the schema: $(diff "$T/dump1" "$T/dump2")"
[ ! -s "$T/apply2" ] || fail "a second run said: $(cat "$T/apply2")"
assert_eq "$(pq -c "SELECT count(*) || ' ' || max(version) FROM securedgram_schema")" "1 1" "version rows"
note "schema-pg.sql applied twice: same schema (pg_dump), one version row (1), no notice"

# 3. The columns and indexes of data/schema.sql, by name and order, then the claim's.
sqlite3 "$T/ref.db" < "$SCHEMA" > /dev/null
# NAME|NOT NULL (pk for the key)|has a default|type, SQLite's types as PostgreSQL's
sqlite_cols() {
    sqlite3 "$T/ref.db" "SELECT name || '|' || CASE WHEN pk > 0 THEN 'pk' ELSE \"notnull\" END || '|' ||
                         (dflt_value IS NOT NULL) || '|' || CASE type WHEN 'INTEGER' THEN 'bigint'
                         WHEN 'TEXT' THEN 'text' ELSE type END FROM pragma_table_info('$1') ORDER BY cid"
}
pg_cols() {
    pq -c "SELECT column_name || '|' || CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints tc
                JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
                WHERE tc.table_schema = c.table_schema AND tc.table_name = c.table_name
                AND tc.constraint_type = 'PRIMARY KEY' AND k.column_name = c.column_name)
              THEN 'pk' ELSE (is_nullable = 'NO')::int::text END || '|' ||
              (column_default IS NOT NULL)::int || '|' || data_type
           FROM information_schema.columns c
           WHERE table_schema = current_schema() AND table_name = '$1' ORDER BY ordinal_position"
}
# NAME|unique|columns of each index but the primary key's, partial ones apart
sqlite_idx() {
    sqlite3 "$T/ref.db" "SELECT l.name || '|' || l.\"unique\" || '|' || (SELECT group_concat(name) FROM
                         pragma_index_info(l.name)) FROM pragma_index_list('$1') l WHERE l.origin = 'c' ORDER BY 1"
}
pg_idx() {
    pq -c "SELECT c.relname || '|' || i.indisunique::int || '|' || (SELECT string_agg(a.attname, ',' ORDER BY k.n)
             FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = '$1'::regclass AND NOT i.indisprimary AND i.indpred IS NULL ORDER BY 1"
}
for t in outbound_messages inbound_messages peer_sequence; do
    want=$(sqlite_cols "$t")
    [ -n "$want" ] || fail "no columns of $t in data/schema.sql"
    [ "$t" = outbound_messages ] && want="$want
claimed_by|0|0|text
lease_until|0|0|timestamp with time zone"
    got=$(pg_cols "$t")
    [ "$got" = "$want" ] || fail "$t's columns: expected
$want
got
$got"
    assert_eq "$(pg_idx "$t")" "$(sqlite_idx "$t")" "$t's indexes"
done
assert_eq "$(pq -c "SELECT string_agg(table_name || '.' || column_name || ':' || is_identity || ':' || identity_generation, ' ' ORDER BY table_name)
                   FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'id'
                   AND table_name IN ('outbound_messages', 'inbound_messages')")" \
    "inbound_messages.id:YES:BY DEFAULT outbound_messages.id:YES:BY DEFAULT" "the ids (identity, as AUTOINCREMENT)"
assert_eq "$(pq -c "SELECT pg_get_indexdef('idx_outbound_pending'::regclass)")" \
    "CREATE INDEX idx_outbound_pending ON public.outbound_messages USING btree (id) WHERE (state = 'pending'::text)" \
    "the claim's partial index"
note "columns (names, order, NOT NULL, defaults, types) and indexes as data/schema.sql, + claimed_by, lease_until, idx_outbound_pending"

# 4. Rows inserted as any program would, in a session 14 hours east of UTC: SQLite's defaults.
EAST="SET TIME ZONE INTERVAL '+14:00' HOUR TO MINUTE;"
OUT_COLS="state, retry_count, CASE WHEN message_id IS NULL AND sent_at IS NULL AND ack_received_at IS NULL
          AND last_error IS NULL AND peer IS NULL AND sequence IS NULL THEN 'nulls' ELSE 'set' END,
          length(created_at), CASE WHEN created_at = updated_at THEN 'same' ELSE 'differ' END"
IN_COLS="state, ack_sent, read_count, CASE WHEN ack_sent_at IS NULL AND peer IS NULL AND sequence IS NULL
         THEN 'nulls' ELSE 'set' END, length(received_at), CASE WHEN received_at = updated_at THEN 'same' ELSE 'differ' END"
OUT_INS="INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.1', 9, '{\"keep\":\"me\"}')"
IN_INS="INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp)
        VALUES ('00112233445566778899aabb', '127.0.0.1', 9, '{}', '2025-01-31T12:00:00.123456789')"
want=$(sqlite3 "$T/ref.db" "$OUT_INS; SELECT $OUT_COLS FROM outbound_messages WHERE id = last_insert_rowid()")
assert_eq "$want" "pending|0|nulls|23|same" "SQLite's outbound defaults"
assert_eq "$(pq -c "$EAST" -c "$OUT_INS RETURNING $OUT_COLS, claimed_by IS NULL AND lease_until IS NULL")" \
    "$want|t" "outbound defaults (and no claim)"
want=$(sqlite3 "$T/ref.db" "$IN_INS; SELECT $IN_COLS FROM inbound_messages WHERE id = last_insert_rowid()")
assert_eq "$(pq -c "$EAST" -c "$IN_INS RETURNING $IN_COLS")" "$want" "inbound defaults"
KEEP_ID=$(pq -c "SELECT id FROM outbound_messages WHERE payload = '{\"keep\":\"me\"}'")
for c in outbound_messages.created_at inbound_messages.received_at; do
    set -- "${c%.*}" "${c#*.}"
    v=$(pq -c "SELECT $2 FROM $1 ORDER BY id LIMIT 1")
    printf '%s\n' "$v" | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}' ||
        fail "$1.$2 '$v' is not YYYY-MM-DDTHH:MM:SS.SSS"
    # SQLite reads it, as UTC: within 30 s of its 'now'
    assert_eq "$(sqlite3 :memory: "SELECT abs(julianday('$v') - julianday('now')) * 86400 < 30")" 1 \
        "$1.$2 '$v' is now in UTC (SQLite: $(sqlite3 :memory: "SELECT strftime('%Y-%m-%dT%H:%M:%f','now')"))"
done
note "defaults as SQLite's: pending, 0, NULLs; timestamps $v (UTC text, in a +14:00 session)"

# 5. Two claimers, with the claim statement of the file's comments.
# guidance FIRST LAST: the statement from the line matching FIRST to the one matching LAST.
guidance() { sed -n "/^--   $1/,/$2/p" "$SCHEMA_PG" | sed 's/^--   //'; }
CLAIM=$(guidance 'WITH c AS MATERIALIZED' 'o\.created_at;$')
RECLAIM=$(guidance "UPDATE outbound_messages SET state = 'pending'" 'RETURNING id;$')
NOTIFY=$(guidance 'BEGIN; SET LOCAL synchronous_commit' 'COMMIT;$')
case $CLAIM in *"FOR UPDATE SKIP LOCKED"*"RETURNING o.id"*) ;; *) fail "no claim in schema-pg.sql: $CLAIM" ;; esac
case $RECLAIM in *"lease_until < clock_timestamp()"*"RETURNING id;") ;; *) fail "no reclaim in schema-pg.sql: $RECLAIM" ;; esac
case $NOTIFY in *"pg_notify('securedgram_outbound', '')"*) ;; *) fail "no NOTIFY in schema-pg.sql: $NOTIFY" ;; esac
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000)
# claim N WHO: the claim of at most N rows by WHO (a 30 s lease), as one line, only ids returned.
claim() {
    printf '%s\n' "$CLAIM" | sed -e "s/[\$]1/$1/" -e "s/[\$]2/'$2'/" -e 's/[$]3/30/' -e "s/[\$]4/'$NOW'/" \
        -e 's/RETURNING o\.id, .*/RETURNING o.id/' -e '/^ *o\.created_at;$/d' | tr '\n' ' '
    echo ';'
}
pq -c "INSERT INTO outbound_messages (dst_addr, dst_port, payload)
       SELECT '127.0.0.1', 9, '{\"n\":' || n || '}' FROM generate_series(1, 5000) n;
       UPDATE outbound_messages SET state = 'acknowledged' WHERE id > $KEEP_ID AND id <= $KEEP_ID + 4800;
       ANALYZE outbound_messages"
PENDING=$(pq -c "SELECT count(*) FROM outbound_messages WHERE state = 'pending'")
assert_eq "$PENDING" 201 "pending rows"
pq -c "EXPLAIN (COSTS OFF) $(claim 10 x)" | grep -q 'Index Scan using idx_outbound_pending' ||
    fail "the claim does not use idx_outbound_pending: $(pq -c "EXPLAIN $(claim 10 x)")"

# 5a. A claims 60 and holds its transaction open; B, meanwhile, sees them still pending,
# and claims 60 others at once (lock_timeout: it never waits for A's locks).
mkfifo "$T/a.in"
timeout -k 2 30 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" < "$T/a.in" > "$T/a.out" 2> "$T/a.err" &
A_PID=$!
exec 4> "$T/a.in"
echo "BEGIN; $(claim 60 a)" >&4
a_claimed() { [ "$(wc -l < "$T/a.out")" -ge 60 ]; }
wait_for 10 "A's claim of 60 rows" a_claimed
t0=$(ms)
pq -c "SET lock_timeout = '2s'" -c "SELECT count(*) FROM outbound_messages WHERE state = 'pending'" \
    -c "$(claim 60 b)" > "$T/b.out" 2>&1 || fail "B's claim while A holds its rows: $(cat "$T/b.out")"
t_b=$(( $(ms) - t0 ))
echo "COMMIT;" >&4
exec 4>&-
wait "$A_PID" || fail "A's session: $(cat "$T/a.err")"
assert_eq "$(head -n 1 "$T/b.out")" "$PENDING" "pending rows B saw while A held its claim (uncommitted)"
sed 1d "$T/b.out" | sort > "$T/b.ids"
sort "$T/a.out" > "$T/a.ids"
assert_eq "$(wc -l < "$T/a.ids" | tr -d ' ')|$(wc -l < "$T/b.ids" | tr -d ' ')" "60|60" "rows A and B claimed"
[ -z "$(comm -12 "$T/a.ids" "$T/b.ids")" ] || fail "A and B claimed the same rows: $(comm -12 "$T/a.ids" "$T/b.ids" | tr '\n' ' ')"
assert_eq "$(pq -c "SELECT string_agg(claimed_by || ':' || n, ' ' ORDER BY claimed_by) FROM (SELECT claimed_by, count(*) n
                    FROM outbound_messages WHERE state = 'sending' AND lease_until > clock_timestamp() GROUP BY 1) s")" \
    "a:60 b:60" "sending rows by claimer, leased"
pq -c "SELECT id FROM outbound_messages WHERE claimed_by = 'a' ORDER BY 1" | sort | cmp -s - "$T/a.ids" || fail "A's rows in the table"
note "A held 60 rows uncommitted; B saw them pending, skipped them and claimed 60 others in ${t_b} ms; none shared"

# 5b. Two claimers race, one row per transaction, for the 81 rows left (and one by the reclaim).
B_FIRST=$(pq -c "SELECT min(id) FROM outbound_messages WHERE claimed_by = 'b'")
pq -c "UPDATE outbound_messages SET lease_until = clock_timestamp() - interval '1 second' WHERE id = $B_FIRST"
RECLAIMED=$(pq -c "$(printf '%s\n' "$RECLAIM" | sed "s/[\$]1/'$NOW'/")")
assert_eq "$RECLAIMED" "$B_FIRST" "the reclaim of B's row whose lease ended"
assert_eq "$(pq -c "SELECT state || '|' || coalesce(claimed_by, '') || '|' || coalesce(lease_until::text, '') FROM outbound_messages WHERE id = $RECLAIMED")" \
    "pending||" "the reclaimed row"
LEFT=$(pq -c "SELECT count(*) FROM outbound_messages WHERE state = 'pending'")
assert_eq "$LEFT" 82 "pending rows before the race"
for w in c d; do
    i=0
    while [ $i -lt 60 ]; do claim 1 "$w"; i=$((i + 1)); done > "$T/$w.sql"
done
timeout -k 2 30 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" -f "$T/c.sql" > "$T/c.out" 2>&1 < /dev/null &
C_PID=$!
timeout -k 2 30 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" -f "$T/d.sql" > "$T/d.out" 2>&1 < /dev/null &
D_PID=$!
wait "$C_PID" || fail "claimer c: $(cat "$T/c.out")"
wait "$D_PID" || fail "claimer d: $(cat "$T/d.out")"
sort "$T/c.out" "$T/d.out" > "$T/cd.ids"
[ -z "$(uniq -d "$T/cd.ids")" ] || fail "c and d claimed the same rows: $(uniq -d "$T/cd.ids" | tr '\n' ' ')"
assert_eq "$(wc -l < "$T/cd.ids" | tr -d ' ')" "$LEFT" "rows c and d claimed (120 tries)"
assert_eq "$(pq -c "SELECT count(*) FROM outbound_messages WHERE state = 'pending'")" 0 "pending rows after the race"
for w in c d; do
    sort "$T/$w.out" > "$T/$w.ids"
    pq -c "SELECT id FROM outbound_messages WHERE claimed_by = '$w'" | sort | cmp -s - "$T/$w.ids" ||
        fail "$w's rows in the table differ from what its claims returned"
done
note "reclaim: a lease ended, its row back to pending; the race: c $(wc -l < "$T/c.out") + d $(wc -l < "$T/d.out") rows, none twice"

# 6. NOTIFY, as the file proposes, reaches a listener in another session.
mkfifo "$T/l.in"
timeout -k 2 30 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" < "$T/l.in" > "$T/l.out" 2> "$T/l.err" &
L_PID=$!
exec 5> "$T/l.in"
echo "LISTEN securedgram_outbound; SELECT 'listening';" >&5
wait_for 10 "the listener" grep -qx listening "$T/l.out"
pq -c "$NOTIFY" > /dev/null || fail "the NOTIFY statement"
echo "SELECT 'after';" >&5
exec 5>&-
wait "$L_PID" || fail "the listener: $(cat "$T/l.err")"
grep -q '^Asynchronous notification "securedgram_outbound" received from server process with PID [0-9]*\.$' "$T/l.out" ||
    fail "no notification: $(cat "$T/l.out")"
note "the debounced NOTIFY (its own transaction, synchronous_commit off) reached a LISTEN session"

# 7. Restarts: fast, while a session holds an open claim (it is cut off, its claim undone);
# immediate (a crash): a row committed just before is there.
ROWS=$(pq -c "SELECT count(*) || ' ' || sum(id) FROM outbound_messages")
FIRST="SELECT payload || '|' || state || '|' || claimed_by FROM outbound_messages WHERE id = $KEEP_ID"
BEFORE=$(pq -c "$FIRST")
mkfifo "$T/e.in"
timeout -k 2 30 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" < "$T/e.in" > "$T/e.out" 2> "$T/e.err" &
E_PID=$!
exec 6> "$T/e.in"
echo "BEGIN; UPDATE outbound_messages SET claimed_by = 'e' WHERE id = $KEEP_ID RETURNING id;" >&6
wait_for 10 "e's open update" grep -qx "$KEEP_ID" "$T/e.out"
t0=$(ms)
sh "$PGC" restart "$PGD" || fail "pgcluster.sh restart"
t_restart=$(( $(ms) - t0 ))
echo "COMMIT;" >&6
exec 6>&-
rc=0; wait "$E_PID" || rc=$?
[ "$rc" -ne 0 ] || fail "the session open across the restart was not cut off"
grep -q 'terminating connection\|connection to server was lost\|server closed the connection' "$T/e.err" ||
    fail "the cut-off session said: $(cat "$T/e.err")"
assert_eq "$(sh "$PGC" uri "$PGD")" "$URI" "the URI after the restart"
assert_eq "$(pq -c "SELECT count(*) || ' ' || sum(id) FROM outbound_messages")" "$ROWS" "rows after the restart"
assert_eq "$(pq -c "$FIRST")" "$BEFORE" "the first row after the restart (e's uncommitted update undone)"
case $BEFORE in '{"keep":"me"}|sending|'[ab]) ;; *) fail "the first row before the restart: $BEFORE" ;; esac
NEW=$(pq -c "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.1', 9, '{\"crash\":1}') RETURNING id")
t0=$(ms)
sh "$PGC" restart "$PGD" immediate || fail "pgcluster.sh restart immediate"
t_crash=$(( $(ms) - t0 ))
assert_eq "$(pq -c "SELECT payload FROM outbound_messages WHERE id = $NEW")" '{"crash":1}' "the row committed before the crash"
assert_eq "$(pq -c 'SELECT max(version) FROM securedgram_schema')" 1 "the version after the restarts"
note "restart (fast) in ${t_restart} ms cut off an open session and kept every row; restart immediate in ${t_crash} ms kept the last commit"

# 8. Stop: nothing left; a second stop is fine.
PGPID=$(head -n 1 "$PGD/data/postmaster.pid")
t0=$(ms)
sh "$PGC" stop "$PGD" || fail "pgcluster.sh stop"
t_stop=$(( $(ms) - t0 ))
[ ! -e "$PGD" ] || fail "stop left $(ls -A "$PGD" | tr '\n' ' ')"
! alive "$PGPID" || fail "the server $PGPID is still running"
sh "$PGC" stop "$PGD" || fail "a second stop failed"
note "stopped in ${t_stop} ms, $PGD removed; stop again: fine"
exit 0
