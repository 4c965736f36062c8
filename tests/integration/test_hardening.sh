# Hardening: the secret from a file, kept out of ps and core dumps; loose file
# modes warned about; per-sender rate limits; counters from `status`; no link
# followed when writing files; no inherited descriptors, capabilities,
# new privileges or forbidden system calls; no copy of the secret in memory.
. "$(dirname "$0")/lib.sh"

P=$(freeport)
mkpeer h "$P"
cd "$T/h"
sed -i '/^SECUREDGRAM_SECRET=/d' .env

# --secret-file: the first line of the file; errors name the file.
sg keygen > key
chmod 600 key
K=$(cat key)
sg --secret-file key start
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$K" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK under the key from the file"
PID=$(cat securedgram.pid)
if tr '\0' ' ' < "/proc/$PID/cmdline" | grep -q "$K"; then fail "the secret is in the command line"; fi
if grep -q "$K" daemon.log; then fail "the secret is in the log"; fi
sg stop >/dev/null
echo "not hex" > bad.key
sg --secret-file bad.key start 2>"$T/err" && fail "started with a bad secret file"
grep -q "SECUREDGRAM_SECRET_FILE .*bad.key: the first line must be 64 hex digits" "$T/err" || fail "bad file message: $(cat "$T/err")"
sg --secret-file missing.key start 2>"$T/err" && fail "started without the secret file"
grep -q "cannot read SECUREDGRAM_SECRET_FILE .*missing.key: No such file" "$T/err" || fail "missing file message"
chmod 644 key
sg --secret-file key start 2>"$T/err"
grep -q "WARNING: .*key is readable by group or others" "$T/err" || fail "no warning for a loose secret file"
sg stop >/dev/null
note "--secret-file works; bad or missing files refused; a loose one warned about"

# -s is overwritten in the process's command line; a loose .env is warned about.
chmod 644 .env
sg -s "$K" start 2>"$T/err"
grep -q "WARNING: .*\.env is readable by group or others" "$T/err" || fail "no warning for a loose .env"
PID=$(cat securedgram.pid)
if [ -z "${VALGRIND:-}" ]; then # under valgrind, /proc shows valgrind's own command line
    if tr '\0' ' ' < "/proc/$PID/cmdline" | grep -q "$K"; then fail "-s left the secret in ps"; fi
    tr '\0' ' ' < "/proc/$PID/cmdline" | grep -q "xxxxxxxx" || fail "-s not blanked"
fi
sg stop >/dev/null
chmod 600 .env
note "-s is blanked in ps; a loose .env is warned about"

# Not dumpable: a daemon that dropped to nobody still has /proc/PID owned by root.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -p "$T/priv" && chmod 777 "$T/priv" && chmod 711 "$T"
    sg -s "$K" -u nobody --db "$T/priv/p.db" -P "$T/priv/p.pid" start
    PID=$(cat "$T/priv/p.pid")
    assert_eq "$(stat -c %U "/proc/$PID/status")" root "owner of /proc/PID (not dumpable)"
    assert_eq "$(ps -o user= -p "$PID" | tr -d ' ')" nobody "daemon user"
    sg -P "$T/priv/p.pid" stop >/dev/null
    note "the daemon is not dumpable"
fi

# Rate limit: 127.0.0.1 may send 5 at once and 1 a second; 127.0.0.2 is not held back.
sg -s "$K" --rate-limit 1/5 start
STEPS=""
for i in $(seq 1 12); do STEPS="$STEPS msg:{\"message_id\":\"$(printf '%024x' "$i")\"}"; done
# shellcheck disable=SC2086
sgtest peer 127.0.0.1 "$P" "$K" $STEPS silence:0 >/dev/null
ID=$(newid)
SGTEST_SRC=127.0.0.2 sgtest peer 127.0.0.1 "$P" "$K" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "another sender was rate-limited"
stored=$(q h "SELECT count(*) FROM inbound_messages WHERE src_addr='127.0.0.1'")
[ "$stored" -ge 5 ] && [ "$stored" -le 6 ] || fail "127.0.0.1 stored $stored of 12 under a 1/5 limit"
out=$(sg status)
echo "$out" | grep -q "rate_limited=[1-9]" || fail "status shows no rate_limited count: $out"
echo "$out" | grep -q "auth=0 " || fail "status shows no drop counters: $out"
sg stop >/dev/null
[ ! -e securedgram.pid.stats ] || fail "stats file left after stop"
note "rate limit per sender ($stored of 12 passed); status prints the counters"

