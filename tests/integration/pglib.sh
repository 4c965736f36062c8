# Sourced after lib.sh by the tests of the PostgreSQL backend: a throw-away cluster
# (tests/tools/pgcluster.sh: initdb in $PGD=$T/pg, a Unix socket only), its URI in $URI,
# psql in $PSQL and pq SQL (unaligned, tuples only, bounded in time). The cluster is
# stopped before lib.sh's cleanup, whatever the exit, its log shown on a failure, and
# processes a test stopped (FROZEN, SIGSTOP) are let go first.
PGC=$(cd "$(dirname "$0")/../tools" && pwd)/pgcluster.sh
PGD=$T/pg
FROZEN=""
pg_cleanup() {
    rc=$?
    # shellcheck disable=SC2086
    [ -z "$FROZEN" ] || kill -CONT $FROZEN 2>/dev/null || true
    if [ -d "$PGD" ]; then
        [ "$rc" -eq 0 ] || { echo "--- $PGD/postgres.log (last 20 lines)" >&2; tail -n 20 "$PGD/postgres.log" >&2; }
        sh "$PGC" stop "$PGD" >&2 || rc=1
    fi
    set +e
    (exit "$rc")
    cleanup # reads the status from $?
}
trap pg_cleanup EXIT
# the server's user (postgres, when we are root) must reach $T/pg: $T is mode 0700
[ "$(id -u)" -ne 0 ] || chmod 0711 "$T"
URI=$(sh "$PGC" start "$PGD") || fail "pgcluster.sh start failed (is PostgreSQL installed? apt-get install postgresql)"
PSQL=$(sh "$PGC" bindir)/psql
PORT=${URI##*port=}
pq() { timeout -k 2 20 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URI" -c "$1" < /dev/null; }
