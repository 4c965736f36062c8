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

# repeat N CHAR: CHAR N times.
repeat() { head -c "$1" /dev/zero | tr '\0' "$2"; }

# Seeds: sealed datagrams with the fuzz key and clock, and text inputs. They
# are written on every run, under fixed names, so a new seed reaches a corpus
# kept from earlier runs too.
seed() {
    t=$1
    d=$work/$t
    mkdir -p "$d"
    key=0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36
    now=1800000000000000000
    i=0
    # Also the largest payload, nested 98 deep, and one nested past MESSAGE_MAX_DEPTH (100).
    big='{"message_id":"0123456789abcdef01234567","deep":'"$(repeat 98 '[')1$(repeat 98 ']')"
    big=$big',"pad":"'"$(repeat 65000 a)"'"}'
    deep='{"message_id":"0123456789abcdef01234567","deep":'"$(repeat 100 '[')$(repeat 100 ']')"'}'
    for json in '{"message_id":"0123456789abcdef01234567","content":"hi"}' \
                '{"type":"ACK","message_id":"0123456789abcdef01234567"}' \
                '{"message_id":"0123456789abcdef01234567","n":[1,2.5,-3e9,{"a":null}],"s":"\u00e9\ud83d\ude00"}' \
                '{"message_id":"ABC"}' '[1,2]' '{}' '' '{"message_id":"0123456789abcdef01234567","k\u0000":1}' \
                "$big" "$deep"; do
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
    relayout)
        for json in '{"message_id":"0123456789abcdef01234567","n":[1,2.5,-3e9,{"a":null}],"s":"\u00e9\ud83d\ude00"}' \
                    ' { "a" : [ 1 , 2 ] , "s" : "x\u00e9\"y" , "e" : [ ] , "o" : { } } ' \
                    '[0.1,-0.0e-0,1E+2,123456789012345678901234567890,1e400,-1e-400]' \
                    '{"k\u0000":"\u0000","\ud800":"\udc00"}' '"\/\b\f\n\r\t"' 'true' 'null' '[[[]]]' \
                    '[1,]' '{"a":1,"a":2}' "\"$(printf '\303\251\342\202\254\360\237\230\200')\""; do
            i=$((i + 1)); printf '%s' "$json" > "$d/json$i"
        done
        # Nested 98 deep (the daemon accepts 100), and past our limit (JSONOUT_MAX_DEPTH).
        for n in 98 513; do
            i=$((i + 1))
            { repeat "$n" '['; printf '1,2'; repeat "$n" ']'; } > "$d/deep$i"
        done
        # 64 KB nested 98 deep: indented it would grow a hundredfold, so sg-recv's cap applies.
        { repeat 98 '['; repeat 32000 , | sed 's/,/1,/g'; printf 1; repeat 98 ']'; } > "$d/hostile" ;;
    address)
        for a in '127.0.0.1|61773' '::1|1' '::ffff:10.0.0.1|65535' 'localhost|' '2001:db8::1|0000080' \
                 '0.0.0.0|0' '10.0.0.1|65536' 'fe80::1%eth0|9' '1.2.3|9' '::ffff:1.2.3.4' '::1.2.3.4|7' \
                 '1:2:3:4:5:6:7:8|99' '01.2.3.4|5' '[::1]|5' ' 127.0.0.1|5'; do
            i=$((i + 1)); printf '%s' "$a" | tr '|' '\0' > "$d/addr$i"
        done ;;
    dotenv) printf '# c\nSECUREDGRAM_PORT=61773\nexport SECUREDGRAM_DB="x.db"\n\nKEY = '"'"'v'"'"'\n' > "$d/seed1"
            printf 'SECUREDGRAM_SECRET %s\n' $key > "$d/seed2" ;;
    v2header) "$SG_TOOL" hexfile "$(jq -r '.vectors[0].datagram_hex' "$root/tests/vectors/envelope_v2.json")" "$d/seed1"
              printf '\002\001\000\000' > "$d/seed2" ;;
    peers) printf '# fleet\n[peer berlin]\nendpoint = 203.0.113.7:61773\nallowed = 203.0.113.0/24, 2001:db8::/32\nkey = %s\nprevious-key = %s\nprevious-key-until = 2027-01-31T00:00:00Z\nwire = 1\nroaming = yes\n[peer paris]\nendpoint = [2001:db8::7]:5000\nkey = derive\n' $key 00000000000000000000000000000000000000000000000000000000000000a2 > "$d/seed1"
           printf '[peer a]\nallowed = 10.0.0.0/8\nallowed = ::1\nkey-file = /k\n[peer b]\nkey = %s\n' $key > "$d/seed2" ;;
    config) printf 'u\000syslog\000p.pid\0000.0.0.0\00061773\000%s\00010\00010\0005\000db' $key > "$d/seed1" ;;
    timeparse) for s in 30d 90s 2w 2026-11-22 2026-11-22T10:20:30Z 2026-11-22T10:20:30.5+02:00 \
                        '2026-02-29 01:02' 9999-12-31T23:59:59.999-0130; do
                   i=$((i + 1)); printf '%s' "$s" > "$d/seed$i"; done ;;
    engine) # Operation sequences (format in fuzz_engine.c): a row sent and ACKed, a message and
            # its replay, the lock held, a refusing trigger, a reflection, a message to ourselves,
            # crash recovery, the wall clock stepping back, a dead peer's backlog, our own message
            # sent back to us from a third address after its ACK.
        for s in '\000\000\005\000\000\000\000\000\011\001\001\010\000\000\011\000\011\000' \
                 '\000\000\000\001\001\000\000\011\000\002\000\001\000\011\000\000\001\001\000\001\011\000' \
                 '\000\000\006\000\002\000\000\000\005\001\023\000\000\000\011\001\004\005\000\011\001\006\011\001\001\002\001\000\011\000\011\000' \
                 '\000\000\007\000\000\000\003\000\000\000\011\000\012\210\000\000\004\000\000\010\011\000\004\105\000\011\000' \
                 '\000\000\005\000\034\000\000\000\011\001\002\000\002\001\011\000\002\000\000\001\011\000\001\003\000\000\011\000' \
                 '\000\000\005\003\034\000\000\000\011\001\002\000\003\001\011\000\002\001\003\001\011\000\011\000' \
                 '\000\003\001\000\005\000\001\000\001\001\054\000\062\000\000\002\001\011\000\004\105\000\011\000\001\005\001\000\011\000' \
                 '\000\000\000\001\001\000\000\011\000\004\000\012\002\000\001\000\011\000\004\000\003\002\000\001\000\011\000' \
                 '\000\000\005\000\000\000\000\064\011\001\004\105\000\011\000\004\105\000\011\000\005\000\000\000\000\060\004\105\000\011\001\004\105\000\011\000\001\010\000\000\011\000' \
                 '\000\000\005\000\034\000\000\000\011\001\001\003\000\000\011\000\002\000\002\001\011\000'; do
            i=$((i + 1)); printf "$s" > "$d/ops$i"; done ;;
    esac
}

