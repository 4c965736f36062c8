# Retransmission while the peer is down, delivery once it comes up; max retries
# ends in send_failed; a dead peer delays nobody else.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport); PDEAD=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
echo "SECUREDGRAM_MAX_RETRIES=3" >> "$T/a/.env"
start a

# b is down: a retransmits (fresh datagrams) and counts.
ROW=$(queue a "$PB" '{"content":"are you there?"}')
wait_for 5 "a retransmission" count_is a "SELECT retry_count >= 1 AND state = 'sent' FROM outbound_messages WHERE id=$ROW" 1
start b
wait_for 5 "delivery after b came up" state_is a "$ROW" acknowledged
MID=$(q a "SELECT message_id FROM outbound_messages WHERE id=$ROW")
assert_eq "$(q b "SELECT count(*) FROM inbound_messages WHERE message_id='$MID'")" 1 "stored once"
note "retransmitted while the peer was down, delivered once when it came up"

# Nobody answers: send_failed after max retries; meanwhile other messages flow.
DEAD=$(queue a "$PDEAD" '{"content":"into the void"}')
LIVE=$(queue a "$PB" '{"content":"meanwhile"}')
wait_for 3 "the live row acknowledged while the dead one retries" state_is a "$LIVE" acknowledged
state_is a "$DEAD" sent || fail "the dead row is not waiting in 'sent'"
wait_for 10 "send_failed after max retries" state_is a "$DEAD" send_failed
assert_eq "$(q a "SELECT retry_count, last_error FROM outbound_messages WHERE id=$DEAD")" \
    "3|max retries exceeded (no ACK)" "retries and error of the failed row"
note "max retries -> send_failed, other rows not delayed"
stop a; stop b
