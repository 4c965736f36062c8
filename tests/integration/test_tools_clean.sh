# sg-clean against rows of every state and age (updated_at set with SQL): the
# default terminal states, --include-unread, --all-states (unread inbound rows
# too, as the original), --state, the table options, ages in every unit,
# --before with Z, offsets and local time, the original's report line for
# line, the prompt (only y deletes), --dry-run, --no-vacuum, --json, a running
# daemon, a busy database, every bad argument in the original's words, a file
# that is not a securedgram database (left byte for byte), and rows whose
# updated_at is not a timestamp (kept, and counted in a warning for every
# selection); and --peer NAME (issue 11): only the rows of that peer.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

clean() { "$SG_BIN/sg-clean" "$@"; }
jf() { printf '%s\n' "$1" | jq -r "$2"; }
jc() { printf '%s\n' "$1" | jq -c "$2"; }

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

# ---- the report and --dry-run, line for line as the original prints them ----
fill
out=$(TZ=UTC0 clean 7d --dry-run)
cut=$(printf '%s\n' "$out" | sed -n 's/^Cutoff: \([0-9-]* [0-9:]*\) (messages last updated before this time)$/\1/p')
[ -n "$cut" ] || fail "no cutoff line in: $out"
assert_eq "$(q a "SELECT abs(julianday('$cut') - julianday('now', '-7 days')) * 86400 < 5")" 1 "cutoff is 7 days ago ($cut, TZ=UTC0)"
expected="
  Outbound: 2 rows to delete
    acknowledged: 1
    send_failed: 1
  Inbound: 2 rows to delete
    ack_failed: 1
    ack_sent: 1

(dry run — no rows were deleted)"
assert_eq "$(printf '%s\n' "$out" | sed 1d)" "$(printf '%b' "$expected")" "the report"
assert_eq "$(deleted)" "" "--dry-run deletes nothing"
clean --dry-run -y 7d > /dev/null
assert_eq "$(deleted)" "" "--dry-run -y deletes nothing"
# The cutoff is shown in local time, as the original shows it (and compared in UTC).
cut3=$(TZ=XXX-3 clean 7d --dry-run | sed -n 's/^Cutoff: \(.*\) (messages.*/\1/p')
assert_eq "$(q a "SELECT abs(julianday('$cut3') - julianday('$cut', '+3 hours')) * 86400 < 5")" 1 "cutoff shown in local time (UTC+3: $cut3)"
# States by count, most first; a table with nothing to delete says 0.
q a "UPDATE outbound_messages SET state = 'send_failed' WHERE state IN ('pending', 'sending') AND payload LIKE '%old%'"
out=$(clean --outbound-only 7d --dry-run | sed 1,2d)
assert_eq "$out" "$(printf '  Outbound: 4 rows to delete\n    send_failed: 3\n    acknowledged: 1\n\n(dry run — no rows were deleted)')" "states by count, most first"
out=$(clean --inbound-only 2w --dry-run | sed 1,2d)
assert_eq "$out" "$(printf '  Inbound: 0 rows to delete\n\nNothing to delete.')" "nothing to delete"
note "report: the original's lines (cutoff in local time, each table, states by count); --dry-run deletes nothing"

# ---- the prompt: only y or Y (surrounding spaces trimmed) deletes, as the original ----
fill
for answer in n no N "" " " yes YES " Yes " "yes please" "ye" "y y" "1"; do
    rc=0
    printf '%s\n' "$answer" | clean 7d > "$T/out" 2> "$T/err" || rc=$?
    assert_eq "$rc" 0 "answer '$answer': exit status"
    assert_eq "$(cat "$T/err")" "Delete 4 rows? [y/N] " "the prompt on stderr"
    assert_eq "$(tail -n 1 "$T/out")" "Cancelled." "answer '$answer' refused"
    assert_eq "$(deleted)" "" "answer '$answer' deleted rows"
done
rc=0
clean 7d < /dev/null > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc|$(tail -n 1 "$T/out")" "0|Cancelled." "no answer at all (end of input)"
assert_eq "$(cat "$T/err")" "Delete 4 rows? [y/N] " "the prompt alone on stderr at the end of input"
DEFAULT="i-ack_failed-r1-old i-ack_sent-r1-old o-acknowledged-old o-send_failed-old"
AFTER="  Outbound: 2 rows deleted
  Inbound: 2 rows deleted

