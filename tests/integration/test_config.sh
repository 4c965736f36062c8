# Bad configuration is refused at start: one ERROR line, non-zero exit, nothing
# started. Precedence: flag > environment > .env > default.
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
refuse -r 0 | grep -q "SECUREDGRAM_MAX_RETRIES" || fail "retries 0"
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
printf 'SECUREDGRAM_SECRET %s\n' "$SECRET" >> .env
refuse | grep -q "\.env line $(wc -l < .env): expected KEY=VALUE" || fail "a malformed .env line is named"
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

# A relative database path is resolved against the starting directory.
mkdir -p sub
sg --db sub/rel.db start
[ -f sub/rel.db ] || fail "relative --db not created where started"
sg stop >/dev/null
