# Two daemons exchange messages both ways; a daemon sends to itself; IPv6;
# UTF-8 payloads arrive byte for byte as sent.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b

N=25
for i in $(seq 1 $N); do
    queue a "$PB" "{\"content\":\"a to b $i\",\"n\":$i}" >/dev/null
    queue b "$PA" "{\"content\":\"b to a $i\",\"n\":$i}" >/dev/null
done
wait_for 10 "a's rows acknowledged" count_is a "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" $N
wait_for 10 "b's rows acknowledged" count_is b "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" $N
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages")" "$N|$N" "b stored each message once"
assert_eq "$(q a "SELECT count(*), count(DISTINCT message_id) FROM inbound_messages")" "$N|$N" "a stored each message once"
wait_for 5 "b's inbound rows ack_sent" count_is b "SELECT count(*) FROM inbound_messages WHERE state='ack_sent' AND ack_sent=1 AND ack_sent_at IS NOT NULL" $N
# The ids the senders generated are in their rows, in the payloads, and on the receivers.
assert_eq "$(q a "SELECT count(*) FROM outbound_messages WHERE length(message_id)=24 AND json_extract(payload,'\$.message_id')=message_id AND sent_at IS NOT NULL AND ack_received_at IS NOT NULL")" $N "a's rows carry their ids"
q a "SELECT message_id FROM outbound_messages ORDER BY 1" > "$T/sent_ids"
q b "SELECT message_id FROM inbound_messages ORDER BY 1" > "$T/recv_ids"
cmp -s "$T/sent_ids" "$T/recv_ids" || fail "b received other ids than a sent"
assert_eq "$(q b "SELECT src_addr, src_port, typeof(src_addr) FROM inbound_messages LIMIT 1")" "127.0.0.1|$PA|text" "sender address stored as text"
note "$N messages each way, acknowledged and stored once"

# UTF-8 of every width and odd JSON: stored byte for byte as sent.
PAYLOAD='{"content":"héllo wörld ✓ 日本語 😀","nested":{"a":[1,2.50,1e3,-0,12345678901234567890123],"s":"\"quoted\" \\ \u00e9"},"empty":{}}'
ROW=$(queue a "$PB" "$PAYLOAD")
wait_for 5 "utf-8 row acknowledged" state_is a "$ROW" acknowledged
MID=$(q a "SELECT message_id FROM outbound_messages WHERE id=$ROW")
EXPECT=$(q a "SELECT payload FROM outbound_messages WHERE id=$ROW")
assert_eq "$(q b "SELECT payload FROM inbound_messages WHERE message_id='$MID'")" "$EXPECT" "payload stored as sent"
case "$EXPECT" in "{\"message_id\":\"$MID\",\"content\":\"héllo"*) ;; *) fail "id not inserted at the front: $EXPECT" ;; esac
note "UTF-8 payload stored byte for byte"

# A row that names its own message_id keeps it.
OWN=$(newid)
ROW=$(queue a "$PB" "{\"message_id\":\"$OWN\",\"content\":\"own id\"}")
wait_for 5 "own-id row acknowledged" state_is a "$ROW" acknowledged
assert_eq "$(q a "SELECT message_id FROM outbound_messages WHERE id=$ROW")" "$OWN" "payload id adopted"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$OWN'")" 1 "own id delivered"

# A daemon sends to itself.
ROW=$(queue a "$PA" '{"content":"to myself"}')
wait_for 5 "self-addressed row acknowledged" state_is a "$ROW" acknowledged
MID=$(q a "SELECT message_id FROM outbound_messages WHERE id=$ROW")
assert_eq "$(q a "SELECT count(*) FROM inbound_messages WHERE message_id='$MID' AND state='ack_sent'")" 1 "stored on itself"
note "a daemon delivers to itself"

# IPv6: a daemon bound to ::1, reached from an IPv4-bound daemon (through its own IPv6 socket).
P6=$(freeport 6)
mkpeer six "$P6" "$SECRET" ::1
start six
ROW=$(queue a "$P6" '{"content":"over IPv6"}' ::1)
wait_for 5 "IPv6 row acknowledged" state_is a "$ROW" acknowledged
assert_eq "$(q six "SELECT src_addr FROM inbound_messages")" "::1" "IPv6 sender address"
ROW=$(queue six "$PA" '{"content":"back over IPv4"}' 127.0.0.1)
wait_for 5 "IPv4 row from the IPv6 daemon acknowledged" state_is six "$ROW" acknowledged
note "IPv6 both ways"

# Ruby's datagrams: the original's own vector is accepted, stored exactly, and ACKed.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VEC=$ROOT/tests/vectors/envelope.json
if [ -f "$ROOT/../shared/vectors/envelope.json" ]; then
    cmp -s "$VEC" "$ROOT/../shared/vectors/envelope.json" || fail "tests/vectors differs from ../shared/vectors"
fi
{
    KEY=$(jq -r '.vectors[] | select(.name=="json-1400-bytes") | .key_hex' "$VEC")
    HEX=$(jq -r '.vectors[] | select(.name=="json-1400-bytes") | .datagram_hex' "$VEC")
    TEXT=$(jq -r '.vectors[] | select(.name=="json-1400-bytes") | .plaintext' "$VEC")
    PR=$(freeport)
    mkpeer ruby "$PR" "$KEY"
    start ruby --window 500000000
    sgtest peer 127.0.0.1 "$PR" "$KEY" "raw:$HEX" ack:a1b2c3d4e5f60718293a4b5c:3000 >/dev/null ||
        fail "the original's datagram got no ACK"
    assert_eq "$(q ruby "SELECT payload FROM inbound_messages")" "$TEXT" "original's payload stored exactly"
    assert_eq "$(q ruby "SELECT crypto_timestamp FROM inbound_messages")" "2025-11-22T00:00:01.123456789" "crypto timestamp"
    note "a datagram sealed by the Ruby original is accepted and ACKed"
}
stop a; stop b; stop six
