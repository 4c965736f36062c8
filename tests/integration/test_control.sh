# The control socket (issue 13): beside the pid file, mode 0660; `status --json`
# says what the daemon knows, and its counters match the traffic sent; the text
# status reads it too (no signal, no log line); hostile clients (oversized
# lines, a half-written request held open, 1,000 connects, one that never reads,
# garbage) are dropped while messages keep flowing; JSON log lines parse.
. "$(dirname "$0")/lib.sh"
SGCTL=$(dirname "$SG_TOOL")/sgctl

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
echo "SECUREDGRAM_LOG_FORMAT=json" >> "$T/b/.env"
start a; start b
SOCK=$T/b/securedgram.sock
[ -S "$SOCK" ] || fail "no control socket at $SOCK"
assert_eq "$(stat -c %a "$SOCK")" 660 "the control socket's mode"
status_json() { (cd "$T/$1" && sg status --json) > "$T/$1.status" || fail "status --json of $1 failed"; }
js() { jq -r "$2" "$T/$1.status"; }

# 1. Traffic, then what status --json says of it, on both sides.
F=$(queue a "$PB" '{"n":1}')
for i in 2 3 4 5; do queue a "$PB" "{\"n\":$i}" > /dev/null; done
wait_for 10 "5 rows acknowledged" count_is a "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" 5
sgtest flood 127.0.0.1 "$PB" "$SECRET" 7 wrongkey
wait_for 5 "b counted 7 forgeries" sh -c \
    "cd '$T/b' && '$SG_BIN/securedgram' status --json | jq -e '.dropped.auth == 7' >/dev/null"
status_json a; status_json b
assert_eq "$(js b .running)" true "b running"
assert_eq "$(js b .pid)" "$(cat "$T/b/securedgram.pid")" "b's pid"
assert_eq "$(js b .version)" "$("$SG_BIN/securedgram" --version | awk '{print $NF}')" "the version"
assert_eq "$(js b '.counters.stored')" 5 "b stored"
assert_eq "$(js b '.counters.acks_sent')" 5 "b's ACKs"
assert_eq "$(js b '.dropped.auth')" 7 "b's forgeries, by reason"
assert_eq "$(js b '.queue.inbound | add')" 5 "b's inbound rows"
assert_eq "$(js a '.counters.sent')" 5 "a sent"
assert_eq "$(js a '.counters.acks_received')" 5 "a's ACKs received"
assert_eq "$(js a '.queue.outbound.acknowledged')" 5 "a's acknowledged rows"
assert_eq "$(js a '.in_flight')" 0 "a's messages in flight"
assert_eq "$(js a '.config.port')" "$PA" "a's port"
assert_eq "$(js a '.config.shared_secret')" true "a has a shared secret"
[ "$(js a '.uptime_seconds >= 0 and (.started | test("Z$"))')" = true ] || fail "uptime: $(cat "$T/a.status")"
[ "$(js b '.store.last_commit | test("^20..-..-..T")')" = true ] || fail "no last commit: $(cat "$T/b.status")"
[ "$(js b '.store.journal_bytes >= 0')" = true ] || fail "no journal size"
if grep -q "$SECRET" "$T/a.status" "$T/b.status"; then fail "status --json shows the secret"; fi
note "status --json: counters, drops by reason, queue by state, store health; no secret"

# 2. The text status reads the socket: its counters line, and no line in the log.
lines=$(wc -l < "$T/a/daemon.log")
(cd "$T/a" && sg status) > "$T/a.text"
grep -q "^counters: rx=5 stored=0 " "$T/a.text" || fail "status: $(cat "$T/a.text")"
assert_eq "$(wc -l < "$T/a/daemon.log")" "$lines" "lines status added to a's log"
[ ! -e "$T/a/securedgram.pid.stats" ] || [ "$(cat "$T/a/securedgram.pid.stats")" = "counters: none yet" ] ||
    fail "status signalled the daemon: $(cat "$T/a/securedgram.pid.stats")"
note "status (text) reads the control socket: no signal, no log line"

