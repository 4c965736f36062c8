# A bounded flood of junk at full loopback speed (random bytes, datagrams under
# 28 bytes, valid-looking datagrams under a wrong key) while real messages flow:
# every real message is still stored and ACKed, the log stays small, memory bounded.
. "$(dirname "$0")/lib.sh"

PB=$(freeport)
mkpeer b "$PB"
(cd "$T/b" && sg start) # the default level: -v would log a line per real message
PID=$(cat "$T/b/securedgram.pid")
before=$(wc -c < "$T/b/daemon.log")

FLOOD=${FLOOD:-200000}
EACH=$((FLOOD / 4))
for kind in random short wrongkey random; do
    sgtest flood 127.0.0.1 "$PB" "$SECRET" "$EACH" "$kind" &
done
# Real messages, one at a time, resent after 200 ms without an ACK, as a daemon would.
sgtest rtt 127.0.0.1 "$PB" "$SECRET" 1000 > "$T/rtt" || fail "real messages not acknowledged during the flood"
wait
ROWS=$(q b "SELECT count(*) FROM inbound_messages")
assert_eq "$ROWS" 1000 "real messages stored during the flood"
kill -USR1 "$PID"
wait_for 5 "counters" grep -q "counters:" "$T/b/daemon.log"
line=$(grep "counters:" "$T/b/daemon.log" | tail -n 1)
rx=$(echo "$line" | sed 's/.* rx=\([0-9]*\) .*/\1/')
grown=$(( $(wc -c < "$T/b/daemon.log") - before - ${#line} ))
[ "$grown" -lt 8000 ] || fail "the log grew by $grown bytes during the flood"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
[ "$hwm" -lt 32768 ] || fail "peak RSS $hwm kB during the flood"
note "flood of $FLOOD junk datagrams ($rx datagrams reached the daemon): 1000 real messages ACKed, $(cat "$T/rtt"), log +$grown bytes, peak RSS $hwm kB"
stop b
