#!/bin/sh
# A throw-away PostgreSQL cluster for the tests: no mocks, a real server.
#
#   pgcluster.sh start DIR      initdb in DIR/data and start it; prints the libpq URI
#   pgcluster.sh stop DIR       stop it (if running) and remove what start made; idempotent
#   pgcluster.sh restart DIR [fast|immediate]
#                               stop (fast: clients are disconnected, a checkpoint is
#                               made; immediate: like a crash, recovery at the start) and
#                               start the same cluster, data kept, on the same port
#                               (also after its postmaster was killed: stale lock files
#                               are removed)
#   pgcluster.sh uri DIR        prints the URI again
#   pgcluster.sh bindir         prints the directory of the PostgreSQL programs used
#
# The server runs as an unprivileged user: `postgres` (Debian's package creates it)
# when this script runs as root, else the current user; PGCLUSTER_USER names another.
# It listens on no TCP port (listen_addresses=''), only on the Unix socket
# DIR/.s.PGSQL.PORT, PORT a random high number (it only names the socket; DIR
# makes it unique). Authentication is trust, for the local socket only. DIR and
# the socket are the server user's, mode 0700 (root connects anyway); with
# PGCLUSTER_SHARED=1 they are 0711 and 0777, for a client that runs as another user
# (a daemon that drops its privileges). Every step is bounded in time.
#
# The URI is postgresql://securedgram@/securedgram?host=DIR&port=PORT: the role
# securedgram (not a superuser) owns the database securedgram. The superuser is
# postgres, e.g. postgresql://postgres@/securedgram?host=DIR&port=PORT.
#
# Errors: one line "ERROR: ..." on stderr, exit status 1. PostgreSQL not installed
# is an error, never a skip. The server log is DIR/postgres.log until stop.
set -eu

die() { echo "ERROR: $*" >&2; exit 1; }

# Nothing of the caller's libpq environment (PGHOST, PGPORT, ...) may change which server is used.
for v in $(env | sed -n 's/^\(PG[A-Z_]*\)=.*/\1/p'); do
    case $v in PGCLUSTER_*) ;; *) unset "$v" ;; esac
done

