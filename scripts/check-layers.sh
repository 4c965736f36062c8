#!/bin/sh
# check-layers.sh: fail when an include points the wrong way (part of `make lint`).
#
# The layers of src/ (docs/design.md, "The map"):
#
#   util  <-  wire  <-  conf          util: knows nothing of the protocol
#   util  <-  store                   store: never sees the wire, the config or the daemon
#   util, wire, conf, store  <-  daemon, tools  <-  cmd/, tests/, bench/
#
# and each library header is included only where its job lives.
set -u
cd "$(dirname "$0")/.." || exit 2

allowed() { # layer -> the folders its files may include
    case $1 in
    util) echo "util" ;;
    wire) echo "util wire" ;;
    conf) echo "util wire conf" ;;
    store) echo "util store" ;;
    daemon) echo "util wire conf store daemon" ;;
    tools) echo "util wire conf store tools" ;;
    *) echo "" ;;
    esac
}

bad=0
for f in src/*/*.c src/*/*.h; do
    layer=${f#src/}
    layer=${layer%%/*}
    ok=$(allowed "$layer")
    if [ -z "$ok" ]; then
        echo "$f: src/$layer/ is not a known layer (scripts/check-layers.sh)" >&2
        bad=1
        continue
    fi
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        case $inc in
        */*) to=${inc%%/*} ;;
        schema.h) to=store ;; # generated into $(BUILD) from data/schema.sql
        *)
            echo "$f: includes \"$inc\" without its folder" >&2
            bad=1
            continue
            ;;
        esac
        case " $ok " in
        *" $to "*) ;;
        *)
            echo "$f: src/$layer/ may not include \"$inc\" (allowed: $ok)" >&2
            bad=1
            ;;
        esac
    done
done

# Each library header only where its job lives (tests, cmd/ and bench/ are free to
# set up fixtures). $1: header, $2: extended regex of the files allowed to include it.
only_in() {
    hits=$(grep -l "^#include <$1>" src/*/*.c src/*/*.h cmd/*.c 2>/dev/null | grep -Ev "^($2)\$")
    for h in $hits; do
        echo "$h: includes <$1>, allowed only in: $2" >&2
        bad=1
    done
}
only_in sqlite3.h 'src/store/sqlite[a-z_]*\.[ch]'
only_in libpq-fe.h 'src/store/pg[a-z_]*\.[ch]'
only_in sodium.h 'src/wire/[a-z0-9_]*\.c|src/util/(table|hex|secret|random)\.c'
only_in jansson.h 'src/util/log\.c|src/wire/message\.c|src/daemon/(ctl[a-z_]*|counters)\.c|src/tools/[a-z_]*\.[ch]|cmd/[a-z-]*\.c'
only_in seccomp.h 'src/daemon/sandbox\.c'

exit $bad