# 3. Hostile clients; after each one, a message still gets through at once.
through() {
    R=$(queue a "$PB" "{\"after\":\"$1\"}")
    wait_for 5 "a message after $1" state_is a "$R" acknowledged
    "$SGCTL" "$SOCK" ask '{"op":"status"}' | jq -e .ok >/dev/null || fail "status after $1"
}
"$SGCTL" "$SOCK" long 100000 || fail "an oversized line was not dropped"
through "an oversized line"
"$SGCTL" "$SOCK" hold 15000 > "$T/hold" &
HOLD=$!
through "a half-written request (held)"
wait "$HOLD"
case "$(cat "$T/hold")" in "closed after "*) ;; *) fail "half-written request: $(cat "$T/hold")" ;; esac
"$SGCTL" "$SOCK" connects 1000 > "$T/connects"
through "1,000 connects"
"$SGCTL" "$SOCK" noread 20000 20000 > "$T/noread" &
NOREAD=$!
through "a client that never reads"
wait "$NOREAD"
assert_eq "$(cat "$T/noread")" closed "a client that never reads"
"$SGCTL" "$SOCK" garbage > "$T/garbage" || fail "garbage was not answered and dropped"
[ "$(jq -r .ok "$T/garbage")" = false ] || fail "garbage: $(cat "$T/garbage")"
"$SGCTL" "$SOCK" ask '{"op":"reboot"}' | jq -e '.ok == false' > /dev/null || fail "an unknown op"
through "garbage and an unknown op"
alive "$(cat "$T/b/securedgram.pid")" || fail "b died"
note "dropped: an oversized line, a request held half-written ($(cat "$T/hold")), 1,000 connects ($(cat "$T/connects")), a client that never reads, garbage; messages flowed throughout"

# 4. Subscribers are told of commits (the wake-up of sg-send --wait and sg-recv --follow).
"$SGCTL" "$SOCK" events 1 10000 > "$T/events" &
EV=$!
wait_for 5 "the subscriber" grep -q subscribed "$T/events"
queue a "$PB" '{"wakes":"b"}' > /dev/null
wait "$EV" || fail "no event: $(cat "$T/events")"
grep -q '"event":"changed"' "$T/events" || fail "events: $(cat "$T/events")"
note "a subscriber is told when b commits a message"

# 5. The tools are woken by the daemon: sg-recv --follow and sg-send --wait subscribe.
(cd "$T/b" && "$SG_BIN/sg-recv" --follow --compact > "$T/follow" 2>&1) &
FOLLOW=$!
wait_for 5 "sg-recv --follow to subscribe" sh -c \
    "cd '$T/b' && '$SG_BIN/securedgram' status --json | jq -e '.control.subscribers == 1' >/dev/null"
(cd "$T/a" && "$SG_BIN/sg-send" --wait=10 127.0.0.1 "$PB" '{"woke":"follow"}') > "$T/sent" ||
    fail "sg-send --wait: $(cat "$T/sent")"
wait_for 5 "sg-recv --follow to show the message" grep -q woke "$T/follow"
kill -INT "$FOLLOW"; wait "$FOLLOW" || true
[ "$(js b '.control.dropped_idle')" -ge 0 ] || fail "no control counters"
note "sg-recv --follow and sg-send --wait subscribe to the daemon's commits"

# 6. b logs JSON lines; SECUREDGRAM_CONTROL=none runs without a socket (status still works).
stop b
jq -e -s 'length > 0 and all(.time and .level and .msg and .pid)' "$T/b/daemon.log" > /dev/null ||
    fail "b's log is not JSON lines: $(head -3 "$T/b/daemon.log")"
echo "SECUREDGRAM_CONTROL=none" >> "$T/b/.env"
start b
[ ! -e "$SOCK" ] || fail "a control socket with SECUREDGRAM_CONTROL=none"
(cd "$T/b" && sg status) | grep -q "^counters: " || fail "status without a control socket"
note "JSON log lines parse; with SECUREDGRAM_CONTROL=none, status falls back to its signal"
exit 0