# Item 11: no file the daemon writes follows a link a local user planted. Root daemon here, so
# a followed link would overwrite any file on the system.
chmod 600 key
echo precious > "$T/victim"
ln -s "$T/victim" securedgram.pid.stats.tmp
sg --secret-file key start
out=$(sg status) # USR1: the daemon rewrites securedgram.pid.stats through its temporary file
assert_eq "$(cat "$T/victim")" precious "victim of a link at the counters' temporary file"
[ -L securedgram.pid.stats.tmp ] || fail "the planted link was replaced or removed"
sg stop >/dev/null
rm securedgram.pid.stats.tmp
ln -s "$T/victim" securedgram.pid.stats
sg --secret-file key start
out=$(sg status)
echo "$out" | grep -q "counters: rx=" || fail "no counters in status: $out"
assert_eq "$(cat "$T/victim")" precious "victim of a link at the counters file"
[ ! -L securedgram.pid.stats ] || fail "the counters file is still a link"
sg stop >/dev/null
ln -s "$T/victim" securedgram.pid
expect_error "securedgram.pid" sg --secret-file key start
assert_eq "$(cat "$T/victim")" precious "victim of a link at the pid file"
rm securedgram.pid
ln -s "$T/victim" link.log
sg --secret-file key -l "$T/h/link.log" start 2>"$T/err" && fail "started with its log file a link"
grep -q "cannot open log $T/h/link.log" "$T/err" || fail "log link message: $(cat "$T/err")"
assert_eq "$(cat "$T/victim")" precious "victim of a link at the log file"
rm link.log
note "links at the counters file, its temporary file, the pid file and the log file are not followed"