Total: 4 rows deleted.
Running VACUUM to reclaim disk space...
VACUUM complete."
for answer in y Y "  y  " "$(printf 'y\r')"; do
    fill
    printf '%s\n' "$answer" | clean 7d > "$T/out" 2> "$T/err"
    assert_eq "$(deleted)" "$DEFAULT" "answer '$answer' deletes the old finished rows"
    assert_eq "$(sed 1,9d "$T/out")" "$AFTER" "answer '$answer': the lines after the report"
done
rc=0
out=$(clean -y 7d 2> "$T/err") || rc=$?
assert_eq "$rc|$(printf '%s\n' "$out" | tail -n 1)" "0|Nothing to delete." "nothing left: exit 0"
[ ! -s "$T/err" ] || fail "-y still asked: $(cat "$T/err")"
# Only tables with rows to delete get a "rows deleted" line (as the original).
fill
assert_eq "$(clean -y -s acknowledged 7d | sed 1,6d)" "$(printf '  Outbound: 1 rows deleted\n\nTotal: 1 rows deleted.\nRunning VACUUM to reclaim disk space...\nVACUUM complete.')" "one table deleted from"
note "the prompt refuses n, yes, empty, end of input and anything else (Cancelled.); y, Y delete"

# ---- which rows: default, --include-unread, --all-states, --state, tables ----
fill
clean --yes 7d > /dev/null
assert_eq "$(deleted)" "$DEFAULT" "default: old finished rows, inbound only once read"
fill
clean -y --include-unread 7d > /dev/null
assert_eq "$(deleted)" "$(sorted $DEFAULT i-ack_sent-r0-old i-ack_failed-r0-old)" "--include-unread"
fill
clean -y --all-states 7d > "$T/out"
assert_eq "$(deleted)" "$(grep -- '-old$' "$T/all" | paste -sd' ' -)" "--all-states: every old row, unread inbound ones too (as the original)"
grep -qxF "  Outbound: 5 rows to delete" "$T/out" || fail "--all-states report: $(cat "$T/out")"
grep -qxF "  Inbound: 6 rows to delete" "$T/out" || fail "--all-states report: $(cat "$T/out")"
fill
clean -y --all-states --include-unread 7d > /dev/null
assert_eq "$(deleted)" "$(grep -- '-old$' "$T/all" | paste -sd' ' -)" "--all-states --include-unread: every old row"
assert_eq "$(tags | grep -c -- '-new$')" 11 "no new row deleted"
fill
clean -y -s acknowledged 7d > "$T/out"
assert_eq "$(deleted)" "o-acknowledged-old" "-s acknowledged"
grep -qxF "  Inbound: 0 rows to delete" "$T/out" || fail "-s acknowledged: the inbound table not reported as 0: $(cat "$T/out")"
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
clean -y -s ack_sent --all-states 7d > /dev/null
assert_eq "$(deleted)" "i-ack_sent-r0-old i-ack_sent-r1-old" "-s ack_sent --all-states: read or not"
fill
clean -y --outbound-only 7d > "$T/out"
assert_eq "$(deleted)" "o-acknowledged-old o-send_failed-old" "--outbound-only"
grep -q "Inbound:" "$T/out" && fail "--outbound-only reported the inbound table"
fill
clean -y --inbound-only 7d > "$T/out"
assert_eq "$(deleted)" "i-ack_failed-r1-old i-ack_sent-r1-old" "--inbound-only"
grep -q "Outbound:" "$T/out" && fail "--inbound-only reported the outbound table"
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
# As the original, AGE may be a datetime and --before an age.
clean -y "$(date -u -d '-9 days' +%Y-%m-%dT%H:%M:%SZ)" > /dev/null
assert_eq "$(deleted)" "$DEFAULT" "a datetime as AGE"
fill
clean -y --before 9d > /dev/null
assert_eq "$(deleted)" "$DEFAULT" "an age as --before"
fill
note "ages in s, m, h, d and w; a datetime as AGE and an age as --before"

# ---- --before: ISO 8601 with Z, offsets and local time, to the millisecond ----
q a "DELETE FROM outbound_messages; DELETE FROM inbound_messages;
     INSERT INTO outbound_messages (dst_addr, dst_port, payload, state, updated_at) VALUES
       ('127.0.0.1', 9, '{\"tag\":\"b1\"}', 'acknowledged', '2024-06-01T11:59:59.999'),
       ('127.0.0.1', 9, '{\"tag\":\"b2\"}', 'acknowledged', '2024-06-01T12:00:00.000'),
       ('127.0.0.1', 9, '{\"tag\":\"b3\"}', 'send_failed', '2024-06-01T12:00:00.001')"
