# Bad configuration is refused at start: one ERROR line, non-zero exit, nothing
# started. Precedence: flag > environment > .env > default. What the original
# accepted starts, with a warning where it may not be what was meant: a .env
# line without '=', an unknown SECUREDGRAM_* name, two settings on one line, a
# byte-order mark; SECUREDGRAM_MAX_RETRIES=0 sends once and never retransmits.
. "$(dirname "$0")/lib.sh"

P=$(freeport)
mkpeer c "$P"
cd "$T/c"

# refuse ARGS...: start must fail with exactly one ERROR line, and leave nothing behind.
refuse() {
    if sg "$@" start >"$T/out" 2>"$T/err"; then fail "started with: $*"; fi
    [ "$(wc -l < "$T/err")" -eq 1 ] || fail "expected one error line for '$*', got: $(cat "$T/err")"
    grep -q '^ERROR: ' "$T/err" || fail "no ERROR: line for '$*': $(cat "$T/err")"
    [ ! -e securedgram.pid ] || fail "pid file left behind by: $*"
    [ ! -e securedgram.db ] || fail "database created by: $*"
    sg status >/dev/null 2>&1 && fail "a daemon runs after: $*"
    cat "$T/err"
}
refuse -s 0123 | grep -q "64 hex digits" || fail "short secret message"
refuse -s "$(printf 'z%.0s' $(seq 64))" | grep -q "not all hex" || fail "non-hex secret message"
refuse -p 0 | grep -q "SECUREDGRAM_PORT" || fail "port 0"
refuse -p 65536 | grep -q "1 to 65535" || fail "port 65536"
refuse -p abc >/dev/null
refuse -w 0 | grep -q "SECUREDGRAM_WINDOW" || fail "window 0"
refuse -w -5 >/dev/null
refuse -w 1.5 >/dev/null
refuse -r -1 | grep -q "SECUREDGRAM_MAX_RETRIES must be a whole number from 0 to" || fail "retries -1"
refuse -r x >/dev/null
refuse --retry-interval 0 | grep -q "SECUREDGRAM_RETRY_INTERVAL" || fail "interval 0"
refuse --bogus | grep -q "unknown option '--bogus'" || fail "unknown flag"
refuse -p >/dev/null
refuse -u no-such-user-here | grep -q "does not exist" || [ "$(id -u)" -ne 0 ] || fail "missing user"
note "every bad flag value is refused with one line"

# No secret anywhere.
mv .env env.saved
grep -v SECRET env.saved > .env
refuse | grep -q "SECUREDGRAM_SECRET is not set" || fail "missing secret"
echo "SECUREDGRAM_SECRET=" >> .env
refuse | grep -q "not set" || fail "empty secret"
# A secret on a line without '=' is ignored, as by the original: the warning names the
# line, never the value, and the refusal follows it.
printf 'SECUREDGRAM_SECRET %s\n' "$SECRET" >> .env
N=$(wc -l < .env)
if sg start >"$T/out" 2>"$T/err"; then fail "started without a secret"; fi
assert_eq "$(sed -n 1p "$T/err")" \
    "WARNING: $T/c/.env line $N: \"SECUREDGRAM_SECRET ...\" has no '='; ignored (a setting is KEY=VALUE)" \
    "the warning for a line without '='"
sed -n 2p "$T/err" | grep -q "^ERROR: SECUREDGRAM_SECRET is not set" || fail "refusal after the warning: $(cat "$T/err")"
[ "$(wc -l < "$T/err")" -eq 2 ] || fail "more than a warning and an error: $(cat "$T/err")"
if grep -q "$(echo "$SECRET" | cut -c1-16)" "$T/err"; then fail "the secret is shown"; fi
mv env.saved .env
SECUREDGRAM_PORT=99999 refuse | grep -q SECUREDGRAM_PORT || fail "bad value from the environment"
note "missing secret and malformed .env refused"

# Commands and informational flags.
sg >/dev/null 2>"$T/err" && fail "no command accepted"
grep -q "no command given" "$T/err" || fail "missing command message"
sg frobnicate 2>"$T/err" && fail "unknown command accepted"
grep -q "unknown command 'frobnicate'" "$T/err" || fail "unknown command message"
sg --help | grep -q -- "--retry-interval" || fail "--help lists the options"
sg --version | grep -Eq '^securedgram [0-9]+\.[0-9]+\.[0-9]+' || fail "--version"
[ "$(sg keygen | grep -Ec '^[0-9a-f]{64}$')" = 1 ] || fail "keygen prints 64 hex digits"
[ "$(sg keygen)" != "$(sg keygen)" ] || fail "keygen repeats itself"
note "--help, --version, keygen"

# Precedence: the environment beats .env, a flag beats both; quotes are removed.
P2=$(freeport); P3=$(freeport)
sed -i "s/^SECUREDGRAM_PORT=.*/SECUREDGRAM_PORT=\"$P\"/" .env
SECUREDGRAM_PORT=$P2 sg start
sgtest peer 127.0.0.1 "$P2" "$SECRET" "msg:{\"message_id\":\"$(newid)\"}" >/dev/null
ID=$(newid)
sgtest peer 127.0.0.1 "$P2" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "environment port not used"
sg stop >/dev/null
SECUREDGRAM_PORT=$P2 sg -p "$P3" start
ID=$(newid)
sgtest peer 127.0.0.1 "$P3" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "flag port not used"
sg stop >/dev/null
note "flag > environment > .env"