# The largest input each target takes (libFuzzer's default is 4096 bytes, which
# never reaches a 64 KB payload or the nesting limits).
dgram=$(sed -n 's/^#define ENVELOPE_MAX_DATAGRAM \([0-9]*\).*/\1/p' "$root/src/wire/envelope.h")
# ENVELOPE_MAX_JSON: the datagram less nonce (12), tag (16) and timestamp (8).
json_max=$((dgram - 36))
max_len() {
    case $1 in
    datagram | datagram_noauth) echo "$dgram" ;;             # a UDP datagram; larger is never judged
    prepare) echo $((1 + 24 + json_max + 64)) ;;             # flag, row id, the largest payload and past it
    relayout) echo 131072 ;;                                 # a stored payload, twice the network's largest
    dotenv | config) echo 65536 ;;                           # a .env file, a set of option values
    address | timeparse) echo 4096 ;;                        # one address and port, one date or age
    engine) echo 4096 ;;                                     # 64 operations of a few bytes, some with data
    v2header) echo "$dgram" ;;                               # a UDP datagram
    peers) echo 8192 ;;                                      # a few sections, lines up to the 4 KiB limit
    *) echo 4096 ;;
    esac
}

status=0
for t in "$@"; do
    seed "$t"
    log=$bin/$t.log
    if ! "$bin/fuzz_$t" -max_len="$(max_len "$t")" -max_total_time="$secs" -print_final_stats=1 \
            -timeout=10 -rss_limit_mb=2048 \
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
    echo "PASS fuzz_$t: ${execs:-?} executions in ${secs}s, coverage ${cov:-?} edges, max_len $(max_len "$t"), $nreg regression inputs"
done
exit $status
