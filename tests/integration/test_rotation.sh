# Rotating one pair's key under traffic both ways, as docs/rotation.md says: stage
# the new key as previous-key on both hosts, switch each host at its own moment,
# then drop the old key. Nothing is lost or stored twice, and no datagram of either
# side is ever refused for its key (no auth or unknown_key drop). Then roaming: bravo
# moves to another address and port mid-stream, and alpha's rows follow it.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport); PB2=$(freeport)
K1=$(sg keygen); K2=$(sg keygen)
UNTIL=2099-01-01T00:00:00Z
for h in alpha:127.0.0.2:$PA bravo:127.0.0.3:$PB; do
    n=${h%%:*} rest=${h#*:}
    mkpeer "$n" "${rest#*:}" "" "${rest%%:*}"
    sed -i '/^SECUREDGRAM_SECRET=/d' "$T/$n/.env"
    printf 'SECUREDGRAM_PEERS=%s\nSECUREDGRAM_NAME=%s\nSECUREDGRAM_MAX_RETRIES=1000\n' \
        "$T/$n/peers" "$n" >> "$T/$n/.env"
done
# peers HOST OTHER ENDPOINT KEY [PREVIOUS]: HOST's peers file, naming OTHER.
peers() {
    {
        printf '[peer %s]\nendpoint = %s\nallowed = 127.0.0.0/8\nkey = %s\nroaming = yes\n' "$2" "$3" "$4"
        [ -z "${5:-}" ] || printf 'previous-key = %s\nprevious-key-until = %s\n' "$5" "$UNTIL"
    } > "$T/$1/peers"
    chmod 600 "$T/$1/peers"
}
reloads() { grep -c "configuration reloaded" "$T/$1/daemon.log" || true; }
hup() {
    before=$(reloads "$1")
    kill -HUP "$(cat "$T/$1/securedgram.pid")"
    tries=$((500 * SLOW))
    while [ "$(reloads "$1")" -le "$before" ]; do
        tries=$((tries - 1)); [ "$tries" -gt 0 ] || fail "$1 did not reload"; sleep 0.01
    done
}
peers alpha bravo "127.0.0.3:$PB" "$K1"
peers bravo alpha "127.0.0.2:$PA" "$K1"
start alpha; start bravo

# traffic FROM PEER TAG N: N rows from FROM to PEER, 10 ms apart, in the background.
traffic() {
    i=0
    while [ "$i" -lt "$4" ]; do
        q "$1" "INSERT INTO outbound_messages (dst_addr, dst_port, payload, peer) VALUES ('', 0, '{\"tag\":\"$3\",\"i\":$i}', '$2')" >/dev/null
        i=$((i + 1))
        sleep 0.01
    done
}
N=150
traffic alpha bravo rot $N & TA=$!
traffic bravo alpha rot $N & TB=$!
sleep 0.3
peers alpha bravo "127.0.0.3:$PB" "$K1" "$K2"; hup alpha   # stage
peers bravo alpha "127.0.0.2:$PA" "$K1" "$K2"; hup bravo
sleep 0.3
peers alpha bravo "127.0.0.3:$PB" "$K2" "$K1"; hup alpha   # switch, alpha first
sleep 0.3
peers bravo alpha "127.0.0.2:$PA" "$K2" "$K1"; hup bravo
sleep 0.3
peers alpha bravo "127.0.0.3:$PB" "$K2"; hup alpha         # drop the old key
peers bravo alpha "127.0.0.2:$PA" "$K2"; hup bravo
wait "$TA" "$TB"
all_acked() { count_is "$1" "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'" "$N"; }
wait_for 20 "alpha's rows acknowledged" all_acked alpha
wait_for 20 "bravo's rows acknowledged" all_acked bravo
for h in alpha bravo; do
    assert_eq "$(q "$h" "SELECT count(*), count(DISTINCT payload) FROM inbound_messages WHERE payload LIKE '%\"rot\"%'")" \
        "$N|$N" "$h: every message of the other once"
    kill -USR1 "$(cat "$T/$h/securedgram.pid")"
    wait_for 5 "$h's counters" grep -q "counters:" "$T/$h/daemon.log"
    line=$(grep "counters:" "$T/$h/daemon.log" | tail -n 1)
    echo "$line" | grep -q " auth=0 " || fail "$h refused datagrams for their key: $line"
    echo "$line" | grep -q " unknown_key=0 " || fail "$h dropped unknown key ids: $line"
done
note "key rotated under traffic both ways: $N + $N messages, none lost, none twice, none refused"

# Roaming: bravo comes back on another address and port; alpha's rows follow it.
stop bravo
R=$(q alpha "INSERT INTO outbound_messages (dst_addr, dst_port, payload, peer) VALUES ('', 0, '{\"tag\":\"roam\"}', 'bravo'); SELECT last_insert_rowid();")
sed -i "s/^SECUREDGRAM_ADDRESS=.*/SECUREDGRAM_ADDRESS=127.0.0.9/; s/^SECUREDGRAM_PORT=.*/SECUREDGRAM_PORT=$PB2/" "$T/bravo/.env"
start bravo
q bravo "INSERT INTO outbound_messages (dst_addr, dst_port, payload, peer) VALUES ('', 0, '{\"tag\":\"hello from 9\"}', 'alpha')" >/dev/null
wait_for 15 "alpha's row delivered at bravo's new address" state_is alpha "$R" acknowledged
grep -q "peer bravo roamed: its endpoint is now 127.0.0.9 port $PB2" "$T/alpha/daemon.log" ||
    fail "alpha did not log the roam"
assert_eq "$(q alpha "SELECT src_addr FROM inbound_messages WHERE payload LIKE '%hello from 9%'")" \
    "127.0.0.9" "bravo's message came from its new address"
note "bravo roamed to 127.0.0.9 port $PB2 mid-stream: alpha's waiting row followed it"
exit 0
