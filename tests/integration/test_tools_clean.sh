# sg-clean against rows of every state and age (updated_at set with SQL): the
# default terminal states, --include-unread, --all-states, --state, the table
# options, ages in every unit, --before with Z, offsets and local time, the
# report, the prompt (only y/yes deletes), --dry-run, --no-vacuum, a running
# daemon, a busy database, every bad argument, and rows whose updated_at is
# not a timestamp (kept, and counted in a warning for every selection).
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

clean() { "$SG_BIN/sg-clean" "$@"; }

# fails_with TEXT CMD...: exit 1, one stderr line "ERROR: ...TEXT...", nothing on
# stdout, nothing deleted.
fails_with() {
    want=$1
    shift
    before=$(total)
    expect_error "$want" "$@"
    assert_eq "$(total)" "$before" "$*: rows after a failure"
}

total() { q a "SELECT (SELECT count(*) FROM outbound_messages) + (SELECT count(*) FROM inbound_messages)"; }
NOW="strftime('%Y-%m-%dT%H:%M:%f','now'"

# fill: empties both tables, then one row per table, state, read count and age:
# old = updated 10 days ago, new = 1 hour ago. Each payload carries its tag.
fill() {
    sql="DELETE FROM outbound_messages; DELETE FROM inbound_messages;"
    for age in old new; do
        mod="-10 days"
        [ "$age" = new ] && mod="-1 hours"
        for s in pending sending sent acknowledged send_failed; do
            sql="$sql INSERT INTO outbound_messages (dst_addr, dst_port, payload, state, updated_at)
                 VALUES ('127.0.0.1', 9, '{\"tag\":\"o-$s-$age\"}', '$s', $NOW, '$mod'));"
        done
        for s in received ack_sent ack_failed; do
            for r in 0 1; do
                sql="$sql INSERT INTO inbound_messages (message_id, src_addr, src_port, payload,
                     crypto_timestamp, state, read_count, updated_at)
                     VALUES (lower(hex(randomblob(12))), '10.0.0.1', 9, '{\"tag\":\"i-$s-r$r-$age\"}',
                     '2025', '$s', $r, $NOW, '$mod'));"
            done
        done
    done
    q a "$sql"
    tags > "$T/all"
}
tags() {
    q a "SELECT json_extract(payload, '\$.tag') FROM outbound_messages
         UNION ALL SELECT json_extract(payload, '\$.tag') FROM inbound_messages" | LC_ALL=C sort
}
# deleted: the tags deleted since fill, sorted, on one line.
deleted() {
    tags > "$T/now"
    LC_ALL=C comm -23 "$T/all" "$T/now" | paste -sd' ' -
}
sorted() { printf '%s\n' "$@" | LC_ALL=C sort | paste -sd' ' -; }

P=$(freeport)
mkpeer a "$P"
start a
stop a
cd "$T/a"

# ---- the report and --dry-run ----
fill
out=$(clean 7d --dry-run)
cut=$(printf '%s\n' "$out" | sed -n 's/^Cutoff: \(.*\) UTC (rows last updated before it)$/\1/p')
[ -n "$cut" ] || fail "no cutoff line in: $out"
assert_eq "$(q a "SELECT abs(julianday('$cut') - julianday('now', '-7 days')) * 86400 < 5")" 1 "cutoff is 7 days ago in UTC ($cut)"
expected="outbound_messages (acknowledged, send_failed): 2 rows
  acknowledged: 1
  send_failed: 1
inbound_messages (ack_sent, ack_failed; read only): 2 rows
  ack_failed: 1
  ack_sent: 1
Dry run: nothing deleted."
assert_eq "$(printf '%s\n' "$out" | sed 1d)" "$expected" "the report"
assert_eq "$(deleted)" "" "--dry-run deletes nothing"
clean --dry-run -y 7d > /dev/null
assert_eq "$(deleted)" "" "--dry-run -y deletes nothing"
note "report: cutoff in UTC, each table with its states; --dry-run deletes nothing"

# ---- the prompt: only y, Y or yes (any case) deletes ----
for answer in n no N "" " " "yes please" "ye" "y y" "1"; do
    rc=0
    printf '%s\n' "$answer" | clean 7d > "$T/out" 2> "$T/err" || rc=$?
    assert_eq "$rc" 0 "answer '$answer': exit status"
    assert_eq "$(cat "$T/err")" "Delete 4 rows? [y/N] " "the prompt on stderr"
    assert_eq "$(tail -n 1 "$T/out")" "Nothing deleted." "answer '$answer' refused"
    assert_eq "$(deleted)" "" "answer '$answer' deleted rows"
