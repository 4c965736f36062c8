# Hostile and malformed datagrams get no reply and store nothing, while valid
# messages keep getting through; warnings about them are rate-limited.
. "$(dirname "$0")/lib.sh"

PB=$(freeport)
mkpeer b "$PB"
start b

GOOD=$(newid)
BAD=$(newid)
DEEP=$(printf '%0.s[' $(seq 101))1$(printf '%0.s]' $(seq 101))
# One socket: every hostile datagram, then a valid message. The daemon handles
# datagrams in order, so any reply to the hostile ones would arrive before the
# ACK: `ack:` fails on any other reply.
sgtest peer 127.0.0.1 "$PB" "$SECRET" \
    raw: raw:00 rand:11 rand:27 rand:28 rand:29 rand:36 rand:100 rand:1400 rand:65000 \
    "wrongkey:{\"message_id\":\"$BAD\",\"content\":\"forged\"}" \
    "skew:-30:{\"message_id\":\"$BAD\",\"content\":\"stale\"}" \
    "skew:30:{\"message_id\":\"$BAD\",\"content\":\"from the future\"}" \
    "skew:-1000000000:{\"message_id\":\"$BAD\"}" \
    "msg:" "msg:not json" "msg:[1,2]" "msg:\"$BAD\"" "msg:42" "msg:null" "msg:{}" \
    "msg:{\"message_id\":\"$(echo "$BAD" | tr a-f A-F)\"}" \
    "msg:{\"message_id\":\"${BAD}0\"}" "msg:{\"message_id\":123}" "msg:{\"message_id\":null}" \
    "msg:{\"message_id\":\"$BAD\",\"x\":$DEEP}" \
    "msg:{\"message_id\":\"$BAD\",\"bad\":\"$(printf '\377\376')\"}" \
    "msg:{\"message_id\":\"$BAD\"" \
    "msg:{\"type\":\"ACK\",\"message_id\":\"$BAD\"}" \
    "msg:{\"message_id\":\"$GOOD\",\"content\":\"valid\"}" "ack:$GOOD:3000" >/dev/null ||
    fail "a hostile datagram got a reply, or the valid message got no ACK"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages")" 1 "rows stored"
assert_eq "$(q b "SELECT message_id FROM inbound_messages")" "$GOOD" "the stored row"
kill -USR1 "$(cat "$T/b/securedgram.pid")"
wait_for 5 "counters" grep -q "counters:" "$T/b/daemon.log"
line=$(grep "counters:" "$T/b/daemon.log" | tail -n 1)
for want in "short=4" "auth=7" "stale=3" "bad_id=5" "json=9" "ack_unmatched=1"; do
    case "$line" in *" $want "*) ;; *) fail "expected $want in: $line" ;; esac
done
note "28 hostile datagrams: no reply, nothing stored, each counted; the valid one ACKed"

# An exact replay inside the window is neither stored again nor re-ACKed; a
# retransmission (sealed again: a new nonce) of the same message is ACKed.
RID=$(newid)
sgtest peer 127.0.0.1 "$PB" "$SECRET" "msg:{\"message_id\":\"$RID\"}" "ack:$RID:3000" \
    again again silence:300 "msg:{\"message_id\":\"$RID\"}" "ack:$RID:3000" >/dev/null ||
    fail "a replay was answered, or a retransmission was not"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$RID'")" 1 "replayed message stored once"
kill -USR1 "$(cat "$T/b/securedgram.pid")"
replay_counted() { grep "counters:" "$T/b/daemon.log" | tail -n 1 | grep -q " replay=2 "; }
wait_for 5 "two replays counted" replay_counted
note "exact replays dropped and counted; a retransmission with a new nonce ACKed"

# A flood of junk: the log grows by a few lines a second, not a line a datagram.
before=$(wc -c < "$T/b/daemon.log")
sgtest flood 127.0.0.1 "$PB" "$SECRET" 20000 random
sgtest flood 127.0.0.1 "$PB" "$SECRET" 20000 short
sgtest flood 127.0.0.1 "$PB" "$SECRET" 20000 wrongkey
# A real sender retransmits: a datagram can be lost in a full socket buffer.
sgtest rtt 127.0.0.1 "$PB" "$SECRET" 1 >/dev/null || fail "no ACK after the flood"
wait_for 3 "the suppression count" grep -q "more warnings about dropped datagrams suppressed" "$T/b/daemon.log"
grown=$(( $(wc -c < "$T/b/daemon.log") - before ))
[ "$grown" -lt 8000 ] || fail "the log grew by $grown bytes during a 60000-datagram flood"
kill -USR1 "$(cat "$T/b/securedgram.pid")"
two_counter_lines() { [ "$(grep -c "counters:" "$T/b/daemon.log")" -ge 3 ]; }
wait_for 5 "second counters line" two_counter_lines
rx=$(grep "counters:" "$T/b/daemon.log" | tail -n 1 | sed 's/.* rx=\([0-9]*\) .*/\1/')
[ "$rx" -gt $((30000 / SLOW)) ] || fail "only $rx datagrams reached the daemon: the flood did not happen"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages")" 3 "rows stored after the flood"
note "60000 junk datagrams ($rx received): log grew $grown bytes; service continued"
stop b
