# Faults of the disk and the database file: disk full, read-only, damaged,
# removed while running. No message is acknowledged that was not stored, and
# a database that cannot be used is refused at start with one clear line.
. "$(dirname "$0")/lib.sh"

P=$(freeport)
mkpeer f "$P"
cd "$T/f"
msg_acked() { sgtest peer 127.0.0.1 "$P" "$SECRET" "$@" >/dev/null 2>&1; }

# Disk full: the database on a small tmpfs, filled up while the daemon runs.
if mkdir -p "$T/small" && mount -t tmpfs -o size=512k tmpfs "$T/small" 2>/dev/null; then
    trap 'umount "$T/small" 2>/dev/null; cleanup' EXIT
    sg --db "$T/small/f.db" start
    ID=$(newid)
    msg_acked "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" || fail "no ACK before the disk filled"
    dd if=/dev/zero of="$T/small/filler" bs=4k 2>/dev/null || true
    full_since=$(date +%s)
    BIG=$(newid)
    # Retransmitted like a real sender: every try must go unanswered while the disk is full.
    for try in 1 2 3; do
        sgtest peer 127.0.0.1 "$P" "$SECRET" "big:30000:$BIG" silence:700 >/dev/null ||
            fail "ACK for a message that could not be stored (disk full, try $try)"
    done
    # A burst while full: each message fails its transaction, the log must not say so 100 times.
    STEPS=""
    for i in $(seq 1 100); do STEPS="$STEPS big:30000:$(printf '%024x' "$i")"; done
    # shellcheck disable=SC2086
    sgtest peer 127.0.0.1 "$P" "$SECRET" $STEPS silence:500 >/dev/null || fail "an ACK while the disk was full"
    status f || fail "the daemon died when the disk filled"
    grep -q "database or disk is full" daemon.log || fail "the cause is not logged"
    # at most 3 warning lines a second (plus a summary line a second)
    allowed=$(( 4 * ($(date +%s) - full_since + 1) ))
    [ "$(grep -c "database or disk is full" daemon.log)" -le "$allowed" ] || fail "disk-full warnings not rate-limited"
    rm -f "$T/small/filler"
    sgtest peer 127.0.0.1 "$P" "$SECRET" "big:30000:$BIG" "ack:$BIG:3000" >/dev/null ||
        fail "no ACK once space returned"
    assert_eq "$(sqlite3 "$T/small/f.db" "SELECT count(*) FROM inbound_messages WHERE message_id='$BIG'")" 1 "stored once after the disk-full"
    sg stop >/dev/null
    umount "$T/small"
    trap cleanup EXIT
    note "disk full: nothing ACKed while full, cause logged, stored and ACKed once space returned"
else
    note "SKIPPED disk full: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)"
fi

# Damaged at start: one clear line, non-zero exit, nothing started.
sg --db dmg.db start
for i in $(seq 1 300); do
    sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$(printf '%024x' "$i")\",\"pad\":\"$(printf '%0200d' 0)\"}" >/dev/null
done
all_stored() { [ "$(sqlite3 -cmd ".timeout 5000" dmg.db "SELECT count(*) FROM inbound_messages")" = 300 ]; }
wait_for 10 "300 rows stored" all_stored
sg stop >/dev/null
rows=$(sqlite3 dmg.db "SELECT count(*) FROM inbound_messages")
[ "$rows" -gt 100 ] || fail "only $rows rows to damage"
dd if=/dev/urandom of=dmg.db bs=4096 seek=3 count=4 conv=notrunc 2>/dev/null
rc=0; sg --db dmg.db start 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "started on a damaged database"
grep -q "ERROR: .*database .*dmg.db is damaged\|ERROR: cannot use database .*dmg.db" "$T/err" || fail "damage message: $(cat "$T/err")"
[ "$(wc -l < "$T/err")" -eq 1 ] || fail "more than one error line"
[ ! -e securedgram.pid ] || fail "pid file left by a refused start"
note "a damaged database is refused at start: $(cut -c1-90 "$T/err")"

# Read-only for the service user: refused at start.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -p "$T/ro" && chmod 777 "$T/ro" && chmod 711 "$T"
    sg --db "$T/ro/ro.db" start && sg stop >/dev/null # created by root, mode 600
    chmod 644 "$T/ro/ro.db"
    sg -u nobody --db "$T/ro/ro.db" -P "$T/ro/p.pid" start 2>"$T/err" && fail "started on a read-only database"
    grep -q "read-only for this user\|cannot open database\|unable to open" "$T/err" || fail "read-only message: $(cat "$T/err")"
    note "a read-only database is refused: $(cut -c1-90 "$T/err")"
fi

# Removed while running: the daemon stops rather than ACK into a deleted file.
sg --db gone.db start
PID=$(cat securedgram.pid)
ID=$(newid)
msg_acked "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" || fail "no ACK before removal"
rm -f gone.db
gone() { ! alive "$PID"; }
wait_for 5 "the daemon to stop after its database was removed" gone
grep -q "removed or replaced while running" daemon.log || fail "removal not logged"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" silence:300 >/dev/null || fail "ACK after the database was removed"
note "database removed while running: logged, daemon stopped, nothing more ACKed"