done
rc=0
clean 7d < /dev/null > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc|$(tail -n 1 "$T/out")" "0|Nothing deleted." "no answer at all (end of input)"
DEFAULT="i-ack_failed-r1-old i-ack_sent-r1-old o-acknowledged-old o-send_failed-old"
for answer in y Y yes YES " Yes "; do
    fill
    printf '%s\n' "$answer" | clean 7d > "$T/out" 2> "$T/err"
    assert_eq "$(deleted)" "$DEFAULT" "answer '$answer' deletes the old finished rows"
    grep -qx "Deleted 4 rows (outbound_messages: 2, inbound_messages: 2)." "$T/out" || fail "no 'Deleted' line: $(cat "$T/out")"
    grep -qx "Vacuumed the database." "$T/out" || fail "no VACUUM line: $(cat "$T/out")"
done
rc=0
out=$(clean -y 7d 2> "$T/err") || rc=$?
assert_eq "$rc|$(printf '%s\n' "$out" | tail -n 1)" "0|Nothing to delete." "nothing left: exit 0"
[ ! -s "$T/err" ] || fail "-y still asked: $(cat "$T/err")"
note "the prompt refuses n, empty, end of input and anything else; y, Y, yes delete"

# ---- which rows: default, --include-unread, --all-states, --state, tables ----
fill
clean --yes 7d > /dev/null
assert_eq "$(deleted)" "$DEFAULT" "default: old finished rows, inbound only once read"
fill
clean -y --include-unread 7d > /dev/null
assert_eq "$(deleted)" "$(sorted $DEFAULT i-ack_sent-r0-old i-ack_failed-r0-old)" "--include-unread"
fill
clean -y --all-states 7d > "$T/out"
assert_eq "$(deleted)" "$(sorted o-pending-old o-sending-old o-sent-old o-acknowledged-old o-send_failed-old i-received-r1-old i-ack_sent-r1-old i-ack_failed-r1-old)" "--all-states"
grep -qF "outbound_messages (any state): 5 rows" "$T/out" || fail "--all-states report: $(cat "$T/out")"
fill
clean -y --all-states --include-unread 7d > /dev/null
assert_eq "$(deleted)" "$(grep -- '-old$' "$T/all" | paste -sd' ' -)" "--all-states --include-unread: every old row"
assert_eq "$(tags | grep -c -- '-new$')" 11 "no new row deleted"
fill
clean -y -s acknowledged 7d > "$T/out"
assert_eq "$(deleted)" "o-acknowledged-old" "-s acknowledged"
grep -q "^inbound_messages" "$T/out" && fail "-s acknowledged reported the inbound table"
fill
clean -y --state ack_failed --include-unread 7d > /dev/null
assert_eq "$(deleted)" "i-ack_failed-r0-old i-ack_failed-r1-old" "--state ack_failed --include-unread"
fill
clean -y -s sent --all-states 7d > /dev/null
assert_eq "$(deleted)" "o-sent-old" "-s sent --all-states"
fill
clean -y -s received --all-states --include-unread 7d > /dev/null
assert_eq "$(deleted)" "i-received-r0-old i-received-r1-old" "-s received --all-states --include-unread"
fill
clean -y --outbound-only 7d > "$T/out"
assert_eq "$(deleted)" "o-acknowledged-old o-send_failed-old" "--outbound-only"
grep -q "^inbound_messages" "$T/out" && fail "--outbound-only reported the inbound table"
fill
clean -y --inbound-only 7d > "$T/out"
assert_eq "$(deleted)" "i-ack_failed-r1-old i-ack_sent-r1-old" "--inbound-only"
grep -q "^outbound_messages" "$T/out" && fail "--inbound-only reported the outbound table"
fill
clean -y --inbound-only --all-states -s pending 7d > /dev/null 2>&1 && fail "-s pending with --inbound-only accepted"
assert_eq "$(deleted)" "" "refused: nothing deleted"
note "default, --include-unread, --all-states, -s/--state, --outbound-only, --inbound-only"

# ---- ages in every unit ----
fill
for age in 2h 120m 7200s 1d 1w 9d; do
    clean -y "$age" > /dev/null
    assert_eq "$(deleted)" "$DEFAULT" "age $age"
    fill
done
clean -y 30m > /dev/null
assert_eq "$(deleted)" "$(sorted $DEFAULT o-acknowledged-new o-send_failed-new i-ack_sent-r1-new i-ack_failed-r1-new)" "age 30m takes the new rows too"
fill
clean -y 2w > /dev/null
assert_eq "$(deleted)" "" "age 2w: nothing that old"
clean -y 11d > /dev/null
assert_eq "$(deleted)" "" "age 11d: nothing that old"
note "ages in s, m, h, d and w"

