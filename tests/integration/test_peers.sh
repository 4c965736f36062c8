# Per-peer keys with real daemons on 127.0.0.2-5, each address a host: alpha, bravo
# and charlie with a pair key each (written in the peers files, not derived, so that
# no host holds another pair's key), and delta on the shared secret alone.
#   - alpha and bravo exchange messages on wire 2; rows name a peer or an address;
#     each inbound row records its peer;
#   - delta, on the shared secret, still exchanges messages with alpha (the original's
#     path), and its rows record no peer, though a roaming peer of alpha's is allowed
#     everywhere: a row addressed to delta is sealed with the shared secret;
#   - a datagram alpha sealed for bravo, sent back to alpha from bravo's address, is
#     dropped unopened (unknown_key, no trial open);
#   - charlie, bound where bravo should be, cannot open alpha's datagrams for bravo;
#     the retransmission reaches bravo once it is back;
#   - charlie calling itself bravo cannot make alpha take a message as bravo's;
#   - charlie outside its allowed is dropped and counted (not_allowed), and delivered
#     once a reload (HUP) widens its allowed, without disturbing the others.
. "$(dirname "$0")/lib.sh"

PA=$(freeport); PB=$(freeport); PC=$(freeport); PD=$(freeport)
KAB=$(sg keygen); KAC=$(sg keygen); KBC=$(sg keygen)

# host NAME ADDR PORT: a daemon directory on ADDR, its own name, no shared secret.
host() {
    mkpeer "$1" "$3" "" "$2"
    sed -i '/^SECUREDGRAM_SECRET=/d' "$T/$1/.env"
    { echo "SECUREDGRAM_PEERS=$T/$1/peers"; echo "SECUREDGRAM_NAME=$1"; } >> "$T/$1/.env"
}
host alpha 127.0.0.2 "$PA"; host bravo 127.0.0.3 "$PB"; host charlie 127.0.0.4 "$PC"
echo "SECUREDGRAM_SECRET=$SECRET" >> "$T/alpha/.env" # alpha also serves the shared secret
for h in alpha bravo charlie; do echo "SECUREDGRAM_MAX_RETRIES=100" >> "$T/$h/.env"; done
mkpeer delta "$PD" "$SECRET" 127.0.0.5

cat > "$T/alpha/peers" <<EOF
[peer bravo]
endpoint = 127.0.0.3:$PB
key = $KAB

[peer charlie]
endpoint = 127.0.0.4:$PC
allowed = 127.0.0.99      # not where charlie is: it is dropped until the reload below
key = $KAC

