# Crash recovery: kill -9 with rows in flight, restart, nothing lost or
# duplicated; each recovery rule of SPEC §2 on crafted rows.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b
acked() { q a "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'"; }
acked_over() { [ "$(acked)" -gt "$1" ]; }
stored_over() { [ "$(q b "SELECT count(*) FROM inbound_messages")" -gt "$1" ]; }

N=3000
q a "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $N)
     INSERT INTO outbound_messages (dst_addr, dst_port, payload)
     SELECT '127.0.0.1', $PB, '{\"n\":' || i || '}' FROM n"
wait_for 10 "first deliveries" acked_over 0
kill9 a
AT=$(acked)
kill9 b
note "killed both daemons with $AT of $N acknowledged"
start b; start a
wait_for 30 "all rows acknowledged after the restart" count_is a \
    "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" $N
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id), count(DISTINCT json_extract(payload,'\$.n'))
                 FROM inbound_messages")" "$N|$N|$N" "every message stored exactly once"
wait_for 10 "every inbound row ack_sent" count_is b "SELECT count(*) FROM inbound_messages WHERE state='ack_sent'" $N
note "after kill -9 of both: $N acknowledged, $N stored once"

# Kill the receiver alone, several times, while traffic flows.
q a "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $N)
     INSERT INTO outbound_messages (dst_addr, dst_port, payload)
     SELECT '127.0.0.1', $PB, '{\"m\":' || i || '}' FROM n"
for round in 1 2 3; do
    before=$(q b "SELECT count(*) FROM inbound_messages")
    wait_for 10 "progress before kill $round" stored_over "$before"
    kill9 b
    start b
done
wait_for 30 "all acknowledged after receiver crashes" count_is a \
    "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" $((2 * N))
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages")" \
    "$((2 * N))|$((2 * N))" "stored exactly once after receiver crashes"
note "receiver killed 3 times mid-stream: nothing lost or duplicated"
stop a; stop b

# Crafted leftovers of a crash, one per recovery rule.
S1=$(newid); S2=$(newid); R1=$(newid)
q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state)
     VALUES ('$S1', '127.0.0.1', $PB, '{\"message_id\":\"$S1\"}', 'sending')"
q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, sent_at)
     VALUES ('$S2', '127.0.0.1', $PB, '{\"message_id\":\"$S2\"}', 'sent',
             strftime('%Y-%m-%dT%H:%M:%f','now','-90 seconds'))"
# c stored R1 from a but crashed before ACKing it; a still waits for that ACK.
PC=$(freeport)
mkpeer c "$PC"
start c; stop c
q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, sent_at)
     VALUES ('$R1', '127.0.0.1', $PC, '{\"message_id\":\"$R1\"}', 'sent', strftime('%Y-%m-%dT%H:%M:%f','now'))"
q c "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp)
     VALUES ('$R1', '127.0.0.1', $PA, '{\"message_id\":\"$R1\"}', '2026-01-01T00:00:00.000000000')"
sed -i 's/^SECUREDGRAM_RETRY_INTERVAL=.*/SECUREDGRAM_RETRY_INTERVAL=60/' "$T/a/.env"
start b; start a; start c
for id in "$S1" "$S2" "$R1"; do
    wait_for 5 "row $id acknowledged" count_is a "SELECT state FROM outbound_messages WHERE message_id='$id'" acknowledged
done
assert_eq "$(q c "SELECT state, ack_sent FROM inbound_messages WHERE message_id='$R1'")" "ack_sent|1" "received row ACKed at start"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id IN ('$S1','$S2')")" 2 "each stored once"
grep -q "1 outbound rows left 'sending'" "$T/a/daemon.log" || fail "recovery not logged"
note "sending -> pending -> delivered; overdue sent retransmitted at once; received re-ACKed (interval 60 s)"
stop a; stop b; stop c