# Item 13: after start the daemon holds no descriptor it did not open (251 comes from the
# shell), has no_new_privs, an empty capability bounding set, and runs under a seccomp filter.
# (The filter's rules are tested in tests/unit/test_sandbox.c.)
field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$PID/status"; }
check_hardened() {
    assert_eq "$(field NoNewPrivs)" 1 "$1: NoNewPrivs"
    if [ "$(id -u)" -eq 0 ]; then assert_eq "$(field CapBnd)" 0000000000000000 "$1: CapBnd"; fi
    # valgrind cannot run a program under seccomp: it installs no filter there
    if [ -z "${VALGRIND:-}" ]; then
        assert_eq "$(field Seccomp)" 2 "$1: Seccomp"
        # every thread (the store's checkpoint thread too), not only the one that installed it
        for task in "/proc/$PID/task/"*; do
            assert_eq "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$task/status")" 2 "$1: Seccomp of thread ${task##*/}"
        done
        [ "$(ls "/proc/$PID/task" | wc -l)" -eq 2 ] || fail "$1: threads: $(ls "/proc/$PID/task")"
    fi
    [ -z "${VALGRIND:-}" ] || return 0
    [ ! -e "/proc/$PID/fd/251" ] || fail "$1: descriptor 251 from the shell is open in the daemon"
    for fd in "/proc/$PID/fd/"*; do
        to=$(readlink "$fd" || true)
        case "$to" in
        /dev/null | socket:* | pipe:* | anon_inode:* | "$T"/* | "") ;;
        *) fail "$1: unexpected descriptor $fd -> $to" ;;
        esac
    done
}
# start_holding_fd ARGS...: starts the daemon from bash with descriptor 251 open, as a shell or
# a supervisor may leave one (dash's redirections stop at 9). Valgrind's own descriptors show in
# /proc/PID/fd, so under valgrind the daemon starts as usual and the descriptors are not checked.
start_holding_fd() {
    if [ -n "${VALGRIND:-}" ]; then
        sg "$@" start
    else
        bash -c 'exec 251>>"$0" && exec "$@"' "$T/inherited" "$SG_BIN/securedgram" "$@" start
    fi
}
start_holding_fd --secret-file key
PID=$(cat securedgram.pid)
check_hardened "as root"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$K" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK under the filter"
reloads() { grep -c "configuration reloaded" daemon.log || true; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
before=$(reloads)
kill -USR1 "$PID" && kill -HUP "$PID"
wait_for 5 "reload under the filter" reloaded_since "$before"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$K" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK after HUP under the filter"
sg stop >/dev/null
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -p "$T/priv" && chmod 777 "$T/priv" && chmod 711 "$T"
    start_holding_fd --secret-file key -u nobody --db "$T/priv/q.db" -P "$T/priv/q.pid"
    PID=$(cat "$T/priv/q.pid")
    check_hardened "as nobody"
    assert_eq "$(field CapEff)" 0000000000000000 "as nobody: CapEff"
    sg -P "$T/priv/q.pid" stop >/dev/null
fi
note "no inherited descriptors, no_new_privs, empty bounding set, seccomp filter"

# Item 12: no copy of the secret's text is left in the daemon's memory, at start or after a
# HUP that changes the key, and the key itself is only in its guarded page. The .env keeps an
# earlier secret line (a later line wins): its value was freed unwiped. Halves are searched
# too, since malloc overwrites the start of a freed block. Reading another process's memory
# needs root (the daemon is not dumpable); under valgrind the process is valgrind's.
halves() { echo "$1" | cut -c1-32; echo "$1" | cut -c33-64; }
copies() { # copies PID HEX: "text N bytes M" for HEX and each half
    for h in "$2" $(halves "$2"); do sgtest memgrep "$1" "$h" 2>/dev/null; done | tr '\n' ' '
}
if [ "$(id -u)" -eq 0 ] && [ -z "${VALGRIND:-}" ]; then
    OLD=$(sg keygen) NEW=$(sg keygen)
    { echo "SECUREDGRAM_SECRET=$OLD   # the key until November"; cat .env; echo "SECUREDGRAM_SECRET=$K"; } > env.new
    mv env.new .env && chmod 600 .env
    sg start
    PID=$(cat securedgram.pid)
    ID=$(newid)
    sgtest peer 127.0.0.1 "$P" "$K" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK under the .env key"
    assert_eq "$(copies "$PID" "$OLD")" "text 0 bytes 0 text 0 bytes 0 text 0 bytes 0 " "copies of the overridden secret at start"
    assert_eq "$(copies "$PID" "$K")" "text 0 bytes 1 text 0 bytes 1 text 0 bytes 1 " "copies of the secret at start (text, key)"
    sed -i "s/^SECUREDGRAM_SECRET=$K\$/SECUREDGRAM_SECRET=$NEW/" .env
    before=$(reloads)
    kill -HUP "$PID"
    wait_for 5 "reload with the new key" reloaded_since "$before"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$P" "$NEW" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "no ACK under the new key"
    assert_eq "$(copies "$PID" "$OLD")" "text 0 bytes 0 text 0 bytes 0 text 0 bytes 0 " "copies of the overridden secret after HUP"
    assert_eq "$(copies "$PID" "$K")" "text 0 bytes 0 text 0 bytes 0 text 0 bytes 0 " "copies of the replaced secret after HUP"
    assert_eq "$(copies "$PID" "$NEW")" "text 0 bytes 1 text 0 bytes 1 text 0 bytes 1 " "copies of the new secret after HUP"
    sg stop >/dev/null
    note "no copy of the secret's text in memory; the old key is gone after HUP"
fi
