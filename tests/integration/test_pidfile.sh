# The pid file (issue 9): created and locked as root before the privilege drop, so it may live
# in a directory only root can write (item 2); and a daemon that does not lock it, the Ruby
# original found running by an upgrade, counts as running (item 3).
. "$(dirname "$0")/lib.sh"

P=$(freeport)
mkpeer h "$P"
cd "$T/h"

# At exit, whatever happens: daemons are stopped through their pid files by our own stop, and
# the files removed, since lib.sh's cleanup would kill -9 any pid one names (here pid 1, or a
# sleep); processes started here that no daemon's pid file names are killed.
EXTRA=""
finish() {
    for pf in "$T"/*/*.pid; do
        [ -f "$pf" ] || continue
        "$SG_BIN/securedgram" -P "$pf" stop >/dev/null 2>&1 || true
        rm -f "$pf"
    done
    for p in $EXTRA; do kill -9 "$p" 2>/dev/null || true; done
}
trap 'rc=$?; finish; (exit $rc); cleanup' EXIT

cmdline_is() { [ "$(tr '\0' ' ' <"/proc/$1/cmdline")" = "$2" ]; }
status_rc() { rc=0; sg "$@" status >/dev/null 2>&1 || rc=$?; echo "$rc"; }

# ---- Item 2: root, -u nobody, the pid file in a root-owned 0755 directory (/run) ----
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    chmod 711 "$T"
    R=$T/run # like /run: root's, 0755
    mkdir -m 755 "$R"
    V=$T/var # like /var/lib/securedgram: the service user's, for the database
    mkdir -m 700 "$V" && chown nobody "$V"
    mkdir -m 755 "$T/n" # a directory without .env, for commands run as nobody
    PF=$R/securedgram.pid
    NOBODY_GID=$(id -g nobody)
    asnobody() {
        (cd "$T/n" && setpriv --reuid=nobody --regid="$NOBODY_GID" --clear-groups \
            "$SG_BIN/securedgram" -P "$PF" "$@")
    }
    run() { sg -u nobody -P "$PF" --db "$V/sg.db" "$@"; }

    run start || fail "start as root with -u nobody and the pid file in a root-owned directory"
    PID=$(cat "$PF")
    alive "$PID" || fail "the pid file names no live process"
    assert_eq "$(ps -o user= -p "$PID" | tr -d ' ')" nobody "daemon user"
    assert_eq "$(stat -c '%a %U' "$PF")" "644 root" "pid file mode and owner"
    assert_eq "$(stat -c %U "$V/sg.db")" nobody "database owner"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
        fail "no ACK from the daemon"
    # nobody cannot write $R, so there is no counters file; the control socket beside the
    # pid file was made by root and given to nobody, so status (root's, nobody's) has them.
    [ ! -e "$PF.stats" ] || fail "a counters file in a directory the daemon cannot write"
    assert_eq "$(stat -c '%a %U' "$R/securedgram.sock")" "660 nobody" "control socket mode and owner"
    for who in root nobody; do
        if [ "$who" = root ]; then out=$(sg -P "$PF" status); else out=$(asnobody status); fi ||
            fail "status as $who: exit $?"
        assert_eq "$(echo "$out" | head -n 1)" "securedgram is running (pid $PID)" "status as $who"
        echo "$out" | sed -n 2p | grep -q "^counters: rx=1 stored=1 " || fail "status as $who: $out"
    done
    note "as root with -u nobody: the pid file in a root-owned directory, 0644, status as nobody"

    # stop: the daemon (nobody) cannot remove the file from root's directory, so it empties it;
    # an empty, unlocked file reads as not running, for root and for nobody.
    assert_eq "$(sg -P "$PF" stop)" "securedgram stopped (pid $PID)" "stop"
    alive "$PID" && fail "the daemon is alive after stop"
    [ ! -s "$PF" ] || fail "the pid file still names a pid after stop: $(cat "$PF")"
    assert_eq "$(status_rc -P "$PF")" 3 "status exit code after stop"
    rc=0; asnobody status >/dev/null 2>&1 || rc=$?
    assert_eq "$rc" 3 "status exit code after stop, as nobody"

    # start over the emptied file, then restart: a new daemon each time, mode still 0644.
    run start || fail "start over the emptied pid file"
    OLD=$(cat "$PF")
    run restart >/dev/null || fail "restart"
    NEW=$(cat "$PF")
    [ "$OLD" != "$NEW" ] || fail "restart kept the same pid"
    alive "$OLD" && fail "the first daemon is alive after restart"
    assert_eq "$(sg -P "$PF" status | head -n 1)" "securedgram is running (pid $NEW)" "status after restart"
    assert_eq "$(stat -c '%a %U' "$PF")" "644 root" "pid file mode and owner after restart"
    assert_eq "$(ps -o user= -p "$NEW" | tr -d ' ')" nobody "daemon user after restart"
    sg -P "$PF" stop >/dev/null
    note "stop empties the file it cannot remove; start and restart take it over"

    # Permission errors name the user and the path: nobody may not write root's pid file, and
    # the database must be where the service user can write.
    export SECUREDGRAM_SECRET="$SECRET"
    expect_error "cannot write pid file $PF as user nobody: Permission denied" \
        asnobody -b 127.0.0.1 -p "$P" --db "$V/n.db" -l stdout start
    expect_error "cannot open database $R/x.db as user nobody: Permission denied" \
        sg -u nobody -P "$PF" --db "$R/x.db" start
    unset SECUREDGRAM_SECRET
    [ ! -s "$PF" ] || fail "a pid file left naming a pid after a failed start"
    assert_eq "$(status_rc -P "$PF")" 3 "status exit code after a failed start"
    chmod 600 "$PF"
    expect_error "cannot read pid file $PF as user nobody: Permission denied" asnobody status
    note "permission errors name the user and the path"
fi

# ---- Item 3: the Ruby original, running from the same pid file ----
# Installed as a gem, the original is a script starting "#!/usr/bin/env ruby", so its command
# line is the interpreter's: "ruby /usr/local/bin/securedgram start" (it calls setproctitle(),
# which glibc lacks, so that is what /proc shows for its life). The stand-in is a script with
# the same first line and a "ruby" on PATH that is a shell: its /proc/PID/cmdline is the same,
# argument for argument. Like the original's parent, the test writes the pid file: mode 0600,
# no newline, never locked. A shell ends on USR1 and USR2 by default, and so would the original
# on USR2 (Ruby turns it into an exception nobody rescues): status must send neither.
mkdir -p "$T/rb" "$T/gem/bin"
ln -s "$(command -v sh)" "$T/rb/ruby"
for s in securedgram other-daemon; do
    printf '#!/usr/bin/env ruby\nwhile :; do sleep 1; done\n' >"$T/gem/bin/$s"
    chmod 755 "$T/gem/bin/$s"
done
# original [SCRIPT]: starts the stand-in (OPID) and writes its pid file.
original() {
    PATH="$T/rb:$PATH" "$T/gem/bin/${1:-securedgram}" start </dev/null >/dev/null 2>&1 &
    OPID=$!
    EXTRA="$EXTRA $OPID"
    wait_for 5 "the stand-in original to run" cmdline_is "$OPID" "ruby $T/gem/bin/${1:-securedgram} start "
    (umask 077 && printf %s "$OPID" >securedgram.pid)
}

original
assert_eq "$(status_rc)" 0 "status exit code with the original running"
assert_eq "$(sg status)" "securedgram is running (pid $OPID)" "status with the original running"
alive "$OPID" || fail "status signalled the original"
sg start 2>"$T/err" && fail "started over the running original"
grep -q "already running (pid $OPID," "$T/err" || fail "start message: $(cat "$T/err")"
assert_eq "$(sg stop)" "securedgram stopped (pid $OPID)" "stop with the original running"
alive "$OPID" && fail "the original is alive after stop"
[ ! -e securedgram.pid ] || fail "stop left the original's pid file"
note "status and stop see the original running from its unlocked pid file"

original
sg restart >/dev/null || fail "restart with the original running"
alive "$OPID" && fail "the original is alive after restart"
PID=$(cat securedgram.pid)
assert_eq "$(sg status | head -n 1)" "securedgram is running (pid $PID)" "status after restart"
[ "$PID" != "$OPID" ] || fail "restart left the original's pid"
assert_eq "$(stat -c %a securedgram.pid)" 644 "mode of the pid file taken over from the original"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "no ACK from the daemon that replaced the original"
sg stop >/dev/null

original
(sg poll && echo done >"$T/polled") &
sg status >/dev/null
[ ! -e "$T/polled" ] || fail "poll returned while the original runs"
kill "$OPID"
wait_for 5 "poll to return once the original has gone" test -e "$T/polled"
note "restart replaces the original; poll waits for it"

# argv[0] named securedgram: our program, found by an unlocked pid file (one rewritten by hand).
bash -c 'exec -a /usr/local/bin/securedgram sleep 300' </dev/null >/dev/null 2>&1 &
OPID=$!
EXTRA="$EXTRA $OPID"
wait_for 5 "a process named securedgram" cmdline_is "$OPID" "/usr/local/bin/securedgram 300 "
printf '%s\n' "$OPID" >securedgram.pid
assert_eq "$(status_rc)" 0 "status exit code for a process named securedgram"
assert_eq "$(sg stop)" "securedgram stopped (pid $OPID)" "stop of a process named securedgram"
alive "$OPID" && fail "the process named securedgram is alive after stop"

# Anything else a pid file names is stale, as before: a sleep, pid 1, a ruby running another
# script, and a daemon of ours that holds another pid file's lock (its pid reused).
sleep 300 </dev/null >/dev/null 2>&1 &
SPID=$!
EXTRA="$EXTRA $SPID"
original other-daemon
P2=$(freeport)
mkpeer other "$P2"
start other
OTHER=$(cat "$T/other/securedgram.pid")
for stale in "$SPID" 1 "$OPID" "$OTHER"; do
    printf '%s\n' "$stale" >securedgram.pid
    assert_eq "$(status_rc)" 3 "status exit code for a pid file naming pid $stale"
    assert_eq "$(sg stop)" "securedgram is not running" "stop for a pid file naming pid $stale"
    alive "$stale" || fail "stop ended pid $stale, which is no daemon of this pid file"
done
sg start || fail "start over a pid file naming another daemon"
PID=$(cat securedgram.pid)
[ "$PID" != "$OTHER" ] || fail "the pid file still names the other daemon"
sg stop >/dev/null
alive "$OTHER" || fail "the other daemon died"
stop other
note "a pid file naming a sleep, pid 1, another ruby script or another daemon of ours is stale"
