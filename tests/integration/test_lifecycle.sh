# start/stop/restart/status/poll, the pid file, signals, privilege drop.
. "$(dirname "$0")/lib.sh"

P=$(freeport)
mkpeer l "$P"
cd "$T/l"

sg status >/dev/null && fail "status says running before start"
rc=0; sg status >/dev/null || rc=$?
assert_eq "$rc" 3 "status exit code when stopped"
sg start
[ -s securedgram.pid ] || fail "no pid file"
PID=$(cat securedgram.pid)
alive "$PID" || fail "pid file names no live process"
sg status | grep -q "running (pid $PID)" || fail "status text"
[ "$(stat -c %a securedgram.db)" = 600 ] || fail "database mode is not 600"
for f in securedgram.db-wal securedgram.db-shm; do
    [ ! -e "$f" ] || [ "$(stat -c %a "$f")" = 600 ] || fail "$f mode is not 600"
done
note "start writes the pid file; database files are 0600"

# A second start is refused, and the first daemon is untouched.
sg start 2>"$T/err" && fail "second start succeeded"
grep -q "already running (pid $PID" "$T/err" || fail "second start message: $(cat "$T/err")"
alive "$PID" || fail "first daemon died"

# USR1 logs one line of counters; the daemon keeps running.
kill -USR1 "$PID"
wait_for 5 "counters line" grep -q "counters: rx=" daemon.log
alive "$PID" || fail "USR1 killed the daemon"
note "USR1 logs a line of counters"

# status gets the counters without a line in the log (issue 9 item 12: a monitor running it
# every minute added 1,440 lines a day), even at debug level; USR1 still logs its one line.
sg stop >/dev/null
sg -d start
PID=$(cat securedgram.pid)
lines() { wc -l <daemon.log; }
more_lines() { [ "$(lines)" -gt "$1" ]; }
before=$(lines)
for i in 1 2 3 4 5; do
    out=$(sg status) || fail "status $i: exit $?"
    assert_eq "$(echo "$out" | head -n 1)" "securedgram is running (pid $PID)" "status $i, line 1"
    echo "$out" | sed -n 2p | grep -q "^counters: rx=[0-9]* stored=" ||
        fail "status $i shows no counters: $out"
done
assert_eq "$(lines)" "$before" "log lines after 5 status"
kill -USR1 "$PID"
wait_for 5 "a counters line for USR1" more_lines "$before"
assert_eq "$(lines)" "$((before + 1))" "log lines after USR1"
tail -n 1 daemon.log | grep -q "counters: rx=" || fail "USR1 logged: $(tail -n 1 daemon.log)"
note "status 5 times leaves the log as it was; USR1 adds one line"

# stop: clean exit, pid file removed; poll returns at once when stopped.
sg stop | grep -q "stopped (pid $PID)" || fail "stop message"
[ ! -e securedgram.pid ] || fail "pid file left after stop"
alive "$PID" && fail "process still alive after stop"
grep -q "shutting down" daemon.log || fail "no shutdown line in the log"
sg poll
sg stop | grep -q "not running" || fail "stop when stopped"
note "stop, status, poll"

# TERM, INT and QUIT each shut down cleanly.
for s in TERM INT QUIT; do
    sg start
    PID=$(cat securedgram.pid)
    kill -s "$s" "$PID"
    sg poll
    [ ! -e securedgram.pid ] || fail "pid file left after $s"
done
note "TERM, INT, QUIT"

# poll waits for a running daemon to stop.
sg start
PID=$(cat securedgram.pid)
( sg poll; echo done > "$T/polled" ) &
[ ! -e "$T/polled" ] || fail "poll returned while running"
sg stop >/dev/null
wait_for 5 "poll to return" test -e "$T/polled"

# restart gives a new process.
sg start
OLD=$(cat securedgram.pid)
sg restart >/dev/null
NEW=$(cat securedgram.pid)
[ "$OLD" != "$NEW" ] || fail "restart kept the same pid"
sg status >/dev/null || fail "not running after restart"
sg stop >/dev/null
note "restart"

# A stale pid file (no live owner) is taken over.
echo 999999 > securedgram.pid
sg status >/dev/null && fail "stale pid file taken for running"
sg start
[ "$(cat securedgram.pid)" != 999999 ] || fail "stale pid file not replaced"
sg stop >/dev/null

# The port is taken: start fails with the reason, non-zero, and leaves nothing.
mkpeer holder "$P"
start holder
sg start 2>"$T/err" && fail "started on a taken port"
grep -q "cannot bind UDP 127.0.0.1 port $P: Address already in use" "$T/err" || fail "bind error: $(cat "$T/err")"
[ ! -e securedgram.pid ] || fail "pid file written although bind failed"
stop holder
note "stale pid file taken over; a taken port is reported"

# An unusable database: start fails with the reason and no daemon stays.
mkdir -p ro && chmod 500 ro
if [ "$(id -u)" -ne 0 ]; then
    sg --db ro/x.db start 2>"$T/err" && fail "started without a writable database"
    grep -q "cannot open database" "$T/err" || fail "database error: $(cat "$T/err")"
fi
echo "this is not a database, just text that is long enough to fill a header page" > junk.db
sg --db junk.db start 2>"$T/err" && fail "started on a file that is not a database"
grep -q "ERROR: cannot use database" "$T/err" || fail "not-a-database error: $(cat "$T/err")"
[ ! -e securedgram.pid ] || fail "pid file left after a database error"
sg status >/dev/null && fail "a daemon runs after a database error"
note "a file that is not a database is refused at start"

# Privilege drop (as root): to an existing user, and fail closed for a missing one.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -p "$T/priv" && chmod 777 "$T/priv"
    chmod 711 "$T"
    sg -u nobody --db "$T/priv/p.db" -P "$T/priv/p.pid" start
    PID=$(cat "$T/priv/p.pid")
    assert_eq "$(ps -o user= -p "$PID" | tr -d ' ')" nobody "daemon user"
    assert_eq "$(stat -c %U "$T/priv/p.db")" nobody "database owner"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK after the drop"
    sg -P "$T/priv/p.pid" stop >/dev/null
    sg -u no-such-user-xyz start 2>"$T/err" && fail "started as a missing user"
    grep -q "user 'no-such-user-xyz' does not exist" "$T/err" || fail "missing user message"
    sg status >/dev/null && fail "a daemon runs after a failed drop"
    note "drops to nobody; fails closed for a missing user"
fi

# A bad value in .env must not keep an operator from stopping or querying the daemon.
sg start
PID=$(cat securedgram.pid)
cp .env env.good
echo "SECUREDGRAM_PORT=not-a-port" >> .env
sg status 2>"$T/err" | grep -q "running (pid $PID)" || fail "status with a bad .env"
grep -q "WARNING: SECUREDGRAM_PORT must be a port number" "$T/err" || fail "no warning about the bad .env"
sg start 2>"$T/err" && fail "start accepted a bad .env"
sg stop 2>/dev/null | grep -q "stopped (pid $PID)" || fail "stop with a bad .env"
rc=0; sg status >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 3 "status exit code with a bad .env, stopped"
cp env.good .env
note "stop and status work with a bad .env (a warning names the bad value)"