[peer laptop]             # everywhere, roaming: it must take no row addressed to delta
allowed = 0.0.0.0/0, ::/0
key = $(sg keygen)
roaming = yes
EOF
cat > "$T/bravo/peers" <<EOF
[peer alpha]
endpoint = 127.0.0.2:$PA
key = $KAB
[peer charlie]
endpoint = 127.0.0.4:$PC
key = $KBC
EOF
cat > "$T/charlie/peers" <<EOF
[peer alpha]
endpoint = 127.0.0.2:$PA
key = $KAC
[peer bravo]
endpoint = 127.0.0.3:$PB
key = $KBC
EOF
chmod 600 "$T"/*/peers

# counter NAME FIELD: the daemon's counter FIELD from a fresh USR1 line.
counter() {
    before=$(grep -c "counters:" "$T/$1/daemon.log" || true)
    kill -USR1 "$(cat "$T/$1/securedgram.pid")"
    tries=$((500 * SLOW))
    while [ "$(grep -c "counters:" "$T/$1/daemon.log" || true)" -le "$before" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no counters line from $1"
        sleep 0.01
    done
    grep "counters:" "$T/$1/daemon.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# above NAME FIELD N: the counter is above N now.
above() { [ "$(counter "$1" "$2")" -gt "$3" ]; }
# to_peer NAME PEER JSON: a row that names a peer instead of an address.
to_peer() {
    q "$1" "INSERT INTO outbound_messages (dst_addr, dst_port, payload, peer) VALUES ('', 0, '$3', '$2'); SELECT last_insert_rowid();"
}
inbound() { q "$1" "SELECT coalesce(peer, '-') || ' ' || src_addr FROM inbound_messages WHERE payload LIKE '%$2%'"; }

start alpha; start bravo; start delta

# Wire 2 both ways: a row naming the peer, and a row naming an address in its allowed.
R1=$(to_peer alpha bravo '{"n":"a-to-b"}')
R2=$(queue bravo "$PA" '{"n":"b-to-a"}' 127.0.0.2)
wait_for 10 "alpha -> bravo" state_is alpha "$R1" acknowledged
wait_for 10 "bravo -> alpha" state_is bravo "$R2" acknowledged
assert_eq "$(inbound bravo a-to-b)" "alpha 127.0.0.2" "bravo's row records alpha"
assert_eq "$(inbound alpha b-to-a)" "bravo 127.0.0.3" "alpha's row records bravo"
note "alpha and bravo exchange messages on wire 2; rows name the peer"

# securedgram peers: the same fingerprint on both hosts, never a key; the daemon's figures.
(cd "$T/alpha" && sg peers) > "$T/peers.alpha" || fail "securedgram peers failed on alpha"
(cd "$T/bravo" && sg peers --json) > "$T/peers.bravo" || fail "securedgram peers --json failed"
fp_a=$(sed -n '/^peer: bravo/,/^$/s/^  fingerprint: //p' "$T/peers.alpha")
fp_b=$(jq -r '.[] | select(.name == "alpha") | .fingerprint' "$T/peers.bravo")
[ "${#fp_a}" -eq 16 ] || fail "no fingerprint for bravo: $(cat "$T/peers.alpha")"
assert_eq "$fp_b" "$fp_a" "the pair's fingerprint on bravo"
grep -q "messages: 1 stored, 0 duplicates, 1 of ours acknowledged" "$T/peers.alpha" ||
    fail "alpha's figures for bravo: $(cat "$T/peers.alpha")"
grep -q "last seen: 20" "$T/peers.alpha" || fail "no last seen: $(cat "$T/peers.alpha")"
jq -e '.[] | select(.name == "alpha") | .stored == 1 and .acknowledged == 1 and .wire == 2 and .running' \
    "$T/peers.bravo" >/dev/null || fail "bravo's JSON for alpha: $(cat "$T/peers.bravo")"
for k in "$KAB" "$KAC" "$KBC"; do
    ! grep -qi "$k" "$T/peers.alpha" "$T/peers.bravo" || fail "securedgram peers shows a key"
done
note "securedgram peers: one fingerprint on both hosts, the daemon's counts, no key shown"

# The shared secret still serves delta (a host not in the file), both ways.
R3=$(queue delta "$PA" '{"n":"d-to-a"}' 127.0.0.2)
R4=$(queue alpha "$PD" '{"n":"a-to-d"}' 127.0.0.5)
wait_for 10 "delta -> alpha" state_is delta "$R3" acknowledged
wait_for 10 "alpha -> delta" state_is alpha "$R4" acknowledged
assert_eq "$(inbound alpha d-to-a)" "- 127.0.0.5" "a shared-secret row records no peer"
note "the shared secret serves a host not in the peers file, beside the peers (and a peer allowed everywhere)"

# Reflection: bravo is down; a stand-in at bravo's address catches alpha's datagram
# for bravo and sends it back to alpha. It does not open there, and costs no trial.
stop bravo
R5=$(to_peer alpha bravo '{"n":"reflected"}')
trials=$(counter alpha trial_opens)
unknown=$(counter alpha unknown_key)
SGTEST_SRC=127.0.0.3 SGTEST_PORT=$PB sgtest peer 127.0.0.2 "$PA" "$SECRET" capture:5000 again \
    > "$T/caught" || fail "the stand-in for bravo got no datagram"
grep -q captured "$T/caught" || fail "nothing captured"
wait_for 5 "the reflection counted" above alpha unknown_key "$unknown"
assert_eq "$(counter alpha trial_opens)" "$trials" "trial opens for a datagram of an unknown key id"
assert_eq "$(q alpha "SELECT count(*) FROM inbound_messages WHERE payload LIKE '%reflected%'")" 0 \
    "the reflection was not stored"
note "a datagram alpha sealed for bravo, sent back to alpha, is dropped unopened"

# charlie takes bravo's address and port: alpha's retransmissions for bravo reach it,
# and it cannot open them.
(cd "$T/charlie" && sg -v -b 127.0.0.3 -p "$PB" start)
wait_for 10 "charlie drops alpha's datagram for bravo" above charlie unknown_key 0
assert_eq "$(q charlie "SELECT count(*) FROM inbound_messages")" 0 "charlie stored alpha's message"
stop charlie
start bravo
wait_for 15 "the retransmission reaches bravo" state_is alpha "$R5" acknowledged
assert_eq "$(inbound bravo reflected)" "alpha 127.0.0.2" "bravo got it from alpha"
note "charlie, at bravo's address, cannot read alpha's datagrams for bravo"

# charlie names itself bravo: its key for alpha is the alpha-charlie key, so nothing
# it seals reads as bravo's at alpha.
unknown=$(counter alpha unknown_key)
sed -n "1,3p" "$T/charlie/peers" > "$T/charlie/peers.impostor" # alpha only
chmod 600 "$T/charlie/peers.impostor"
(cd "$T/charlie" && sg -v --name bravo --peers "$T/charlie/peers.impostor" start)
R6=$(to_peer charlie alpha '{"n":"impostor"}')
wait_for 10 "alpha drops the impostor" above alpha unknown_key "$unknown"
assert_eq "$(q alpha "SELECT count(*) FROM inbound_messages WHERE payload LIKE '%impostor%'")" 0 \
    "alpha took charlie's message as bravo's"
stop charlie
q charlie "DELETE FROM outbound_messages"
note "charlie calling itself bravo cannot pass as bravo"

# charlie as itself, outside the allowed alpha's file gives it: dropped, counted.
start charlie
R7=$(to_peer charlie alpha '{"n":"from-charlie"}')
wait_for 10 "not_allowed counted" above alpha not_allowed 0
assert_eq "$(q alpha "SELECT count(*) FROM inbound_messages WHERE payload LIKE '%from-charlie%'")" 0 \
    "a message from outside charlie's allowed was stored"
# The reload widens charlie's allowed; bravo's state is untouched, and charlie's
# retransmission is stored as charlie's.
sed -i 's/^allowed = 127.0.0.99.*/allowed = 127.0.0.4/' "$T/alpha/peers"
kill -HUP "$(cat "$T/alpha/securedgram.pid")"
wait_for 5 "alpha reloaded" grep -q "configuration reloaded.*3 peers" "$T/alpha/daemon.log"
wait_for 15 "charlie's retransmission stored" state_is charlie "$R7" acknowledged
assert_eq "$(inbound alpha from-charlie)" "charlie 127.0.0.4" "stored as charlie's"
R8=$(to_peer alpha bravo '{"n":"after-reload"}')
wait_for 10 "alpha -> bravo after the reload" state_is alpha "$R8" acknowledged
note "outside allowed: dropped and counted; a HUP that widens it lets it in"

# A broken peers file is refused whole; the running peers stay.
echo "[peer broken" >> "$T/alpha/peers"
kill -HUP "$(cat "$T/alpha/securedgram.pid")"
wait_for 5 "refusal" grep -q "reload refused: $T/alpha/peers line .*; the running configuration is kept" \
    "$T/alpha/daemon.log"
R9=$(to_peer alpha bravo '{"n":"after-refusal"}')
wait_for 10 "alpha -> bravo after the refused reload" state_is alpha "$R9" acknowledged
note "a broken peers file is refused whole on HUP; the peers keep working"
exit 0
