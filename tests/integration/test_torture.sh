# Thousands of messages both ways while each daemon is killed with SIGKILL at
# random moments and another process takes the databases' write locks in
# bursts. At the end every message is stored exactly once on its receiver and
# acknowledged on its sender. Counted and asserted.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport)
mkpeer a "$PA"; mkpeer b "$PB"
start a; start b
N=${N:-2000}
KILLS=${KILLS:-4}

fill() { # fill FROM DST_PORT TAG
    q "$1" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $N)
            INSERT INTO outbound_messages (dst_addr, dst_port, payload)
            SELECT '127.0.0.1', $2, '{\"$3\":' || i || '}' FROM n"
}
acked() { q "$1" "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'"; }
progressed() { [ "$(acked "$1")" -gt "$2" ]; }
rand() { echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 )); }

fill a "$PB" ab
fill b "$PA" ba
kills=0
for round in $(seq 1 "$KILLS"); do
    for victim in a b; do
        other=$([ $victim = a ] && echo b || echo a)
        before=$(acked "$other")
        [ "$before" -lt "$N" ] || continue
        # let some messages through (a random amount), then kill
        target=$(( before + 1 + $(rand 200) ))
        wait_for 20 "progress before killing $victim" progressed "$other" "$((target < N ? target : N - 1))"
        kill9 $victim
        kills=$((kills + 1))
        # a lock burst on the survivor while the victim is down
        sqlite3 -cmd ".timeout 5000" "$T/$other/securedgram.db" "BEGIN IMMEDIATE;" ".shell sleep 0.$(rand 5)" "COMMIT;"
        start $victim
    done
done
wait_for 60 "a's rows all acknowledged" count_is a "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" "$N"
wait_for 60 "b's rows all acknowledged" count_is b "SELECT count(*) FROM outbound_messages WHERE state='acknowledged'" "$N"
assert_eq "$(q b "SELECT count(*), count(DISTINCT message_id), count(DISTINCT json_extract(payload,'\$.ab'))
                 FROM inbound_messages")" "$N|$N|$N" "b stored a's messages exactly once"
assert_eq "$(q a "SELECT count(*), count(DISTINCT message_id), count(DISTINCT json_extract(payload,'\$.ba'))
                 FROM inbound_messages")" "$N|$N|$N" "a stored b's messages exactly once"
for p in a b; do
    assert_eq "$(q $p "SELECT count(*) FROM outbound_messages WHERE state NOT IN ('acknowledged')")" 0 "$p rows not acknowledged"
done
wait_for 10 "every inbound row ack_sent" count_is b "SELECT count(*) FROM inbound_messages WHERE state='ack_sent'" "$N"
note "$N messages each way, $kills kill -9s at random moments with lock bursts: all acknowledged, all stored exactly once"
stop a; stop b
