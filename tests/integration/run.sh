#!/bin/sh
# Runs the integration tests (all, or those named: run.sh exchange config).
set -u
dir=$(dirname "$0")
if [ $# -gt 0 ]; then
    tests=""
    for n in "$@"; do tests="$tests $dir/test_$n.sh"; done
else
    tests=$(ls "$dir"/test_*.sh)
fi
failed=0
for t in $tests; do
    name=$(basename "$t" .sh)
    start=$(date +%s%N)
    if out=$(sh "$t" 2>&1); then
        echo "PASS $name ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
    else
        echo "FAIL $name"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
[ "$failed" -eq 0 ] || { echo "$failed integration test(s) failed"; exit 1; }