# Configurations the original accepted start, with warnings on stderr (before the daemon
# detaches) and in the log, that name the line and never a value.
cp .env env.saved
P4=$(freeport)
{ printf '\357\273\277SECUREDGRAM_PORT=%s # a byte-order mark first, and a comment\n' "$P4"
  grep -v '^SECUREDGRAM_PORT=' env.saved
  echo "THIS LINE HAS NO EQUALS"
  printf 'SECUREDGRAM_SECRET\t%s\n' "$SECRET"
  echo "SECUREDGRAM_WINDOWS=30"
  echo "SECUREDGRAM_WINDOW=30 SECUREDGRAM_MAX_RETRIES=2"
  echo "OTHER_PROGRAM_SETTING=1"; } > .env
L=$(wc -l < .env)
SECUREDGRAM_TYPO=1 sg start 2>"$T/err" || fail "did not start with what the original accepted: $(cat "$T/err")"
ID=$(newid)
sgtest peer 127.0.0.1 "$P4" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "the port of the first line (after the byte-order mark) is not used"
E="$T/c/.env"
cat > "$T/want" <<WANT
WARNING: $E line $((L - 4)): "THIS ..." has no '='; ignored (a setting is KEY=VALUE)
WARNING: $E line $((L - 3)): "SECUREDGRAM_SECRET ..." has no '='; ignored (a setting is KEY=VALUE)
WARNING: $E line $((L - 2)): SECUREDGRAM_WINDOWS is not a securedgram setting; ignored (did you mean SECUREDGRAM_WINDOW?)
WARNING: $E line $((L - 1)): SECUREDGRAM_WINDOW takes the number before the space; the rest of the line (SECUREDGRAM_MAX_RETRIES=...) is ignored, as by the original: put each setting on a line of its own
WARNING: environment: SECUREDGRAM_TYPO is not a securedgram setting; ignored
WANT
diff "$T/want" "$T/err" >&2 || fail "the warnings at start"
sed 's/^WARNING: //' "$T/want" > "$T/want.log"
while IFS= read -r w; do
    grep -qF "WARN: $w" "$T/c/daemon.log" || fail "not in the log: $w"
done < "$T/want.log"
if grep -q "$(echo "$SECRET" | cut -c1-16)" "$T/err" "$T/c/daemon.log"; then fail "the secret is shown"; fi
sg stop >/dev/null
mv env.saved .env
note "a line without '=', an unknown name, two settings on a line, a byte-order mark: warned, started"

# An empty SECUREDGRAM_SECRET_FILE is no secret file, like an empty SECUREDGRAM_SECRET.
cp .env env.saved
echo "SECUREDGRAM_SECRET_FILE=" >> .env
sg start 2>"$T/err" || fail "an empty SECUREDGRAM_SECRET_FILE refused: $(cat "$T/err")"
[ ! -s "$T/err" ] || fail "warned about an empty SECUREDGRAM_SECRET_FILE: $(cat "$T/err")"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "the secret from SECUREDGRAM_SECRET is not used"
sg stop >/dev/null
sg --secret-file "" start || fail "--secret-file '' refused"
sg stop >/dev/null
mv env.saved .env
note "an empty SECUREDGRAM_SECRET_FILE counts as not set"

# SECUREDGRAM_MAX_RETRIES=0 (and -r 0), as in the original: each message is sent once and
# never retransmitted; with no ACK it is send_failed one retry interval later. An ACK is
# still sent for every message received.
PX=$(freeport)
cp .env env.saved
printf 'SECUREDGRAM_MAX_RETRIES=0\nSECUREDGRAM_RETRY_INTERVAL=1\n' >> .env
sg start || fail "SECUREDGRAM_MAX_RETRIES=0 refused"
SGTEST_PORT=$PX sgtest peer 127.0.0.1 "$P" "$SECRET" "touch:$T/ready" capture:5000 \
    "silence:$((2500 * SLOW))" >"$T/peer" 2>&1 &
PEER=$!
wait_for 5 "the silent peer" test -e "$T/ready"
ROW=$(queue c "$PX" '{"content":"only once"}')
wait "$PEER" || fail "not exactly one datagram for a row with 0 retries: $(cat "$T/peer")"
grep -q '^captured .*only once' "$T/peer" || fail "the one datagram is not the message: $(cat "$T/peer")"
wait_for 5 "send_failed one interval after the only send" state_is c "$ROW" send_failed
assert_eq "$(q c "SELECT last_error FROM outbound_messages WHERE id=$ROW")" \
    "max retries exceeded (no ACK)" "the reason of a row with 0 retries"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "no ACK with 0 retries"
sg stop >/dev/null
mv env.saved .env
sg -r 0 start || fail "-r 0 refused"
sg stop >/dev/null
note "0 retries: sent once, never retransmitted, send_failed after one interval; ACKs still sent"

# A relative database path is resolved against the starting directory.
mkdir -p sub
sg --db sub/rel.db start
[ -f sub/rel.db ] || fail "relative --db not created where started"
sg stop >/dev/null
