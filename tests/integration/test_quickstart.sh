# The README's quick start: `make run` writes a .env with a fresh secret and
# runs the daemon in the foreground; sg-send queues, sg-recv shows the message
# stored and acknowledged. (Runs scripts/quickstart.sh, which `make run` calls
# after building, in a scratch copy, on a free port instead of 61773.)
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$T/qs/scripts"
cp "$ROOT/scripts/quickstart.sh" "$T/qs/scripts/"
ln -s "$SG_BIN" "$T/qs/bin"
cd "$T/qs"
P=$(freeport)
SECUREDGRAM_PORT=$P sh scripts/quickstart.sh > run.out 2>&1 &
wait_for 10 "the daemon to listen" grep -q "listening on 127.0.0.1 port $P" run.out
assert_eq "$(stat -c %a .env)" 600 ".env mode"
grep -Eq '^SECUREDGRAM_SECRET=[0-9a-f]{64}$' .env || fail "no fresh secret in .env"
grep -q "^SECUREDGRAM_LOG=stdout" .env || fail ".env does not log to stdout"
SECRET1=$(grep '^SECUREDGRAM_SECRET=' .env)

bin/sg-send 127.0.0.1 "$P" '{"content":"hi"}' > receipt
assert_eq "$(jq -r .status receipt)" queued "receipt status"
acked() { [ "$(bin/sg-recv -o --no-mark | jq -r '.[0].state')" = acknowledged ]; }
wait_for 5 "the message acknowledged" acked
bin/sg-recv > inbox
assert_eq "$(jq -r '.[0].payload.content' inbox)" hi "the message in sg-recv"
assert_eq "$(jq -r '.[0].state' inbox)" ack_sent "its state"
bin/securedgram stop >/dev/null
wait

# A second run keeps the existing .env (and its secret).
SECUREDGRAM_PORT=$P sh scripts/quickstart.sh > run2.out 2>&1 &
wait_for 10 "the daemon to listen again" grep -q "listening on" run2.out
assert_eq "$(grep '^SECUREDGRAM_SECRET=' .env)" "$SECRET1" "secret kept"
bin/securedgram stop >/dev/null
wait
note "quick start: .env written once (mode 600), message queued, stored and acknowledged"