tags > "$T/all"
# before DATETIME [ENV...]: prints "<cutoff in UTC>|<rows>" from a dry run (--json).
before() {
    b=$1
    shift
    env "$@" "$SG_BIN/sg-clean" --dry-run --json --before "$b" | jq -r '.cutoff + "|" + (.outbound.to_delete | tostring)'
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
assert_eq "$(TZ=XXX-3 clean --dry-run --before 2024-06-01T12:00:00Z | head -n 1)" "Cutoff: 2024-06-01 15:00:00 (messages last updated before this time)" "the text report shows the cutoff in local time"
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
grep -q "VACUUM" "$T/out" && fail "--no-vacuum still vacuumed"
assert_eq "$(tail -n 1 "$T/out")" "Total: 302 rows deleted." "--no-vacuum: the report ends with the total (300 + b2, b3)"
[ "$(q a "PRAGMA freelist_count")" -gt 100 ] || fail "no free pages after deleting without VACUUM"
bulk
clean -y 7d > "$T/out"
assert_eq "$(tail -n 2 "$T/out")" "$(printf 'Running VACUUM to reclaim disk space...\nVACUUM complete.')" "the VACUUM lines"
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
fails_with "ERROR: Missing required age argument." clean
fails_with "ERROR: Missing required age argument." clean -y
fails_with "not both" clean 7d --before 2024-01-01
fails_with 'ERROR: Cannot parse age: "7" (expected <number><suffix> where suffix is s/m/h/d/w' clean 7
fails_with 'Cannot parse age: "7x"' clean 7x
fails_with 'Cannot parse age: "7D"' clean 7D
fails_with 'Cannot parse age: "1.5d"' clean 1.5d
fails_with "unknown option '-7'" clean -7d
fails_with 'Cannot parse age: ""' clean ''
fails_with 'Cannot parse age: "a\"b\\c"' clean 'a"b\c'
fails_with 'ERROR: Cannot parse --before value: "2024-13-01" (expected ISO 8601 format: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS' clean --before 2024-13-01
fails_with 'Cannot parse --before value: "yesterday"' clean --before yesterday
fails_with 'Cannot parse --before value: "2024-06-01T12:00:00+25:00"' clean --before 2024-06-01T12:00:00+25:00
fails_with 'Cannot parse --before value: "2024-02-30"' clean --before 2024-02-30
fails_with "outside the years" clean 200000w
fails_with "ERROR: --outbound-only and --inbound-only are mutually exclusive." clean --outbound-only --inbound-only 7d
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
assert_eq "$(sed -n 1p "$T/err")" "ERROR: Database not found at $T/missing.db" "missing database line (the original's)"
assert_eq "$(SECUREDGRAM_DB="$T/a/securedgram.db" "$SG_BIN/sg-clean" --dry-run 7d | tail -n 1)" "$(printf '(dry run — no rows were deleted)')" "SECUREDGRAM_DB"
(cd "$T" && "$SG_BIN/sg-clean" --db a/securedgram.db --dry-run 7d > /dev/null) || fail "--db with a relative path"
assert_eq "$(clean -V)" "sg-clean $(sed -n 's/.*SG_VERSION "\(.*\)"/\1/p' "$HERE/../../src/util/version.h")" "-V"
help=$(clean --help)
for opt in AGE --before --yes --dry-run --no-vacuum --outbound-only --inbound-only \
           --include-unread --state --all-states --peer --json --db --version --help -y -s -V -h; do
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
grep -q "^ERROR: Database is busy: database is locked.*The daemon or another process is holding the lock. Try again. Nothing was deleted.$" "$T/err" || fail "busy error: $(cat "$T/err")"
[ "$el" -ge 4500 ] || fail "gave up on a busy database after only $el ms"
wait "$LOCKER"
assert_eq "$(deleted)" "" "busy: nothing deleted"
note "a busy database: 'Database is busy' after ${el} ms, nothing deleted"

# ---- --json: the same report as one JSON object ----
fill
out=$(clean --json --dry-run 7d)
assert_eq "$(jf "$out" 'keys_unsorted | join(",")')" "cutoff,outbound,inbound,total_to_delete,total_deleted,result,vacuumed" "--json keys"
assert_eq "$(q a "SELECT abs(julianday('$(jf "$out" .cutoff)') - julianday('now', '-7 days')) * 86400 < 5")" 1 "--json cutoff in UTC"
assert_eq "$(jc "$out" '[.outbound, .inbound, .total_to_delete, .total_deleted, .result, .vacuumed]')" \
    '[{"to_delete":2,"by_state":{"acknowledged":1,"send_failed":1},"deleted":0,"kept_unreadable":0},{"to_delete":2,"by_state":{"ack_failed":1,"ack_sent":1},"deleted":0,"kept_unreadable":0},4,0,"dry_run",false]' "--json dry run"
assert_eq "$(deleted)" "" "--json --dry-run deleted nothing"
rc=0
printf 'n\n' | clean --json 7d > "$T/out" 2> "$T/err" || rc=$?
assert_eq "$rc|$(jq -r .result "$T/out")|$(cat "$T/err")" "0|cancelled|Delete 4 rows? [y/N] " "--json: asks on stderr, cancelled"
printf 'y\n' | clean --json 7d > "$T/out" 2> /dev/null
assert_eq "$(jq -c '[.outbound.deleted, .inbound.deleted, .total_deleted, .result, .vacuumed]' "$T/out")" '[2,2,4,"deleted",true]' "--json: deleted"
assert_eq "$(deleted)" "$DEFAULT" "--json deletes as the text report does"
assert_eq "$(clean --json -y --no-vacuum --inbound-only 7d | jq -c '[has("outbound"), .inbound.to_delete, .result, .vacuumed]')" '[false,0,"nothing_to_delete",false]' "--json: nothing to delete, one table"
note "--json: cutoff (UTC), per table to_delete/by_state/deleted, totals, result; valid JSON in every outcome"

# ---- --peer: only the rows from and to one peer ----
fill
q a "UPDATE outbound_messages SET peer = 'berlin' WHERE payload LIKE '%o-acknowledged-old%';
     UPDATE outbound_messages SET peer = 'paris' WHERE payload LIKE '%o-send_failed-old%';
     UPDATE inbound_messages SET peer = 'berlin' WHERE payload LIKE '%i-ack_sent-r1-old%' OR payload LIKE '%i-ack_failed-r0-old%'"
out=$(clean --dry-run --peer berlin 7d | sed 1d)
expected="Peer: berlin (only messages from and to it)

  Outbound: 1 rows to delete
    acknowledged: 1
  Inbound: 1 rows to delete
    ack_sent: 1

(dry run — no rows were deleted)"
assert_eq "$out" "$(printf '%b' "$expected")" "--peer: the report says so and counts only its rows"
out=$(clean --json --dry-run --peer berlin 7d)
assert_eq "$(jf "$out" 'keys_unsorted | join(",")')" "cutoff,peer,outbound,inbound,total_to_delete,total_deleted,result,vacuumed" "--peer --json keys"
assert_eq "$(jc "$out" '[.peer, .outbound.to_delete, .inbound.to_delete]')" '["berlin",1,1]' "--peer --json"
clean -y --peer berlin 7d > /dev/null
assert_eq "$(deleted)" "i-ack_sent-r1-old o-acknowledged-old" "--peer -y deleted only that peer's finished old rows"
clean -y --peer berlin --include-unread 7d > /dev/null
assert_eq "$(deleted)" "i-ack_failed-r0-old i-ack_sent-r1-old o-acknowledged-old" "--peer --include-unread"
assert_eq "$(clean --dry-run --peer rome 7d | tail -n 1)" "Nothing to delete." "--peer of no row: nothing to delete"
fails_with "--peer: '-x' is not a peer name" clean --peer -x 7d
fails_with "--peer: 'a b' is not a peer name" clean --peer 'a b' 7d
fails_with "option '--peer' needs a value" clean 7d --peer
note "--peer: only that peer's rows are counted and deleted; the report and --json name it"

# ---- a file that is not a securedgram database: refused, left byte for byte ----
refuses_foreign clean "-y 1s" "--dry-run 1s" "-y --all-states --include-unread 1s" "--json -y 1d"
note "a foreign database or an empty file: one ERROR line, the file byte for byte as it was"

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
expected="
  Outbound: 3 rows to delete
    acknowledged: 2
    send_failed: 1
  Inbound: 2 rows to delete
    ack_failed: 1
    ack_sent: 1

(dry run — no rows were deleted)"
assert_eq "$(sed 1d "$T/out")" "$(printf '%b' "$expected")" "the report leaves the unreadable rows out"
assert_eq "$(deleted)" "" "--dry-run deleted nothing"
for sel in "5|" "3|--outbound-only" "2|--inbound-only" "2|-s acknowledged" "1|-s send_failed" \
           "1|-s ack_failed" "8|--all-states" "6|--include-unread" "8|--all-states --include-unread" \
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
