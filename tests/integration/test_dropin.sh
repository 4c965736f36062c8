# Drop-in rules of the original the daemon follows (issue 9): rows whose
# payload carries a message_id that is not ours to keep, a dead peer's backlog
# failing on time, and a log that traces every message.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b

# ---- A row without message_id whose payload has one that is not 24 lowercase hex ----
for bad in '"6f1c2a9e-7b3d-4e1f-9a2b-3c4d5e6f7a8b"' 42 '"A1B2C3D4E5F60718293A4B5C"'; do
    id=$(queue a "$PB" "{\"message_id\":$bad,\"n\":1}")
    wait_for 5 "a row with payload message_id $bad" state_is a "$id" acknowledged
    mid=$(q a "SELECT message_id FROM outbound_messages WHERE id = $id")
    echo "$mid" | grep -Eq '^[a-f0-9]{24}$' || fail "the row's new id: '$mid'"
    assert_eq "$(q a "SELECT payload FROM outbound_messages WHERE id = $id")" \
        "{\"message_id\":\"$mid\",\"n\":1}" "the row's payload carries the new id"
    assert_eq "$(q b "SELECT payload FROM inbound_messages WHERE message_id = '$mid'")" \
        "{\"message_id\":\"$mid\",\"n\":1}" "what b stored"
done
note "payload message_ids that are a UUID, a number or uppercase hex: a fresh id, delivered"

# ---- A backlog for a dead peer fails on time ----
stop a
mkpeer a "$PA"
start a -r 2 --retry-interval 1
DEAD=$(freeport)
q a "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
     INSERT INTO outbound_messages (dst_addr, dst_port, payload) SELECT '127.0.0.1', $DEAD, '{}' FROM n"
t0=$(date +%s%N)
wait_for 7 "1000 rows to a dead peer all failed" count_is a \
    "SELECT count(*) FROM outbound_messages WHERE dst_port = $DEAD AND state = 'send_failed'" 1000
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
never=$(q a "SELECT count(*) FROM outbound_messages WHERE dst_port = $DEAD
             AND last_error = 'peer not answering; not sent' AND sent_at IS NULL")
tried=$(q a "SELECT count(*) FROM outbound_messages WHERE dst_port = $DEAD
             AND last_error = 'max retries exceeded (no ACK)' AND sent_at IS NOT NULL")
assert_eq "$((never + tried))" 1000 "every row says why (never sent: $never, retried: $tried)"
[ "$never" -gt 0 ] && [ "$tried" -gt 0 ] || fail "expected both kinds: $never never sent, $tried retried"
note "1000 rows to a dead peer, -r 2, 1 s apart: all send_failed in $ms ms ($never never sent, $tried retried)"
# a live peer is not judged dead: its rows go on being delivered
LIVE=$(queue a "$PB" '{"live":1}')
wait_for 5 "a live peer's row after the dead one" state_is a "$LIVE" acknowledged

# ---- The log traces every message: info (-v), debug (-d), and the default ----
X=$(newid)
queue a "$PB" "{\"message_id\":\"$X\"}" > /dev/null
wait_for 5 "the traced row acknowledged" count_is a \
    "SELECT state FROM outbound_messages WHERE message_id = '$X'" acknowledged
grep -q "INFO: sent outbound row [0-9]* (message_id $X) to 127.0.0.1 port $PB" "$T/a/daemon.log" ||
    fail "no 'sent' line for $X"
wait_for 5 "the 'acknowledged' line" grep -q \
    "INFO: acknowledged: outbound row [0-9]* (message_id $X) by 127.0.0.1 port $PB" "$T/a/daemon.log"
grep -q "INFO: stored message $X from 127.0.0.1 port $PA" "$T/b/daemon.log" ||
    fail "no 'stored' line for $X on b"
grep -q "INFO: ACK sent for message $X to 127.0.0.1 port $PA" "$T/b/daemon.log" ||
    fail "no 'ACK sent' line for $X on b"
grep -q "INFO: retransmitted outbound row [0-9]* (message_id [0-9a-f]*, retry 1) to 127.0.0.1 port $DEAD" \
    "$T/a/daemon.log" || fail "no 'retransmitted' line"
grep -q "WARN: outbound row [0-9]* (message_id [0-9a-f]*) to 127.0.0.1 port $DEAD: send_failed: max retries" \
    "$T/a/daemon.log" || fail "no 'send_failed' warning naming row, id and destination"
note "-v: one line per message sent, stored, ACKed, acknowledged, retransmitted; failures at warn"

stop b
mkpeer b "$PB"
(cd "$T/b" && sg -d start)
D=$(newid)
sgtest peer 127.0.0.1 "$PB" "$SECRET" "msg:{\"message_id\":\"$D\"}" "ack:$D:3000" rand:40 > /dev/null
wait_for 5 "the debug line for a dropped datagram" grep -q \
    "DEBUG: datagram from 127.0.0.1 port [0-9]*: dropped: does not authenticate" "$T/b/daemon.log"
grep -Eq "DEBUG: datagram from 127.0.0.1 port [0-9]*, [0-9]+ bytes: a message, message_id $D" \
    "$T/b/daemon.log" || fail "no debug line for $D"
note "-d: each datagram's fate, with its source, length and (once authenticated) message_id"

stop b
mkpeer b "$PB"
before=$(wc -l < "$T/b/daemon.log")
(cd "$T/b" && sg start) # the default level: warnings only
BAD=$(queue b "$PA" '[1,2]')
wait_for 5 "a bad row at the default level" state_is b "$BAD" send_failed
tail -n +"$((before + 1))" "$T/b/daemon.log" > "$T/b.default"
grep -q "WARN: outbound row $BAD (message_id none) to 127.0.0.1 port $PA: send_failed: payload is not a JSON object" \
    "$T/b.default" || fail "no warning for the failed row at the default level"
grep -q "INFO:" "$T/b.default" && fail "info lines at the default level: $(grep INFO: "$T/b.default")"
grep -q "WARN: securedgram [0-9.]* listening on 127.0.0.1 port $PB (pid [0-9]*, database .*securedgram.db)" \
    "$T/b.default" || fail "no start-up line at the default level"
note "the default level: the start-up line, a failed row named with its reason; no info lines"
stop a; stop b