# ---- --before: ISO 8601 with Z, offsets and local time, to the millisecond ----
q a "DELETE FROM outbound_messages; DELETE FROM inbound_messages;
     INSERT INTO outbound_messages (dst_addr, dst_port, payload, state, updated_at) VALUES
       ('127.0.0.1', 9, '{\"tag\":\"b1\"}', 'acknowledged', '2024-06-01T11:59:59.999'),
       ('127.0.0.1', 9, '{\"tag\":\"b2\"}', 'acknowledged', '2024-06-01T12:00:00.000'),
       ('127.0.0.1', 9, '{\"tag\":\"b3\"}', 'send_failed', '2024-06-01T12:00:00.001')"
tags > "$T/all"
# before DATETIME [ENV...]: prints "<cutoff>|<rows>" from a dry run.
before() {
    b=$1
    shift
    out=$(env "$@" "$SG_BIN/sg-clean" --dry-run --before "$b")
    c=$(printf '%s\n' "$out" | sed -n 's/^Cutoff: \(.*\) UTC.*/\1/p')
    n=$(printf '%s\n' "$out" | sed -n 's/^outbound_messages.*: \([0-9]*\) rows*$/\1/p')
    echo "$c|$n"
}
assert_eq "$(before 2024-06-01T12:00:00Z)" "2024-06-01T12:00:00.000|1" "--before with Z"
assert_eq "$(before 2024-06-01T12:00:00.000z)" "2024-06-01T12:00:00.000|1" "--before with z and a fraction"
assert_eq "$(before 2024-06-01T14:00:00+02:00)" "2024-06-01T12:00:00.000|1" "--before +02:00"
assert_eq "$(before 2024-06-01T07:00-05:00)" "2024-06-01T12:00:00.000|1" "--before -05:00, no seconds"
assert_eq "$(before 2024-06-01T17:30:00+0530)" "2024-06-01T12:00:00.000|1" "--before +0530"
assert_eq "$(before '2024-06-01 12:00:00.001Z')" "2024-06-01T12:00:00.001|2" "--before with a space and milliseconds"
assert_eq "$(before 2024-06-01T12:00:00.0015Z)" "2024-06-01T12:00:00.002|3" "--before below a millisecond rounds up"
assert_eq "$(before 2024-06-01T15:00:00 TZ=XXX-3)" "2024-06-01T12:00:00.000|1" "--before local time (UTC+3)"
assert_eq "$(before 2024-06-01T08:00 TZ=EST5EDT,M3.2.0,M11.1.0)" "2024-06-01T12:00:00.000|1" "--before local time (EDT)"
assert_eq "$(before 2024-06-01T12:00:00 TZ=UTC0)" "2024-06-01T12:00:00.000|1" "--before local time (UTC)"
assert_eq "$(before 2024-06-02 TZ=UTC0)" "2024-06-02T00:00:00.000|3" "--before a date: local midnight"
assert_eq "$(before 2024-06-01 TZ=UTC0)" "2024-06-01T00:00:00.000|0" "--before a date, nothing older"
clean -y --before 2024-06-01T12:00:00Z > /dev/null
assert_eq "$(deleted)" "b1" "--before deletes only what is older"
note "--before: Z, offsets, local time (TZ), dates; compared in UTC to the millisecond"

# ---- VACUUM and --no-vacuum ----
bulk() {
    q a "WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 300)
         INSERT INTO outbound_messages (dst_addr, dst_port, payload, state, updated_at)
         SELECT '127.0.0.1', 9, '{\"pad\":\"' || hex(randomblob(2000)) || '\"}', 'acknowledged',
                $NOW, '-30 days') FROM c"
}
bulk
clean -y --no-vacuum 7d > "$T/out"
grep -q "Vacuumed" "$T/out" && fail "--no-vacuum still vacuumed"
[ "$(q a "PRAGMA freelist_count")" -gt 100 ] || fail "no free pages after deleting without VACUUM"
bulk
clean -y 7d > "$T/out"
grep -qx "Vacuumed the database." "$T/out" || fail "no VACUUM: $(cat "$T/out")"
assert_eq "$(q a "PRAGMA freelist_count")" 0 "free pages after VACUUM"
note "VACUUM after deleting (free pages 0); --no-vacuum leaves the free pages"

# ---- while the daemon runs ----
start a
fill
clean -y 7d > /dev/null
assert_eq "$(deleted)" "$DEFAULT" "deleting while the daemon runs"
status a || fail "the daemon stopped"
"$SG_BIN/sg-send" -q --wait=10 127.0.0.1 "$P" '{"still":"working"}' || fail "the daemon no longer delivers after sg-clean"
stop a
note "works while the daemon runs; the daemon keeps delivering"

