# Version 1 peers of the peers file: a host that speaks only the original's format
# (here sgtest, as the Ruby original would) gets its own pair key, found by its source
# address; and however many wire 1 peers cover an address, a datagram costs at most 4
# trial opens (the shared secret included), from any number of source addresses.
. "$(dirname "$0")/lib.sh"

PA=$(freeport)
KR=$(sg keygen)
mkpeer a "$PA"
echo "SECUREDGRAM_PEERS=$T/a/peers" >> "$T/a/.env"
{
    printf '[peer ruby]\nendpoint = 127.0.0.6:9\nkey = %s\nwire = 1\n\n' "$KR"
    for i in 1 2 3 4 5 6; do
        printf '[peer wide%s]\nallowed = 127.0.0.0/8\nkey = %s\nwire = 1\n' "$i" "$(sg keygen)"
    done
} > "$T/a/peers"
chmod 600 "$T/a/peers"
start a

counter() {
    before=$(grep -c "counters:" "$T/a/daemon.log" || true)
    kill -USR1 "$(cat "$T/a/securedgram.pid")"
    tries=$((500 * SLOW))
    while [ "$(grep -c "counters:" "$T/a/daemon.log" || true)" -le "$before" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no counters line"
        sleep 0.01
    done
    grep "counters:" "$T/a/daemon.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# The version 1 peer: its key, from its address, is answered with its key.
ID=$(newid)
SGTEST_SRC=127.0.0.6 sgtest peer 127.0.0.1 "$PA" "$KR" "msg:{\"message_id\":\"$ID\",\"from\":\"ruby\"}" \
    "ack:$ID:5000" >/dev/null || fail "no ACK sealed with ruby's key"
assert_eq "$(q a "SELECT peer || ' ' || src_addr FROM inbound_messages WHERE message_id = '$ID'")" \
    "ruby 127.0.0.6" "the row records ruby"
# Its key from another address is no candidate there (ruby's allowed is its endpoint).
ID=$(newid)
SGTEST_SRC=127.0.0.7 sgtest peer 127.0.0.1 "$PA" "$KR" "msg:{\"message_id\":\"$ID\"}" silence:500 \
    >/dev/null || fail "ruby's key was answered from outside its allowed"
# The shared secret still works, and its rows name no peer.
ID=$(newid)
SGTEST_SRC=127.0.0.7 sgtest peer 127.0.0.1 "$PA" "$SECRET" "msg:{\"message_id\":\"$ID\"}" \
    "ack:$ID:5000" >/dev/null || fail "no ACK on the shared secret"
assert_eq "$(q a "SELECT coalesce(peer, '-') FROM inbound_messages WHERE message_id = '$ID'")" "-" \
    "a shared-secret row names no peer"
note "a wire 1 peer is served with its own key, found by its address; the shared secret beside it"

# Datagrams under no key we hold, from ten addresses that six wire 1 peers cover.
rx0=$(counter rx)
t0=$(counter trial_opens)
for i in 10 11 12 13 14 15 16 17 18 19; do
    SGTEST_SRC=127.0.0.$i sgtest flood 127.0.0.1 "$PA" "$SECRET" 100 wrongkey
done
settled() {
    a=$(counter rx)
    sleep 0.2
    [ "$(counter rx)" = "$a" ]
}
wait_for 10 "the flood received" settled
rx=$(( $(counter rx) - rx0 )) opens=$(( $(counter trial_opens) - t0 ))
[ "$rx" -gt 500 ] || fail "only $rx of 1000 datagrams arrived"
assert_eq "$opens" "$((4 * rx))" "trial opens for $rx datagrams (cap 4 each)"
note "$rx forged datagrams from 10 addresses: $opens trial opens, 4 each, with 7 candidate keys"
exit 0
