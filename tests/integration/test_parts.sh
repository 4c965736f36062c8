# Messages in parts and the adaptive timer, between two daemons that are each
# other's version 2 peers, through sgrelay (a at 127.0.0.2 -> relay 127.0.0.10,
# which sends on to b at 127.0.0.3 from 127.0.0.11): small and 1 MiB messages at
# 5% loss with 25 ms each way, 20% loss, byte for byte and exactly once, with
# their sequence numbers; a row too large for version 1 fails saying so.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport); PR=$(freeport); PS=$(freeport)
PAIR=$(sg keygen)
for n in a b; do
    if [ "$n" = a ]; then mkpeer a "$PA" "$SECRET" 127.0.0.2; else mkpeer b "$PB" "$SECRET" 127.0.0.3; fi
    printf 'SECUREDGRAM_PEERS=%s\nSECUREDGRAM_NAME=%s\nSECUREDGRAM_MAX_RETRIES=100\n' "$T/$n/peers" "$n" >> "$T/$n/.env"
done
printf '[peer b]\nendpoint = 127.0.0.10:%s\nkey = %s\n' "$PR" "$PAIR" > "$T/a/peers"
printf '[peer a]\nallowed = 127.0.0.11\nkey = %s\n' "$PAIR" > "$T/b/peers"
chmod 600 "$T/a/peers" "$T/b/peers"
start a; start b

# 1. No loss: small rows are one part each, with sequence numbers from 1 on both sides.
relay plain --seed 1 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
rows a small 50 10 b
delivered a b small "$F" "$L" 10
assert_eq "$(q a "SELECT min(sequence) || '-' || max(sequence) || ' ' || count(DISTINCT sequence) FROM outbound_messages")" "1-50 50" "a gave the rows the numbers 1 to 50"
q a "SELECT message_id || ' ' || sequence FROM outbound_messages ORDER BY 1" > "$T/seq_a"
q b "SELECT message_id || ' ' || sequence FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'small' ORDER BY 1" > "$T/seq_b"
cmp -s "$T/seq_a" "$T/seq_b" || fail "b stored other sequence numbers than a gave"
assert_eq "$(q a "SELECT last FROM peer_sequence WHERE peer = 'b'")" 50 "a keeps its last number for b"
# One 1 MiB message (in 920 parts of 1,140 bytes), and one of 3,000 bytes (3 parts).
rows a big 1 1040000 b
delivered a b big "$F" "$L" 20
rows a mid 1 3000 b
delivered a b mid "$F" "$L" 10
assert_eq "$(q b "SELECT sequence FROM inbound_messages WHERE json_extract(payload, '\$.t') = 'mid'")" 52 "a message in parts has its number too"
unrelay plain
note "no loss: 50 one-part messages numbered 1 to 50, a 1 MiB and a 3,000-byte message in parts, byte for byte"

# 2. 5% loss each way, 25 ms delay: 1,000 small messages and 20 of 1 MiB, each stored once.
relay lossy --seed 5 --loss 5 --delay 25 --queue 20000 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
rows a lossy 1000 20 b
delivered a b lossy "$F" "$L" 60
rows a lossybig 20 1040000 b
delivered a b lossybig "$F" "$L" 120
unrelay lossy
lost=$(relay_stat lossy '.ab.dropped_loss + .ba.dropped_loss')
note "5% loss, 25 ms each way: 1,000 small and 20 1 MiB messages stored once each ($lost datagrams lost)"

# 3. 20% loss each way: still everything, once.
relay heavy --seed 20 --loss 20 --delay 5 --queue 20000 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
rows a heavy 100 20 b
delivered a b heavy "$F" "$L" 60
rows a heavybig 2 200000 b
delivered a b heavybig "$F" "$L" 60
unrelay heavy
note "20% loss: 100 small and 2 messages of 200 KB stored once each"

# 4. Too large for version 1: a row to the shared secret's address fails, saying why.
q a "INSERT INTO outbound_messages (dst_addr, dst_port, payload) VALUES ('127.0.0.3', $PB,
     json_object('pad', substr(hex(zeroblob(40000)), 1, 70000)))"
wait_for 10 "the row too large for version 1 fails" count_is a \
    "SELECT count(*) FROM outbound_messages WHERE state='send_failed' AND last_error LIKE '%one datagram carries at most 65471 (version 1%'" 1
note "a 70,000-byte row for version 1: send_failed, saying a version 2 peer takes it in parts"
stop a; stop b
