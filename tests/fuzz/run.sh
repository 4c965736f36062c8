#!/bin/sh
# Runs each fuzz target for SECONDS, starting from its seeds, then replays the
# committed regression inputs (tests/fuzz/regress/TARGET/). Prints executions
# and coverage per target; fails on any crash.
#   run.sh SECONDS TARGET...
set -eu
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/build/fuzz
work=$bin/corpus
mkdir -p "$work" "$bin/crashes"
: "${SG_TOOL:?}"

# Seeds: sealed datagrams with the fuzz key and clock, and text inputs.
seed() {
    t=$1
    d=$work/$t
    mkdir -p "$d"
    [ -n "$(ls -A "$d")" ] && return 0
    key=0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36
    now=1800000000000000000
    i=0
    for json in '{"message_id":"0123456789abcdef01234567","content":"hi"}' \
                '{"type":"ACK","message_id":"0123456789abcdef01234567"}' \
                '{"message_id":"0123456789abcdef01234567","n":[1,2.5,-3e9,{"a":null}],"s":"\u00e9\ud83d\ude00"}' \
                '{"message_id":"ABC"}' '[1,2]' '{}' '' '{"message_id":"0123456789abcdef01234567","k\u0000":1}'; do
        i=$((i + 1))
        case $t in
        datagram) "$SG_TOOL" sealfile $key $now "$json" "$d/seed$i" ;;
        datagram_noauth) "$SG_TOOL" plainfile $now "$json" "$d/seed$i" ;;
        prepare) printf '\000%s' "$json" > "$d/seed$i"
                 printf '\0010123456789abcdef01234567%s' "$json" > "$d/seedid$i" ;;
        esac
    done
    # The original's wire vectors (../shared/vectors), sealed with the same key as the target's.
    vectors=$root/tests/vectors/envelope.json
    if [ "$t" = datagram ] && [ -f "$vectors" ] && command -v jq >/dev/null; then
        jq -r '.vectors[].datagram_hex' "$vectors" | while read -r hex; do
            i=$((i + 1))
            "$SG_TOOL" hexfile "$hex" "$d/vector$i"
        done
    fi
    case $t in
    dotenv) printf '# c\nSECUREDGRAM_PORT=61773\nexport SECUREDGRAM_DB="x.db"\n\nKEY = '"'"'v'"'"'\n' > "$d/seed1"
            printf 'SECUREDGRAM_SECRET %s\n' $key > "$d/seed2" ;;
    config) printf 'u\000syslog\000p.pid\0000.0.0.0\00061773\000%s\00010\00010\0005\000db' $key > "$d/seed1" ;;
    timeparse) for s in 30d 90s 2w 2026-11-22 2026-11-22T10:20:30Z 2026-11-22T10:20:30.5+02:00 \
                        '2026-02-29 01:02' 9999-12-31T23:59:59.999-0130; do
                   i=$((i + 1)); printf '%s' "$s" > "$d/seed$i"; done ;;
    esac
}

status=0
for t in "$@"; do
    seed "$t"
    log=$bin/$t.log
    if ! "$bin/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$bin/crashes/$t-" "$work/$t" > "$log" 2>&1; then
        echo "FAIL fuzz_$t: a crash; input and log in $bin/crashes/, $log" >&2
        tail -n 30 "$log" >&2
        status=1
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    reg=$here/regress/$t
    nreg=0
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        nreg=$(ls "$reg" | wc -l)
        "$bin/fuzz_$t" "$reg"/* > "$log.regress" 2>&1 ||
            { echo "FAIL fuzz_$t: a regression input crashes again (see $log.regress)" >&2; status=1; continue; }
    fi
    echo "PASS fuzz_$t: ${execs:-?} executions in ${secs}s, coverage ${cov:-?} edges, $nreg regression inputs"
done
exit $status
