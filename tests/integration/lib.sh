# Sourced by every integration test: real daemons in a temp dir, real UDP on
# loopback, real SQLite files. Conditions are waited on with deadlines.
set -eu
: "${SG_BIN:?SG_BIN must name the directory of the built programs}"
: "${SG_TOOL:?SG_TOOL must name the sgtest helper}"
: "${SG_RELAY:=$(dirname "$SG_TOOL")/sgrelay}" # the lossy relay, built beside sgtest
T=$(mktemp -d "${TMPDIR:-/tmp}/sg-it.XXXXXX")
ME=$(id -un)
# A small quarantine: SQLite frees a 64 KB statement journal per insert, and the
# default 256 MB quarantine would show that churn as the daemon's memory.
export ASAN_OPTIONS="log_path=$T/asan:detect_leaks=1:quarantine_size_mb=8"
export UBSAN_OPTIONS="log_path=$T/ubsan:print_stacktrace=1"
# Every SECUREDGRAM_* of the caller's environment, so that none can change a result.
for v in $(env | sed -n 's/^\(SECUREDGRAM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# VALGRIND=1: every daemon started runs under valgrind (memcheck, leaks); waits get longer.
SLOW=1
[ -n "${VALGRIND:-}" ] && SLOW=10
export SGTEST_SLOW=$SLOW
sg() {
    case " $* " in
    *" start "* | *" restart "*)
        if [ -n "${VALGRIND:-}" ]; then
            valgrind -q --trace-children=yes --child-silent-after-fork=no --leak-check=full \
                --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                --log-file="$T/valgrind.%p" "$SG_BIN/securedgram" "$@"
            return
        fi ;;
    esac
    "$SG_BIN/securedgram" "$@"
}
sgtest() { "$SG_TOOL" "$@"; }
# Every sqlite3 a test runs waits out a daemon's short write locks instead of
# failing with "database is locked" (the daemon holds one for each turn).
sqlite3() { command sqlite3 -cmd ".timeout 5000" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  - $*"; }

cleanup() {
    rc=$?
    # relays (and other helpers a test started, NAME.bg.pid) first: a sanitizer writes its
    # report at exit
    for pf in "$T"/*.relay.pid "$T"/*.bg.pid; do
        [ -f "$pf" ] || continue
        pid=$(cat "$pf" 2>/dev/null || true)
        [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
    done
    for pf in "$T"/*/securedgram.pid; do
        [ -f "$pf" ] || continue
        pid=$(cat "$pf" 2>/dev/null || true)
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    if [ -n "${VALGRIND:-}" ] && grep -l "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]" "$T"/valgrind.* >/dev/null 2>&1; then
        echo "FAIL: valgrind reports:" >&2
        grep -l "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]" "$T"/valgrind.* | xargs cat >&2
        rc=1
    fi
    if ls "$T"/asan* "$T"/ubsan* >/dev/null 2>&1; then
        echo "FAIL: sanitizer reports:" >&2
        cat "$T"/asan* "$T"/ubsan* >&2
        rc=1
    fi
    if [ "$rc" -ne 0 ]; then
        for l in "$T"/*/daemon.log; do
            [ -f "$l" ] && { echo "--- $l (last 20 lines)" >&2; tail -n 20 "$l" >&2; }
        done
    fi
    [ -n "${KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECS DESCRIPTION COMMAND...: runs COMMAND until it succeeds, failing after SECS.
wait_for() {
    secs=$(( $1 * SLOW )) what=$2
    shift 2
    end=$(( $(date +%s%N) + secs * 1000000000 ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.01
    done
}

# expect_error TEXT CMD...: CMD exits 1 with one stderr line "ERROR: ...TEXT..."
# and nothing on stdout (stdin is /dev/null).
expect_error() {
    want=$1
    shift
    rc=0
    "$@" > "$T/out" 2> "$T/err" < /dev/null || rc=$?
    [ "$rc" -eq 1 ] || fail "$*: exit status $rc, expected 1 (stderr: $(cat "$T/err"))"
    [ "$(wc -l < "$T/err")" -eq 1 ] || fail "$*: stderr is not one line: $(cat "$T/err")"
    grep -q '^ERROR: ' "$T/err" || fail "$*: stderr does not start with ERROR: $(cat "$T/err")"
    grep -qF -- "$want" "$T/err" || fail "$*: expected '$want' in: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "$*: wrote to stdout: $(cat "$T/out")"
}

# refuses_foreign TOOL ARGS...: with each ARGS (one string of options), TOOL refuses an
# empty file and another program's database with one ERROR line, and leaves both byte
# for byte as they were (no -wal, the journal mode and tables unchanged).
refuses_foreign() {
    tool=$1
    shift
    : > "$T/empty.db"
    rm -f "$T/foreign.db"
    sqlite3 "$T/foreign.db" "CREATE TABLE notes (id INTEGER PRIMARY KEY, updated_at TEXT, state TEXT);
                             INSERT INTO notes VALUES (1, '2000-01-01', 'acknowledged')"
    for f in empty foreign; do
        sum=$(sha256sum < "$T/$f.db")
        for args in "$@"; do
            # shellcheck disable=SC2086
            expect_error "ERROR: $T/$f.db is not a securedgram database (no table outbound_messages)" \
                "$tool" --db "$T/$f.db" $args
            assert_eq "$(sha256sum < "$T/$f.db")" "$sum" "$tool $args changed $f.db"
            [ ! -e "$T/$f.db-wal" ] || fail "$tool $args left $f.db-wal"
        done
    done
    assert_eq "$(sqlite3 "$T/foreign.db" "PRAGMA journal_mode")|$(sqlite3 "$T/foreign.db" "SELECT group_concat(name) FROM sqlite_master")" \
        "delete|notes" "foreign.db: journal mode and tables unchanged"
}

assert_eq() {
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# mkpeer NAME PORT [SECRET] [BIND]: a daemon directory with its .env.
mkpeer() {
    d="$T/$1"
    mkdir -p "$d"
    cat > "$d/.env" <<ENV
SECUREDGRAM_SECRET=${3:-$SECRET}
SECUREDGRAM_ADDRESS=${4:-127.0.0.1}
SECUREDGRAM_PORT=$2
SECUREDGRAM_LOG=$d/daemon.log
SECUREDGRAM_USER=$ME
SECUREDGRAM_RETRY_INTERVAL=$SLOW
ENV
    chmod 600 "$d/.env"
}

# start NAME [FLAGS...]: starts the daemon of a peer directory (returns once it is ready).
start() {
    n=$1
    shift
    (cd "$T/$n" && sg -v "$@" start)
}

stop() { (cd "$T/$1" && sg stop >/dev/null); }
not_running() { ! status "$1"; }

# kill9 NAME: kills a daemon with SIGKILL and waits until its pid file is free.
kill9() {
    kill -9 "$(cat "$T/$1/securedgram.pid")"
    wait_for 5 "$1 to die" not_running "$1"
}
status() { (cd "$T/$1" && sg status >/dev/null 2>&1); }

# q NAME SQL: runs SQL on a peer's database.
q() { sqlite3 "$T/$1/securedgram.db" "$2"; }

# queue NAME DST_PORT JSON [DST_ADDR]: inserts an outbound row the way any program would.
queue() {
    json=$(printf '%s' "$3" | sed "s/'/''/g")
    q "$1" "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('${4:-127.0.0.1}', $2, '$json'); SELECT last_insert_rowid();"
}

# rows FROM TAG N PAD PEER, or rows FROM TAG N PAD ADDR PORT: FROM queues N rows (one
# transaction) for peer PEER or to ADDR:PORT, each a JSON object with 'content', its tag
# 't', its number 'n' and PAD random bytes of 'pad'; sets F and L to the first and last ids.
rows() {
    if [ $# -ge 6 ]; then to="NULL, '$5', $6"; else to="'$5', '', 0"; fi
    q "$1" "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < $3)
            INSERT INTO outbound_messages (peer, dst_addr, dst_port, payload)
            SELECT $to, json_object('content', '$2 ' || n, 't', '$2', 'n', n,
                   'pad', substr(replace(hex(randomblob(($4 + 1) / 2)), '0', 'x'), 1, $4)) FROM s;
            SELECT (max(id) - $3 + 1) || ' ' || max(id) FROM outbound_messages" > "$T/ids"
    read -r F L < "$T/ids"
}

# delivered FROM TO TAG FIRST LAST SECS [SRC_ADDR]: FROM's rows FIRST..LAST are acknowledged
# within SECS; TO stored each exactly once (and no other row of tag TAG), its payload byte
# for byte as FROM sent it, and (with SRC_ADDR) heard them all from that address.
delivered() {
    nrows=$(($5 - $4 + 1))
    wait_for "$6" "$3: $nrows rows acknowledged" count_is "$1" \
        "SELECT count(*) FROM outbound_messages WHERE id BETWEEN $4 AND $5 AND state='acknowledged'" "$nrows"
    assert_eq "$(q "$2" "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages
                         WHERE json_extract(payload, '\$.t') = '$3'")" "$nrows|$nrows" "$3: $2 stored each row once"
    q "$1" "SELECT message_id, hex(sha3(payload)) FROM outbound_messages WHERE id BETWEEN $4 AND $5 ORDER BY 1" > "$T/sent_ids"
    q "$2" "SELECT message_id, hex(sha3(payload)) FROM inbound_messages WHERE json_extract(payload, '\$.t') = '$3' ORDER BY 1" > "$T/recv_ids"
    cmp -s "$T/sent_ids" "$T/recv_ids" || fail "$3: $2 stored other messages than $1 sent"
    if [ $# -ge 7 ]; then
        assert_eq "$(q "$2" "SELECT group_concat(DISTINCT src_addr) FROM inbound_messages WHERE json_extract(payload, '\$.t') = '$3'")" \
            "$7" "$3: $2 heard the rows from $7"
    fi
}

state_is() { [ "$(q "$1" "SELECT state FROM outbound_messages WHERE id = $2")" = "$3" ]; }
count_is() { [ "$(q "$1" "$2")" = "$3" ]; }

# alive PID: the process exists and is not a zombie (some init processes never reap orphans).
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# freeport [6]: a UDP port free now, and not one handed out before in this test (the
# kernel may give a port just released again: two daemons, or a "dead" port, would share it).
freeport() {
    while :; do
        fp=$(sgtest freeport "$@")
        grep -qx "$fp" "$T/ports" 2>/dev/null || break
    done
    echo "$fp" >> "$T/ports"
    echo "$fp"
}
newid() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# relay NAME [OPTIONS...] LISTEN TARGET: starts sgrelay (see tests/tools/sgrelay.c) in
# the background, for at most 120 s and 1,000,000 datagrams, with --ready and --stats
# in $T/NAME.ready and $T/NAME.stats, and returns once both its sockets are bound.
# unrelay NAME stops it (SIGTERM) and waits for its stats; relay_stat NAME JQ_FILTER
# reads them.
relay() {
    n=$1
    shift
    rm -f "$T/$n.ready" "$T/$n.stats"
    "$SG_RELAY" --max-seconds $((120 * SLOW)) --max-packets 1000000 \
        --ready "$T/$n.ready" --stats "$T/$n.stats" "$@" &
    echo $! > "$T/$n.relay.pid"
    end=$(( $(date +%s%N) + 5000000000 * SLOW ))
    while [ ! -f "$T/$n.ready" ]; do
        alive "$(cat "$T/$n.relay.pid")" || fail "relay $n exited before binding its sockets"
        [ "$(date +%s%N)" -lt "$end" ] || fail "timed out waiting for relay $n to bind"
        sleep 0.01
    done
}
unrelay() {
    pid=$(cat "$T/$1.relay.pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || fail "relay $1 exited with status $?"
    rm -f "$T/$1.relay.pid"
    [ -f "$T/$1.stats" ] || fail "relay $1 wrote no stats"
}
relay_stat() { jq -r "$2" "$T/$1.stats"; }

SECRET=$(sg keygen)