# The directory of initdb, pg_ctl, postgres and psql: PGCLUSTER_BINDIR, else pg_config's
# (if it holds initdb; Debian's pg_config comes with libpq-dev), else the newest
# /usr/lib/postgresql/*/bin (Debian puts initdb there, not on PATH), else initdb's on PATH.
find_bindir() {
    if [ -n "${PGCLUSTER_BINDIR:-}" ]; then
        [ -x "$PGCLUSTER_BINDIR/initdb" ] || die "PGCLUSTER_BINDIR=$PGCLUSTER_BINDIR has no initdb"
        echo "$PGCLUSTER_BINDIR"
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        b=$(pg_config --bindir 2>/dev/null || true)
        [ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && { echo "$b"; return; }
    fi
    b=$(for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"; done | sort -t/ -k5,5n | tail -n 1)
    [ -n "$b" ] && { echo "$b"; return; }
    if command -v initdb >/dev/null 2>&1; then
        b=$(dirname "$(readlink -f "$(command -v initdb)")")
        [ -x "$b/pg_ctl" ] && { echo "$b"; return; }
    fi
    die "PostgreSQL is not installed (no initdb in pg_config --bindir, /usr/lib/postgresql/*/bin or PATH): apt-get install postgresql postgresql-client"
}

BINDIR=$(find_bindir)
for p in initdb pg_ctl postgres; do
    [ -x "$BINDIR/$p" ] || die "PostgreSQL is incomplete: no $BINDIR/$p"
done
if [ -x "$BINDIR/psql" ]; then PSQL=$BINDIR/psql
elif command -v psql >/dev/null 2>&1; then PSQL=$(command -v psql)
else die "no psql: apt-get install postgresql-client"; fi
command -v timeout >/dev/null 2>&1 || die "no timeout (coreutils)"

# The server's user: none (this one) unless root.
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
    RUNAS=${PGCLUSTER_USER:-postgres}
    id -u "$RUNAS" >/dev/null 2>&1 ||
        die "no user '$RUNAS' to run the server as (initdb refuses root); install postgresql, which creates it, or set PGCLUSTER_USER"
    [ "$(id -u "$RUNAS")" -ne 0 ] || die "PGCLUSTER_USER=$RUNAS is root; initdb refuses root"
fi

# as_server CMD...: runs CMD as the server's user, from /, so that no cwd of ours
# matters (runuser, else setpriv; both are util-linux).
as_server() {
    if [ -z "$RUNAS" ]; then
        (cd / && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$RUNAS" -- "$@")
    else
        (cd / && setpriv --reuid="$RUNAS" --regid="$(id -g "$RUNAS")" --init-groups -- "$@")
    fi
}

# setdir DIR: DIR made absolute (it need not exist yet), checked, and the paths in it.
setdir() {
    [ -n "$1" ] || die "no DIR"
    case $1 in /*) D=$1 ;; *) D=$(pwd)/$1 ;; esac
    D=$(printf '%s\n' "$D" | sed -e 's://*:/:g' -e 's:/$::')
    # DIR goes unquoted into a URI, a config file and a socket path.
    case $D in *[!A-Za-z0-9/._+-]*) die "DIR '$D' has a character other than A-Z a-z 0-9 / . _ + -" ;; esac
    # a Unix socket path is at most 107 bytes: DIR/.s.PGSQL.NNNNN
    [ ${#D} -le 92 ] || die "DIR '$D' is too long for a Unix socket path (more than 92 bytes)"
    DATA=$D/data
    LOG=$D/postgres.log
}

# The port: the last "port = N" line of the cluster's postgresql.conf.
port_of() { sed -n 's/^port = \([0-9]*\).*/\1/p' "$DATA/postgresql.conf" 2>/dev/null | tail -n 1; }
uri_of() { echo "postgresql://${2:-securedgram}@/securedgram?host=$D&port=$1"; }

# alive PID: the process exists and is not a zombie (an init that does not reap would
# keep the postmaster, re-parented to it, as one).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# running: the postmaster of DATA is alive (not a zombie: pg_ctl status alone would say
# running of a killed postmaster that no init has reaped).
running() {
    [ -f "$DATA/postmaster.pid" ] || return 1
    alive "$(head -n 1 "$DATA/postmaster.pid")" || return 1
    as_server timeout 10 "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

last_log() { tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }

# server_start: starts the cluster in DATA on the port of its postgresql.conf (returns
# 0), 2 if that port's lock file is someone else's, 3 if backends of a killed postmaster
# still hold its shared memory, else dies.
server_start() {
    rc=0
    as_server timeout -k 5 40 "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 -s start \
        >/dev/null 2>"$D/pg_ctl.err" < /dev/null || rc=$?
    if [ "$rc" -eq 0 ] && running; then
        rm -f "$D/pg_ctl.err"
        return 0
    fi
    # a server that did start but not in time must not stay behind
    server_stop immediate 2>/dev/null || true
    if tail -n 5 "$LOG" 2>/dev/null | grep -q 'lock file .*\.s\.PGSQL\.[0-9]*\.lock.* already exists'; then
        return 2
    fi
    if tail -n 5 "$LOG" 2>/dev/null | grep -q 'pre-existing shared memory block .* is still in use'; then
        return 3
    fi
    die "the server in $DATA did not start (status $rc, port $(port_of)): $(tr '\n' ' ' < "$D/pg_ctl.err" 2>/dev/null)$(last_log)"
}

# server_stop [fast|immediate]: stops the server if it runs; data kept. Bounded: fast,
# then immediate, then SIGKILL of the postmaster (its children follow it).
server_stop() {
    mode=${1:-fast}
    [ -f "$DATA/PG_VERSION" ] || return 0
    if ! running; then
        # a killed postmaster's lock files name a dead (or zombie) pid: the next start
        # would take them for a live server's
        rm -f "$DATA/postmaster.pid" "$D"/.s.PGSQL.*
        return 0
    fi
    as_server timeout -k 5 25 "$BINDIR/pg_ctl" -D "$DATA" -m "$mode" -w -t 20 -s stop >/dev/null 2>&1 && return 0
    as_server timeout -k 5 15 "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 10 -s stop >/dev/null 2>&1 && return 0
    pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null || true
    i=0
    while alive "$pid"; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || die "the postmaster $pid of $DATA survives SIGKILL"
        sleep 0.1
    done
    rm -f "$DATA/postmaster.pid" "$D"/.s.PGSQL.*
}

random_port() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000)); }

# superuser_psql SQL: runs SQL as postgres on the database postgres.
superuser_psql() {
    timeout -k 2 20 "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 \
        -d "postgresql://postgres@/postgres?host=$D&port=$(port_of)&connect_timeout=10" -c "$1" < /dev/null
}

cmd_start() {
    setdir "$1"
    [ ! -e "$DATA" ] || die "$DATA exists: restart it, or stop it first"
    mkdir -p "$D"
    rm -f "$D/pg_ctl.err" "$LOG"
    if [ -n "${PGCLUSTER_SHARED:-}" ]; then chmod 0711 "$D"; else chmod 0700 "$D"; fi
    if [ -n "$RUNAS" ]; then
        chown "$RUNAS:$(id -g "$RUNAS")" "$D"
        if ! as_server test -w "$D" -a -x "$D"; then
            a=$D
            while [ "$a" != / ] && [ -n "$a" ]; do
                a=$(dirname "$a")
                as_server test -x "$a" || die "the user $RUNAS cannot reach $D: $a is not searchable by it (chmod o+x $a)"
            done
            die "the user $RUNAS cannot write to $D"
        fi
    fi
    # C collation: bytewise, as SQLite's BINARY; UTF8, as SQLite's text
    if ! as_server timeout -k 5 60 "$BINDIR/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
            --auth-local=trust --auth-host=reject --no-sync --no-instructions \
            > "$D/initdb.log" 2>&1 < /dev/null; then
        die "initdb $DATA failed: $(tail -n 3 "$D/initdb.log" | tr '\n' ' ')"
    fi
    rm -f "$D/initdb.log"
    sock_mode=0700
    [ -n "${PGCLUSTER_SHARED:-}" ] && sock_mode=0777
    # fsync and full_page_writes off: only an OS crash could lose data, a server crash
    # (restart immediate) cannot; synchronous_commit stays on, so a commit that returned
    # is in the kernel's page cache and survives the server.
    cat >> "$DATA/postgresql.conf" <<CONF

# pgcluster.sh: a throw-away test cluster
listen_addresses = ''
unix_socket_directories = '$D'
unix_socket_permissions = $sock_mode
fsync = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 50
max_wal_size = 256MB
huge_pages = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
port = 0
CONF
    tries=0
    while :; do
        tries=$((tries + 1))
        port=$(random_port)
        sed -i "s/^port = [0-9]*.*/port = $port/" "$DATA/postgresql.conf"
        rc=0
        server_start || rc=$?
        [ "$rc" -eq 0 ] && break
        [ "$tries" -lt 5 ] || die "no free port for the socket in $D after $tries tries"
    done
    superuser_psql "CREATE ROLE securedgram LOGIN" >/dev/null ||
        die "cannot create the role securedgram: $(last_log)"
    superuser_psql "CREATE DATABASE securedgram OWNER securedgram" >/dev/null ||
        die "cannot create the database securedgram: $(last_log)"
    uri=$(uri_of "$port")
    [ "$(timeout -k 2 20 "$PSQL" -X -q -A -t -d "$uri" -c 'select 1' < /dev/null 2>&1)" = 1 ] ||
        die "psql '$uri' -c 'select 1' does not answer 1"
    echo "$uri"
}

cmd_stop() {
    setdir "$1"
    server_stop fast
    rm -rf "$DATA"
    rm -f "$LOG" "$D/pg_ctl.err" "$D/initdb.log" "$D"/.s.PGSQL.*
    rmdir "$D" 2>/dev/null || true
}

cmd_restart() {
    setdir "$1"
    case ${2:-fast} in fast | immediate) ;; *) die "restart: mode '$2' is not fast or immediate" ;; esac
    [ -f "$DATA/PG_VERSION" ] || die "no cluster in $DATA (start it first)"
    server_stop "${2:-fast}"
    i=0
    while :; do
        rc=0
        server_start || rc=$?
        if [ "$rc" -ne 3 ] || [ "$i" -ge 50 ]; then break; fi
        i=$((i + 1))
        sleep 0.1 # the killed postmaster's backends are on their way out
    done
    [ "$rc" -ne 3 ] || die "cannot restart $DATA: a killed postmaster's backends still hold its shared memory"
    [ "$rc" -eq 0 ] || die "cannot restart $DATA: its port $(port_of) is locked by another server"
}

cmd_uri() {
    setdir "$1"
    port=$(port_of)
    [ -n "$port" ] || die "no cluster in $DATA"
    uri_of "$port"
}

case ${1:-} in
start) [ $# -eq 2 ] || die "usage: pgcluster.sh start DIR"; cmd_start "$2" ;;
stop) [ $# -eq 2 ] || die "usage: pgcluster.sh stop DIR"; cmd_stop "$2" ;;
restart) { [ $# -ge 2 ] && [ $# -le 3 ]; } || die "usage: pgcluster.sh restart DIR [fast|immediate]"; cmd_restart "$2" "${3:-fast}" ;;
uri) [ $# -eq 2 ] || die "usage: pgcluster.sh uri DIR"; cmd_uri "$2" ;;
bindir) echo "$BINDIR" ;;
*) die "usage: pgcluster.sh start|stop|restart|uri DIR, or pgcluster.sh bindir" ;;
esac
