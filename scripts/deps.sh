#!/bin/sh
# Installs the Debian packages securedgram needs, if any are missing.
#   scripts/deps.sh build   to build and run
#   scripts/deps.sh test    also what the tests need
set -eu
want="gcc make pkg-config libsodium-dev libsqlite3-dev libjansson-dev libseccomp-dev libpq-dev"
case "${1:-build}" in
    test) want="$want libcmocka-dev sqlite3 jq mandoc clang libclang-rt-14-dev valgrind time iproute2 curl prometheus postgresql postgresql-client" ;;
    bench) want="$want sqlite3 jq postgresql postgresql-client" ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ERROR: missing packages:$missing (install them with your package manager)" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ERROR: missing packages:$missing; run as root, or: sudo apt-get install$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