# ---- errors ----
fill
fails_with "give an AGE" clean
fails_with "give an AGE" clean -y
fails_with "not both" clean 7d --before 2024-01-01
fails_with "AGE '7' is not N followed by s, m, h, d or w" clean 7
fails_with "AGE '7x'" clean 7x
fails_with "AGE '7D'" clean 7D
fails_with "AGE '1.5d'" clean 1.5d
fails_with "unknown option '-7'" clean -7d
fails_with "AGE ''" clean ''
fails_with "--before: '2024-13-01' is not an ISO 8601" clean --before 2024-13-01
fails_with "--before: 'yesterday'" clean --before yesterday
fails_with "--before: '2024-06-01T12:00:00+25:00'" clean --before 2024-06-01T12:00:00+25:00
fails_with "--before: '2024-02-30'" clean --before 2024-02-30
fails_with "outside the years" clean 200000w
fails_with "--outbound-only and --inbound-only cannot be used together" clean --outbound-only --inbound-only 7d
fails_with "--state: 'bogus' is not a state" clean -s bogus 7d
fails_with "--state: 'sent' is an active state" clean -s sent 7d
fails_with "add --all-states" clean --state received 7d
fails_with "--state: 'ack_sent' is an inbound state; it cannot be used with --outbound-only" clean -s ack_sent --outbound-only 7d
fails_with "--state: 'acknowledged' is an outbound state; it cannot be used with --inbound-only" clean -s acknowledged --inbound-only 7d
fails_with "unexpected argument '8d'" clean 7d 8d
fails_with "unknown option '--bogus'" clean --bogus 7d
fails_with "option '--before' needs a value" clean --before
fails_with "option '-s' needs a value" clean 7d -s
rc=0
clean --db "$T/missing.db" 7d > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc|$(wc -l < "$T/err")" "1|2" "missing database: exit 1, two lines"
assert_eq "$(sed -n 1p "$T/err")" "ERROR: database not found: $T/missing.db" "missing database line"
assert_eq "$(SECUREDGRAM_DB="$T/a/securedgram.db" "$SG_BIN/sg-clean" --dry-run 7d | tail -n 1)" "Dry run: nothing deleted." "SECUREDGRAM_DB"
(cd "$T" && "$SG_BIN/sg-clean" --db a/securedgram.db --dry-run 7d > /dev/null) || fail "--db with a relative path"
assert_eq "$(clean -V)" "sg-clean $(sed -n 's/.*SG_VERSION "\(.*\)"/\1/p' "$HERE/../../src/version.h")" "-V"
help=$(clean --help)
for opt in AGE --before --yes --dry-run --no-vacuum --outbound-only --inbound-only \
           --include-unread --state --all-states --db --version --help -y -s -V -h; do
    printf '%s\n' "$help" | grep -qF -- "$opt" || fail "--help does not mention $opt"
done
assert_eq "$(deleted)" "" "no error deleted anything"
note "bad ages, dates, states and combinations are one ERROR line and delete nothing"

# ---- a busy database: the report, then a clear error, nothing deleted ----
printf 'BEGIN IMMEDIATE;\nUPDATE outbound_messages SET retry_count = 1 WHERE 0;\n.shell touch %s/locked; sleep 7\nCOMMIT;\n' "$T" |
    sqlite3 securedgram.db > /dev/null &
LOCKER=$!
wait_for 5 "the lock is held" test -e "$T/locked"
t0=$(date +%s%N)
rc=0
clean -y 7d > "$T/out" 2> "$T/err" || rc=$?
el=$(( ($(date +%s%N) - t0) / 1000000 ))
assert_eq "$rc|$(wc -l < "$T/err")" "1|1" "busy: exit 1, one line"
grep -q "^ERROR: database is busy.*nothing deleted" "$T/err" || fail "busy error: $(cat "$T/err")"
[ "$el" -ge 4500 ] || fail "gave up on a busy database after only $el ms"
wait "$LOCKER"
assert_eq "$(deleted)" "" "busy: nothing deleted"
note "a busy database: 'database is busy' after ${el} ms, nothing deleted"

