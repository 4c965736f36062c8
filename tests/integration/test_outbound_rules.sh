# Outbound rows that cannot be sent become send_failed with a clear last_error,
# never stay in pending/sending, and never stop the daemon serving others.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b

# bad ROW_SQL_VALUES EXPECTED_ERROR_PART
n=0
bad() {
    n=$((n + 1))
    id=$(q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload) VALUES ($1); SELECT last_insert_rowid();")
    echo "$id|$2" >> "$T/bad"
}
TAKEN=$(newid)
OTHER=$(newid)
bad "NULL, '127.0.0.1', $PB, '[1,2]'" "payload is not a JSON object (it is an array)"
bad "NULL, '127.0.0.1', $PB, '\"just a string\"'" "payload is not a JSON object (it is a string)"
bad "NULL, '127.0.0.1', $PB, 'not json at all'" "payload is not valid JSON"
bad "NULL, '127.0.0.1', $PB, '{\"a\":'" "payload is not valid JSON"
bad "'$(newid)', '127.0.0.1', $PB, '{\"message_id\":\"$OTHER\"}'" "differs from the row's message_id"
bad "'XYZ', '127.0.0.1', $PB, '{}'" "row message_id is not 24 lowercase hex digits"
bad "'$(newid)', '127.0.0.1', $PB, '{\"message_id\":\"ABC\"}'" "payload message_id is not 24 lowercase hex digits"
bad "NULL, '127.0.0.1', $PB, '{\"type\":\"ACK\",\"message_id\":\"$(newid)\"}'" "receiver would take it for an acknowledgement"
bad "NULL, 'not-an-address', $PB, '{}'" "dst_addr 'not-an-address' is not an IPv4 or IPv6 address"
bad "NULL, '127.0.0.1', 0, '{}'" "dst_port '0' is not a port number"
bad "NULL, '127.0.0.1', 70000, '{}'" "dst_port '70000' is not a port number"
bad "NULL, '127.0.0.1', 'abc', '{}'" "dst_port 'abc' is not a port number"
bad "NULL, '127.0.0.1', $PB, '{\"pad\":\"' || replace(hex(zeroblob(32740)),'00','ab') || '\"}'" "one datagram carries at most 65471"
bad "NULL, '127.0.0.1', $PB, '{\"pad\":\"' || replace(hex(zeroblob(32716)),'00','ab') || '\"}'" "one datagram carries at most 65471"
bad "NULL, '127.0.0.1', $PB, '{\"n\":' || replace(hex(zeroblob(101)),'00','[') || '1' || replace(hex(zeroblob(101)),'00',']') || '}'" "nested too deeply"
q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state) VALUES ('$TAKEN', '127.0.0.1', $PB, '{}', 'acknowledged')"
bad "NULL, '127.0.0.1', $PB, '{\"message_id\":\"$TAKEN\"}'" "message_id $TAKEN is already used by another outbound row"
GOOD=$(queue a "$PB" '{"content":"after all that"}')
BIG=$(q a "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.1', $PB, '{\"pad\":\"' || replace(hex(zeroblob(32000)),'00','ab') || '\"}'); SELECT last_insert_rowid();")

wait_for 5 "the good row acknowledged" state_is a "$GOOD" acknowledged
wait_for 5 "the largest good row acknowledged" state_is a "$BIG" acknowledged
while IFS='|' read -r id want; do
    got=$(q a "SELECT state || '|' || coalesce(last_error,'') FROM outbound_messages WHERE id=$id")
    case "$got" in
        "send_failed|"*"$want"*) ;;
        *) fail "row $id: expected send_failed with '$want', got '$got'" ;;
    esac
done < "$T/bad"
assert_eq "$(q a "SELECT count(*) FROM outbound_messages WHERE state IN ('pending','sending')")" 0 "rows left pending or sending"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages")" 2 "only the good rows reached b"
# (a row without message_id whose payload's is not 24 lowercase hex is delivered with a
# fresh one, as the original does: test_dropin.sh)
note "$n bad rows failed with clear errors; good rows delivered (including a 64 KB one)"

# The daemon is alive and serving.
ID=$(newid)
sgtest peer 127.0.0.1 "$PA" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null || fail "a stopped serving"
stop a; stop b
