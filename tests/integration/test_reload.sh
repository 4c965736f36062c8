# HUP: a new secret and window take effect at once; a bad .env is refused and
# the running configuration kept; what the original accepted (a line without
# '=', an unknown name, two settings on a line, 0 retries) is reloaded, with
# warnings in the log; restart-only changes are reported; the log
# file is reopened; after a privilege drop, a root-only .env or log directory
# is refused with a line that names the user, the path and why.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b
hup() { kill -HUP "$(cat "$T/$1/securedgram.pid")"; }
lines() { grep -c "$2" "$T/$1/daemon.log" || true; }
more_lines() { [ "$(lines "$1" "$2")" -gt "$3" ]; }

# A new secret on both sides.
NEW=$(sg keygen)
for p in a b; do
    sed -i "s/^SECUREDGRAM_SECRET=.*/SECUREDGRAM_SECRET=$NEW/" "$T/$p/.env"
    hup $p
    wait_for 5 "$p reloaded" grep -q "configuration reloaded" "$T/$p/daemon.log"
done
ROW=$(queue a "$PB" '{"content":"under the new key"}')
wait_for 5 "delivery under the new key" state_is a "$ROW" acknowledged
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$SECRET" "msg:{\"message_id\":\"$ID\"}" silence:300 >/dev/null ||
    fail "the old key still gets an ACK"
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$NEW" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "the new key gets no ACK"
note "HUP with a new secret: the new key works, the old one is ignored"

# A bad .env on HUP is refused; the daemon keeps the running configuration.
cp "$T/b/.env" "$T/b/env.good"
for bad in "SECUREDGRAM_SECRET=abc" "SECUREDGRAM_WINDOW=0" "SECUREDGRAM_MAX_RETRIES=x"; do
    before=$(lines b "reload refused")
    { grep -v '^SECUREDGRAM_SECRET\|^SECUREDGRAM_WINDOW\|^SECUREDGRAM_MAX_RETRIES' "$T/b/env.good"
      grep '^SECUREDGRAM_SECRET' "$T/b/env.good"; echo "$bad"; } > "$T/b/.env"
    hup b
    wait_for 5 "refusal of '$bad'" more_lines b "reload refused" "$before"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$PB" "$NEW" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
        fail "no ACK after refusing '$bad'"
done
grep -q "reload refused: SECUREDGRAM_SECRET must be exactly 64 hex digits" "$T/b/daemon.log" ||
    fail "refusal does not say why"
if grep -q "$NEW" "$T/b/daemon.log"; then fail "the secret appears in the log"; fi
cp "$T/b/env.good" "$T/b/.env"
note "bad .env values on HUP are refused, the old configuration keeps working"

# What the original accepted is reloaded; the warnings go to the log, naming the line and
# never a value. SECUREDGRAM_MAX_RETRIES=0 is a value like any other.
{ cat "$T/b/env.good"
  echo "NOT A SETTING"
  printf 'SECUREDGRAM_SECRET %s\n' "$(sg keygen)"
  echo "SECUREDGRAM_RETRY_INTERVALS=3"
  echo "SECUREDGRAM_WINDOW=20 SECUREDGRAM_RETRY_INTERVAL=9"
  echo "SECUREDGRAM_MAX_RETRIES=0"; } > "$T/b/.env"
L=$(wc -l < "$T/b/.env")
IGNORED=$(sed -n "$((L - 3))p" "$T/b/.env" | cut -d' ' -f2)
before=$(lines b "configuration reloaded")
hup b
wait_for 5 "a reload with warnings" more_lines b "configuration reloaded" "$before"
E="$T/b/.env"
for w in "$E line $((L - 4)): \"NOT ...\" has no '='; ignored (a setting is KEY=VALUE)" \
         "$E line $((L - 3)): \"SECUREDGRAM_SECRET ...\" has no '='; ignored (a setting is KEY=VALUE)" \
         "$E line $((L - 2)): SECUREDGRAM_RETRY_INTERVALS is not a securedgram setting; ignored (did you mean SECUREDGRAM_RETRY_INTERVAL?)" \
         "$E line $((L - 1)): SECUREDGRAM_WINDOW takes the number before the space; the rest of the line (SECUREDGRAM_RETRY_INTERVAL=...) is ignored"; do
    grep -qF "WARN: $w" "$T/b/daemon.log" || fail "not in the log: $w"
done
grep "configuration reloaded" "$T/b/daemon.log" | tail -n 1 | grep -q "configuration reloaded (window 20s, max retries 0, retry interval ${SLOW}s" ||
    fail "reloaded values: $(grep "configuration reloaded" "$T/b/daemon.log" | tail -n 1)"
if grep -q "$(echo "$IGNORED" | cut -c1-16)" "$T/b/daemon.log"; then fail "the ignored secret is in the log"; fi
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$NEW" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "the secret changed on a line without '='"
cp "$T/b/env.good" "$T/b/.env"
hup b
wait_for 5 "the good .env again" more_lines b "configuration reloaded" "$((before + 1))"
note "what the original accepted is reloaded, with warnings in the log; 0 retries accepted"

# Restart-only values are reported and ignored.
P2=$(freeport)
sed -i "s/^SECUREDGRAM_PORT=.*/SECUREDGRAM_PORT=$P2/" "$T/b/.env"
hup b
wait_for 5 "restart-only warning" grep -q "SECUREDGRAM_PORT changed; that takes effect only after a restart" "$T/b/daemon.log"
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$NEW" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "the daemon moved port on HUP"
cp "$T/b/env.good" "$T/b/.env"
note "restart-only change logged and ignored"

# The window is hot: 1 second now refuses a datagram 5 seconds old.
echo "SECUREDGRAM_WINDOW=1" >> "$T/b/.env"
before=$(lines b "configuration reloaded")
hup b
wait_for 5 "window reload" more_lines b "configuration reloaded" "$before"
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$NEW" "skew:-5:{\"message_id\":\"$ID\"}" silence:300 >/dev/null ||
    fail "a 5 s old datagram was answered with a 1 s window"
ID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$NEW" "skew:-0.5:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "a 0.5 s old datagram was refused with a 1 s window"
note "window reloaded"

# HUP reopens the log file (rotation).
mv "$T/b/daemon.log" "$T/b/daemon.log.1"
hup b
wait_for 5 "a new log file" grep -q "configuration reloaded" "$T/b/daemon.log"
note "log reopened after rotation"
stop a; stop b

# After the privilege drop (root only): the daemon runs as nobody, its .env and log file are
# root's (mode 600 and 644) in a root-owned directory. The pid file and the database are in
# a directory nobody can write ($T/np, a peer directory so the cleanup finds the pid file).
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    chmod 711 "$T"
    mkdir -p "$T/np" && chmod 777 "$T/np"
    PN=$(freeport)
    mkpeer n "$PN"
    sed -i 's/^SECUREDGRAM_USER=.*/SECUREDGRAM_USER=nobody/' "$T/n/.env"
    printf 'SECUREDGRAM_PIDFILE=%s\nSECUREDGRAM_DB=%s\n' "$T/np/securedgram.pid" "$T/np/securedgram.db" >> "$T/n/.env"
    start n
    ps -o user= -p "$(cat "$T/np/securedgram.pid")" | grep -q nobody || fail "the daemon does not run as nobody"
    hupn() { kill -HUP "$(cat "$T/np/securedgram.pid")"; }
    # A new key in a .env nobody cannot read: refused, and the old key keeps working.
    NEW2=$(sg keygen)
    sed -i "s/^SECUREDGRAM_SECRET=.*/SECUREDGRAM_SECRET=$NEW2/" "$T/n/.env"
    hupn
    want="reload refused: cannot read $T/n/.env as user nobody: Permission denied (make it readable by nobody; see securedgram(8)); the running configuration is kept"
    wait_for 5 "the refusal naming user and path" grep -qF "$want" "$T/n/daemon.log"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$PN" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
        fail "the running key stopped working after a refused reload"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$PN" "$NEW2" "msg:{\"message_id\":\"$ID\"}" silence:300 >/dev/null ||
        fail "the unreadable new key was taken"
    # The log file was not rotated: nothing to reopen, and no complaint about it.
    if grep -q "cannot reopen" "$T/n/daemon.log"; then fail "complained about reopening a log file still in place"; fi
    # Rotated into a directory nobody cannot write: the old file is kept, and the line says why.
    mv "$T/n/daemon.log" "$T/n/daemon.log.1"
    hupn
    want="cannot reopen log file $T/n/daemon.log as user nobody: Permission denied; still writing to the old one"
    wait_for 5 "the log reopen refusal" grep -qF "$want" "$T/n/daemon.log.1"
    # What the refusal says to do makes the next HUP work.
    chown nobody "$T/n/.env" "$T/n"
    hupn
    wait_for 5 "a reload, in a reopened log, once both are allowed" grep -q "configuration reloaded" "$T/n/daemon.log"
    ID=$(newid)
    sgtest peer 127.0.0.1 "$PN" "$NEW2" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
        fail "the new key does not work once .env is readable"
    (cd "$T/n" && sg stop >/dev/null)
    note "as nobody: a root-only .env or log directory is refused, naming user, path and why; the daemon keeps its configuration"
fi
