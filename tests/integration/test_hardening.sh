# Hardening: the secret from a file, kept out of ps and core dumps; loose file
# modes warned about; per-sender rate limits; counters from `status`.
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
