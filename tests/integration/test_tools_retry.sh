# sg-send --retry ROW_ID and --retry-failed [--peer NAME] (issue 12): send_failed
# rows go back to 'pending' with retry_count 0 and last_error cleared, keeping
# their message_id; a row in any other state, a missing row and bad arguments are
# one ERROR line and change nothing; a requeued row is then delivered, and --wait
# waits for it.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; stop a # the database
send() { (cd "$T/a" && "$SG_BIN/sg-send" "$@"); }
row() {
    q a "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, retry_count, last_error, peer)
         VALUES ($1, '127.0.0.1', $PB, '{\"n\":1}', '$2', 3, 'max retries exceeded (no ACK)', $3);
         SELECT last_insert_rowid();"
}
R1=$(row "'0123456789abcdef01234567'" send_failed NULL)
R2=$(row NULL send_failed "'berlin'")
R3=$(row NULL send_failed "'paris'")
R4=$(row NULL acknowledged NULL)
snapshot() { q a "SELECT id, state, retry_count, coalesce(last_error, '-'), coalesce(message_id, '-') FROM outbound_messages ORDER BY id"; }

out=$(send --retry "$R1")
assert_eq "$(echo "$out" | jq -c .)" "{\"status\":\"queued again\",\"row_id\":$R1}" "--retry's receipt"
assert_eq "$(q a "SELECT state, retry_count, coalesce(last_error, '-'), message_id FROM outbound_messages WHERE id = $R1")" \
    "pending|0|-|0123456789abcdef01234567" "the requeued row"
before=$(snapshot)
expect_error "outbound row $R4 is acknowledged, not send_failed: nothing changed" send --retry "$R4"
expect_error "outbound row $R1 is pending, not send_failed: nothing changed" send --retry "$R1"
expect_error "there is no outbound row 999" send --retry 999
expect_error "--retry: 'x' is not a row id" send --retry x
expect_error "--retry: '0' is not a row id" send --retry 0
expect_error "--peer goes with --retry-failed" send --retry "$R2" --peer berlin
expect_error "takes no message" send --retry "$R2" '{"a":1}'
expect_error "mutually exclusive" send --retry "$R2" --retry-failed
expect_error "--wait goes with --retry ROW_ID" send --retry-failed --wait
expect_error "is not a peer name" send --retry-failed --peer -x
assert_eq "$(snapshot)" "$before" "refused retries changed nothing"
note "--retry: one send_failed row back to pending, its message_id kept; every refusal changes nothing"

out=$(send --retry-failed --peer berlin)
assert_eq "$(echo "$out" | jq -c .)" '{"status":"queued again","rows":1,"peer":"berlin"}' "--retry-failed --peer"
assert_eq "$(q a "SELECT state FROM outbound_messages WHERE id = $R3")" send_failed "paris's row stays"
assert_eq "$(send --retry-failed | jq -c .)" '{"status":"queued again","rows":1}' "--retry-failed"
assert_eq "$(q a "SELECT count(*) FROM outbound_messages WHERE state = 'send_failed'")" 0 "no send_failed row left"
assert_eq "$(send --retry-failed | jq .rows)" 0 "nothing left to requeue"
note "--retry-failed [--peer]: every send_failed row (of that peer) back to pending, with the count"

# Delivered once the daemons run; --wait follows a requeued row to its ACK.
q a "DELETE FROM outbound_messages WHERE peer IS NOT NULL"
start b; start a
wait_for 10 "the requeued row delivered" state_is a "$R1" acknowledged
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id = '0123456789abcdef01234567'")" 1 \
    "stored once at b"
R5=$(row NULL send_failed NULL)
send -q --wait=10 --retry "$R5" || fail "--wait after --retry did not see the ACK"
state_is a "$R5" acknowledged || fail "row $R5 is not acknowledged"
note "requeued rows are delivered; --wait --retry waits for the ACK"
exit 0