# ---- an updated_at that is not a timestamp: kept, and counted on stderr ----
# garbage: fill, then rows whose updated_at is no timestamp (tag g-...), in
# finished and active states, read and unread; and one old timestamp stored as
# a BLOB, which is readable (and so deleted as old).
garbage() {
    fill
    q a "INSERT INTO outbound_messages (dst_addr, dst_port, payload, state, updated_at) VALUES
           ('127.0.0.1', 9, '{\"tag\":\"g-o-ack-text\"}', 'acknowledged', 'garbage'),
           ('127.0.0.1', 9, '{\"tag\":\"g-o-ack-number\"}', 'acknowledged', 12345),
           ('127.0.0.1', 9, '{\"tag\":\"g-o-failed-now\"}', 'send_failed', 'now'),
           ('127.0.0.1', 9, '{\"tag\":\"g-o-pending\"}', 'pending', 'xyz'),
           ('127.0.0.1', 9, '{\"tag\":\"o-blob-old\"}', 'acknowledged', CAST('2020-01-01T00:00:00.000' AS BLOB));
         INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp, state, read_count, updated_at)
         SELECT lower(hex(randomblob(12))), '10.0.0.1', 9, '{\"tag\":\"' || t || '\"}', '2025', s, r, u FROM (
           SELECT 'g-i-sent-empty' AS t, 'ack_sent' AS s, 1 AS r, '' AS u
           UNION ALL SELECT 'g-i-failed-month', 'ack_failed', 1, '2024-13-45'
           UNION ALL SELECT 'g-i-sent-unread', 'ack_sent', 0, 'bad'
           UNION ALL SELECT 'g-i-received', 'received', 1, CAST('yesterday' AS BLOB))"
    tags > "$T/all"
}
WARN_TAIL="an updated_at that is not a timestamp;"
# warned N ARGS...: sg-clean ARGS (with -y unless --dry-run) warns of N such rows in one stderr line.
warned() {
    n=$1
    shift
    rc=0
    clean "$@" > "$T/out" 2> "$T/err" < /dev/null || rc=$?
    assert_eq "$rc" 0 "sg-clean $*: exit status"
    if [ "$n" = 0 ]; then
        [ ! -s "$T/err" ] || fail "sg-clean $*: unexpected stderr: $(cat "$T/err")"
    elif [ "$n" = 1 ]; then
        assert_eq "$(cat "$T/err")" "WARNING: 1 row has $WARN_TAIL it is kept (see sg-clean(1))" "sg-clean $*: the warning"
    else
        assert_eq "$(cat "$T/err")" "WARNING: $n rows have $WARN_TAIL they are kept (see sg-clean(1))" "sg-clean $*: the warning"
    fi
    grep -q WARNING "$T/out" && fail "sg-clean $*: the warning is on stdout"
    return 0
}
garbage
warned 5 --dry-run 7d
# The report on stdout is what it would be without those rows (plus the readable BLOB).
expected="outbound_messages (acknowledged, send_failed): 3 rows
  acknowledged: 2
  send_failed: 1
inbound_messages (ack_sent, ack_failed; read only): 2 rows
  ack_failed: 1
  ack_sent: 1
Dry run: nothing deleted."
assert_eq "$(sed 1d "$T/out")" "$expected" "the report leaves the unreadable rows out"
assert_eq "$(deleted)" "" "--dry-run deleted nothing"
for sel in "5|" "3|--outbound-only" "2|--inbound-only" "2|-s acknowledged" "1|-s send_failed" \
           "1|-s ack_failed" "7|--all-states" "6|--include-unread" "8|--all-states --include-unread" \
           "1|-s pending --all-states" "1|-s received --all-states"; do
    n=${sel%%|*}
    opts=${sel#*|}
    warned "$n" --dry-run $opts 7d
    # A real run warns the same, deletes the old readable rows, and keeps every unreadable one.
    warned "$n" -y $opts 7d
    deleted | tr ' ' '\n' | grep -q '^g-' && fail "sg-clean -y $opts deleted a row whose updated_at is not a timestamp: $(deleted)"
    garbage
done
warned 5 -y 7d
assert_eq "$(deleted)" "$(sorted $DEFAULT o-blob-old)" "a real run deletes the old rows, a readable BLOB timestamp too"
assert_eq "$(tags | grep -c '^g-')" 8 "every unreadable row is kept"
warned 5 -y 1s
warned 5 -y --before 9999-12-31T23:59:59Z
assert_eq "$(tags | grep -c '^g-')" 8 "kept whatever the cutoff"
printf 'n\n' | clean 7d > "$T/out" 2> "$T/err"
assert_eq "$(sed -n 1p "$T/err")" "WARNING: 5 rows have $WARN_TAIL they are kept (see sg-clean(1))" "the warning comes before the prompt"
fill
warned 0 -y 7d
note "updated_at not a timestamp ('garbage', '', 'now', 12345, 2024-13-45, a BLOB): kept whatever the cutoff, one WARNING line on stderr with the count for every table and state selection, dry run or not"
