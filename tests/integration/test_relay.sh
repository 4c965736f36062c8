# Two daemons through sgrelay (a lossy UDP relay in userspace: this kernel has no
# netem): a at 127.0.0.2 sends to the relay at 127.0.0.10, which sends on to b at
# 127.0.0.3 from 127.0.0.11 and carries b's ACKs back. Plain, 5% loss with delay,
# duplication and reordering, a bandwidth cap, and IPv6: every row acknowledged,
# stored exactly once, and the relay's counts show what it did.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport); PR=$(freeport); PS=$(freeport); PR6=$(freeport 6)
mkpeer a "$PA" "$SECRET" 127.0.0.2; mkpeer b "$PB" "$SECRET" 127.0.0.3
# The fixed retransmission interval is 1 s (mkpeer); enough retries to outlast the losses.
echo "SECUREDGRAM_MAX_RETRIES=60" >> "$T/a/.env"
start a; start b

# sent_by_a FIRST LAST: how many datagrams a sent for those rows (first sends and retransmissions).
sent_by_a() { q a "SELECT count(*) + sum(retry_count) FROM outbound_messages WHERE id BETWEEN $1 AND $2"; }

# accounted NAME: in each direction every datagram received (and every copy made) was
# forwarded, dropped, or still held when the relay stopped (a held-back original whose
# copy got there first), and none failed to send.
accounted() {
    for d in ab ba; do
        assert_eq "$(relay_stat "$1" ".$d | \"\\((.received + .duplicated) - (.forwarded + .dropped_loss + .dropped_queue + .unsent)) \\(.send_errors)\"")" \
            "0 0" "$1 $d: datagrams accounted for"
    done
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# 1. No impairment: the relay forwards everything both ways.
relay plain --seed 1 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
t0=$(date +%s%N)
rows a plain 100 10 127.0.0.10 "$PR"
delivered a b plain "$F" "$L" 10 127.0.0.11
took=$(ms_since "$t0")
unrelay plain
accounted plain
assert_eq "$(relay_stat plain '.ab.received')" "$(sent_by_a "$F" "$L")" "plain: the relay saw every datagram a sent"
assert_eq "$(relay_stat plain '[.ab.received == .ab.forwarded, .ba.received == .ba.forwarded, .ba.forwarded >= 100, .ab.dropped_loss + .ba.dropped_loss + .ab.duplicated + .ab.reordered] | @tsv')" \
    "true	true	true	0" "plain: all forwarded, ACKs carried back, nothing impaired"
note "plain: 100 rows in ${took} ms, $(relay_stat plain '"ab \(.ab.forwarded) forwarded, ba \(.ba.forwarded)"')"

# 2. 5% loss each way with 25 ms of delay: retransmissions recover every loss.
relay loss --seed 5 --loss 5 --delay 25 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
t0=$(date +%s%N)
rows a loss 200 10 127.0.0.10 "$PR"
delivered a b loss "$F" "$L" 45 127.0.0.11
took=$(ms_since "$t0")
unrelay loss
accounted loss
assert_eq "$(relay_stat loss '.ab.received')" "$(sent_by_a "$F" "$L")" "loss: the relay saw every datagram a sent"
assert_eq "$(relay_stat loss '[.ab.dropped_loss > 0, .ba.dropped_loss > 0, .ab.dropped_queue + .ba.dropped_queue] | @tsv')" \
    "true	true	0" "loss: datagrams lost both ways, none to the queue"
note "loss: 200 rows in ${took} ms, $(q a "SELECT sum(retry_count) FROM outbound_messages WHERE id BETWEEN $F AND $L") retransmissions, $(relay_stat loss '"lost ab \(.ab.dropped_loss)/\(.ab.received), ba \(.ba.dropped_loss)/\(.ba.received)"')"

# 3. Duplication and reordering: the replay cache and unique ids keep b's rows single.
relay dupre --seed 9 --dup 20 --reorder 20 --delay 2 --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
t0=$(date +%s%N)
rows a dupre 200 10 127.0.0.10 "$PR"
delivered a b dupre "$F" "$L" 20 127.0.0.11
took=$(ms_since "$t0")
unrelay dupre
accounted dupre
assert_eq "$(relay_stat dupre '[.ab.duplicated > 0, .ab.reordered > 0, .ba.duplicated > 0, .ba.reordered > 0, .ab.forwarded > .ab.received, .ab.dropped_loss + .ba.dropped_loss] | @tsv')" \
    "true	true	true	true	true	0" "dupre: datagrams duplicated and reordered both ways, the copies delivered"
note "dupre: 200 rows in ${took} ms, $(relay_stat dupre '"ab \(.ab.duplicated) duplicated \(.ab.reordered) reordered of \(.ab.received), ba \(.ba.duplicated)/\(.ba.reordered) of \(.ba.received)"')"

# 4. A bandwidth cap of 100 KB/s from a to b: 100 rows of about 1 KB take a second
# or more, all arrive, and no more bytes per second than the cap went through.
CAP=100000
relay rate --seed 1 --rate-ab "$CAP" --source 127.0.0.11:"$PS" 127.0.0.10:"$PR" 127.0.0.3:"$PB"
t0=$(date +%s%N)
rows a rate 100 1000 127.0.0.10 "$PR"
delivered a b rate "$F" "$L" 30 127.0.0.11
took=$(ms_since "$t0")
unrelay rate
accounted rate
assert_eq "$(relay_stat rate '.ab.received')" "$(sent_by_a "$F" "$L")" "rate: the relay saw every datagram a sent"
# Every datagram is the same size: the bytes after the first one left between the
# first forwarding and the last. A send is never early, and at most late_us late
# (the first one may have been): the cap holds over span + late_us.
relay_stat rate ".ab | [.bytes, .forwarded, .last_us - .first_us, .late_us] | @tsv" > "$T/rate"
read -r bytes fwd span late < "$T/rate"
size=$((bytes / fwd)) seen=$(( (bytes - bytes / fwd) * 1000000 / (span + late) ))
if [ "$size" -lt 1000 ] || [ "$size" -gt 1400 ]; then fail "rate: datagrams of $size bytes, not about 1 KB"; fi
[ "$seen" -le "$CAP" ] || fail "rate: $seen bytes/s went through a cap of $CAP"
[ "$span" -ge 900000 ] || fail "rate: $bytes bytes in $span us: the cap did not slow them"
[ "$seen" -ge $((CAP * 80 / 100)) ] || fail "rate: only $seen bytes/s: the cap was not what limited them"
note "rate: 100 rows in ${took} ms, $bytes bytes in $fwd datagrams over $((span / 1000)) ms (sends up to $late us late) = $seen bytes/s (cap $CAP)"

# 5. IPv6: the relay listens on [::1] (a reaches it from its IPv6 socket beside the
# IPv4 one) and sends on to b over IPv4, from 127.0.0.1, losing 10% each way.
relay six --seed 3 --loss 10 "[::1]:$PR6" 127.0.0.3:"$PB"
rows a six 20 10 ::1 "$PR6"
delivered a b six "$F" "$L" 30 127.0.0.1
unrelay six
accounted six
assert_eq "$(relay_stat six '.ab.received')" "$(sent_by_a "$F" "$L")" "six: the relay saw every datagram a sent"
note "six: 20 rows over [::1] -> 127.0.0.3, $(relay_stat six '"lost ab \(.ab.dropped_loss)/\(.ab.received), ba \(.ba.dropped_loss)/\(.ba.received)"')"
stop a; stop b
