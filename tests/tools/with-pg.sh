#!/bin/sh
# with-pg.sh COMMAND [ARG...]: runs COMMAND with SG_TEST_PG_URI set to a throw-away
# PostgreSQL cluster's URI (tests/tools/pgcluster.sh in a temporary directory), then
# stops the cluster and removes it, whatever the command did; exits with the
# command's status. For the store's unit tests (make check-unit runs test_store under
# it), e.g.  sh tests/tools/with-pg.sh build/tests/test_store
# No PostgreSQL installed is an error (pgcluster.sh says how to install it), never a
# skip. PGCLUSTER_SHARED=1 is passed on (a client that runs as another user).
set -u

die() { echo "ERROR: with-pg.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: with-pg.sh COMMAND [ARG...]"

PGC=$(cd "$(dirname "$0")" && pwd)/pgcluster.sh
[ -f "$PGC" ] || die "no $PGC"
top=$(mktemp -d "${TMPDIR:-/tmp}/sg-with-pg.XXXXXX") || die "cannot make a temporary directory"
# as root the server runs as postgres, which must reach $top/pg
chmod 0711 "$top" || die "cannot chmod $top"
dir=$top/pg

cleanup() {
    sh "$PGC" stop "$dir" >&2 || echo "WARNING: with-pg.sh: could not stop the cluster in $dir" >&2
    rmdir "$top" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

uri=$(sh "$PGC" start "$dir") || {
    if [ -f "$dir/postgres.log" ]; then tail -n 20 "$dir/postgres.log" >&2; fi
    exit 1
}
SG_TEST_PG_URI=$uri
export SG_TEST_PG_URI
rc=0
"$@" || rc=$?
exit "$rc"
