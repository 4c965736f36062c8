# Another process holds the database's write lock for seconds: the daemon keeps
# running, ACKs nothing it could not store, and stores and ACKs every message
# once the sender retransmits after the lock is gone.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b

# lock NAME SECS: holds NAME's write lock for SECS seconds in the background.
lock() {
    rm -f "$T/locked"
    sqlite3 "$T/$1/securedgram.db" "BEGIN IMMEDIATE;" ".shell touch $T/locked; sleep $2" "COMMIT;" &
    LOCKER=$!
    wait_for 5 "the lock" test -e "$T/locked"
}

# A peer's message while b is locked: no ACK, nothing stored.
ID=$(newid)
lock b 3
sgtest peer 127.0.0.1 "$PB" "$SECRET" "msg:{\"message_id\":\"$ID\",\"try\":1}" silence:1500 >/dev/null ||
    fail "ACK for a message that could not be stored"
status b || fail "b died under the lock"
wait "$LOCKER"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$ID'")" 0 "stored while locked"
sgtest peer 127.0.0.1 "$PB" "$SECRET" "msg:{\"message_id\":\"$ID\",\"try\":2}" "ack:$ID:3000" >/dev/null ||
    fail "no ACK for the retransmission after the lock"
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$ID'")" 1 "stored once after the lock"
note "locked receiver: no ACK while locked; stored and ACKed on retransmission"

# Daemon to daemon: a sends while b is locked; a's retransmission delivers it.
lock b 3
ROW=$(queue a "$PB" '{"content":"through the lock"}')
wait_for 5 "a sent the row" state_is a "$ROW" sent
wait "$LOCKER"
wait_for 10 "acknowledged after the lock" state_is a "$ROW" acknowledged
MID=$(q a "SELECT message_id FROM outbound_messages WHERE id=$ROW")
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$MID'")" 1 "stored once"
assert_eq "$(q a "SELECT retry_count >= 1 FROM outbound_messages WHERE id=$ROW")" 1 "delivered by a retransmission"

# The sender's own database locked: it catches up once the lock goes.
lock a 2
ROWS=""
for i in 1 2 3; do ROWS="$ROWS $(q a "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.1', $PB, '{\"n\":$i}'); SELECT last_insert_rowid();" 2>/dev/null || true)"; done
wait "$LOCKER"
ROW=$(queue a "$PB" '{"content":"after the sender lock"}')
wait_for 10 "sender caught up" state_is a "$ROW" acknowledged
assert_eq "$(q a "SELECT count(*) FROM outbound_messages WHERE state IN ('pending','sending')")" 0 "rows stuck pending or sending"
status a || fail "a died under its own lock"
note "locked daemon to daemon and locked sender: delivered once, nothing stuck"
stop a; stop b
