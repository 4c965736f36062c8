# make install / uninstall into a DESTDIR: every file where it belongs with the
# right mode, paths rewritten for the PREFIX, man pages that render and lint
# clean, an example .env the daemon accepts, and nothing left after uninstall.
. "$(dirname "$0")/lib.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$SG_BIN" && pwd)
ROOT=$T/root

# Install the programs already built in $SG_BIN: -o (assume old) keeps make from
# rebuilding them, and BUILD points at an empty directory, so nothing is ever
# compiled into the working tree while someone else builds there. MAKEFLAGS
# from a calling make (T=..., BUILD=..., -j) must not leak in.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$REPO" --no-print-directory \
        BIN="$B" BUILD="$T/build" -o "$B/securedgram" -o "$B/sg-send" -o "$B/sg-recv" \
        -o "$B/sg-clean" "$@" >"$T/make.log" 2>&1 || { cat "$T/make.log" >&2; fail "make $*"; }
}

EXPECTED="755 usr/bin/securedgram
755 usr/bin/sg-clean
755 usr/bin/sg-recv
755 usr/bin/sg-send
644 usr/share/man/man1/sg-clean.1
644 usr/share/man/man1/sg-recv.1
644 usr/share/man/man1/sg-send.1
644 usr/share/man/man5/securedgram-peers.5
644 usr/share/man/man8/securedgram.8
644 usr/share/securedgram/grafana-securedgram.json
644 usr/share/securedgram/peers.example
644 usr/share/securedgram/schema-pg.sql
644 usr/share/securedgram/schema.sql
644 usr/share/securedgram/securedgram.env.example
644 usr/share/securedgram/securedgram.rc
644 usr/share/securedgram/securedgram.service"

installed() { (cd "$1" && find . -type f | sed 's|^\./||' | sort | while read -r f; do echo "$(stat -c %a "$f") $f"; done); }

mk install DESTDIR="$ROOT" PREFIX=/usr
[ ! -e "$T/build" ] || fail "make install built something in BUILD"
assert_eq "$(installed "$ROOT")" "$EXPECTED" "installed files and modes"
for p in securedgram sg-send sg-recv sg-clean; do
    cmp -s "$B/$p" "$ROOT/usr/bin/$p" || fail "usr/bin/$p is not the built $p"
done
cmp -s "$REPO/data/schema.sql" "$ROOT/usr/share/securedgram/schema.sql" || fail "schema.sql differs"
cmp -s "$REPO/data/securedgram.env.example" "$ROOT/usr/share/securedgram/securedgram.env.example" ||
    fail "securedgram.env.example differs"
cmp -s "$REPO/data/peers.example" "$ROOT/usr/share/securedgram/peers.example" ||
    fail "peers.example differs"
note "make install DESTDIR PREFIX=/usr: 14 files, modes 755/644"

# The programs run from where they were installed.
"$ROOT/usr/bin/securedgram" --version | grep -Eq '^securedgram [0-9]+\.[0-9]+\.[0-9]+$' ||
    fail "installed securedgram --version"
for p in sg-send sg-recv sg-clean; do
    "$ROOT/usr/bin/$p" --version >/dev/null || fail "installed $p --version"
done
[ "$("$ROOT/usr/bin/securedgram" keygen | grep -Ec '^[0-9a-f]{64}$')" = 1 ] || fail "installed keygen"
note "installed programs run"

# Paths in the unit, the rc script and the daemon's man page follow PREFIX.
S=$ROOT/usr/share/securedgram
grep -qx 'ExecStart=/usr/bin/securedgram --foreground start' "$S/securedgram.service" ||
    fail "unit ExecStart not rewritten for PREFIX=/usr"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$S/securedgram.service" || fail "unit ExecReload"
grep -qx 'command="/usr/bin/securedgram"' "$S/securedgram.rc" || fail "rc command not rewritten"
grep -q '/usr/share/securedgram/schema.sql' "$ROOT/usr/share/man/man8/securedgram.8" ||
    fail "man page FILES not rewritten"
grep -q '/usr/share/securedgram/peers.example' "$ROOT/usr/share/man/man5/securedgram-peers.5" ||
    fail "securedgram-peers(5) FILES not rewritten"
if grep -rlE '/usr/local/bin/|/usr/local/share/securedgram' "$ROOT" >"$T/left" 2>/dev/null; then
    fail "default paths left in: $(cat "$T/left")"
fi
sh -n "$S/securedgram.rc" || fail "rc script syntax"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit as installed, pointed at the DESTDIR binary (and without the man: link,
    # which is looked up in the system's manual).
    sed -e "s|^ExecStart=/usr/bin/|ExecStart=$ROOT/usr/bin/|" -e '/^Documentation=/d' \
        "$S/securedgram.service" >"$T/securedgram.service"
    systemd-analyze verify "$T/securedgram.service" >"$T/verify" 2>&1 ||
        { cat "$T/verify" >&2; fail "systemd-analyze verify"; }
    [ ! -s "$T/verify" ] || { cat "$T/verify" >&2; fail "systemd-analyze verify printed warnings"; }
    note "systemd-analyze verify: clean"
fi
note "paths rewritten for PREFIX"

# Every installed page renders without a warning, and lints clean. Pages of
# commands (sections 1 and 8) have an EXIT STATUS; a file format's (5) has none.
for page in "$ROOT"/usr/share/man/man1/*.1 "$ROOT"/usr/share/man/man5/*.5 "$ROOT"/usr/share/man/man8/*.8; do
    name=$(basename "$page")
    title=$(echo "${name%.*}($(echo "$name" | sed 's/.*\.//'))" | tr 'a-z' 'A-Z')
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 man -l "$page" >"$T/page" 2>"$T/page.err" || fail "man -l $name failed"
    else
        mandoc -T utf8 "$page" >"$T/page" 2>"$T/page.err" || fail "mandoc $name failed"
    fi
    [ ! -s "$T/page.err" ] || { cat "$T/page.err" >&2; fail "rendering $name printed warnings"; }
    head -n 3 "$T/page" | grep -q "^$title" || fail "$name: no $title header"
    grep -q '^NAME' "$T/page" && grep -q '^SYNOPSIS' "$T/page" || fail "$name: missing NAME or SYNOPSIS"
    case $name in
    *.5) ;;
    *) grep -q '^EXIT STATUS' "$T/page" || fail "$name: missing EXIT STATUS" ;;
    esac
    if command -v mandoc >/dev/null 2>&1; then
        out=$(mandoc -T lint -W warning "$page" 2>&1) || true
        [ -z "$out" ] || fail "mandoc lint on installed $name: $out"
    fi
done
note "man pages render (man -l, 80 columns) with no warning"

# Every option of each program's --help is in its page.
longopts() { "$ROOT/usr/bin/$1" --help | grep -oE -- '(^|[ ,])--[a-z][a-z-]+' | sed 's/^[ ,]*//' | sort -u; }
shortopts() { "$ROOT/usr/bin/$1" --help | grep -oE -- '^ +-[a-zA-Z],' | tr -d ' ,' | sort -u; }
for p in securedgram:8 sg-send:1 sg-recv:1 sg-clean:1; do
    prog=${p%:*}
    page=$ROOT/usr/share/man/man${p#*:}/$prog.${p#*:}
    if command -v mandoc >/dev/null 2>&1; then
        mandoc -T ascii -O width=200 "$page" | col -b >"$T/page"
    else
        MANWIDTH=200 man -l "$page" | col -b >"$T/page"
    fi
    [ -n "$(shortopts "$prog")" ] && [ -n "$(longopts "$prog")" ] || fail "$prog --help lists no options"
    for o in $(longopts "$prog"); do
        grep -q -- "$o" "$T/page" || fail "$prog(${p#*:}) does not document $o"
    done
    for o in $(shortopts "$prog"); do
        grep -qE -- "(^|[^-[:alnum:]])$o([^-[:alnum:]]|\$)" "$T/page" || fail "$prog(${p#*:}) does not document $o"
    done
done
note "every --option of every --help is in its man page"

# make lint-man over the source pages.
mk lint-man
grep -q 'pages clean' "$T/make.log" || fail "make lint-man said: $(cat "$T/make.log")"
note "make lint-man: clean"

# The example .env is one the daemon accepts: every variable is there, the
# empty secret is refused, and with a secret (a later line wins) it runs.
for v in USER LOG PIDFILE ADDRESS PORT SECRET WINDOW MAX_RETRIES RETRY_INTERVAL DB; do
    grep -q "^SECUREDGRAM_$v=" "$S/securedgram.env.example" || fail "env example lacks SECUREDGRAM_$v"
done
# and every other variable the daemon knows is there too, set or commented out
for v in $(sed -n 's/^ *\[CFG_[A-Z_]*\] = {"\(SECUREDGRAM_[A-Z_]*\)".*/\1/p' "$REPO/src/conf/config.c"); do
    grep -q "^#\{0,1\}$v=" "$S/securedgram.env.example" || fail "env example lacks $v"
done
grep -qx 'SECUREDGRAM_SECRET=' "$S/securedgram.env.example" || fail "env example secret not empty"
cmp -s "$REPO/contrib/grafana/securedgram.json" "$S/grafana-securedgram.json" || fail "dashboard differs"
grep -q 'securedgram keygen' "$S/securedgram.env.example" || fail "env example does not say keygen"
mkdir -p "$T/ex"
cp "$S/securedgram.env.example" "$T/ex/.env"
chmod 600 "$T/ex/.env"
cd "$T/ex"
if "$ROOT/usr/bin/securedgram" start >"$T/out" 2>&1; then fail "started with an empty secret"; fi
grep -q 'SECUREDGRAM_SECRET is not set' "$T/out" || fail "empty secret message: $(cat "$T/out")"
P=$(freeport)
cat >>.env <<ENV
SECUREDGRAM_SECRET=$SECRET
SECUREDGRAM_ADDRESS=127.0.0.1
SECUREDGRAM_PORT=$P
SECUREDGRAM_LOG=$T/ex/daemon.log
SECUREDGRAM_USER=$ME
ENV
"$ROOT/usr/bin/securedgram" start || fail "start with the example .env"
"$ROOT/usr/bin/securedgram" status >/dev/null || fail "status after start"
ID=$(newid)
sgtest peer 127.0.0.1 "$P" "$SECRET" "msg:{\"message_id\":\"$ID\"}" "ack:$ID:3000" >/dev/null ||
    fail "daemon started from the example .env does not answer"
"$ROOT/usr/bin/securedgram" stop >/dev/null || fail "stop"
cd "$T"
note "the example .env works"

# uninstall removes exactly what install put there, and the share directory.
mk uninstall DESTDIR="$ROOT" PREFIX=/usr
assert_eq "$(installed "$ROOT")" "" "files left after uninstall"
[ ! -e "$ROOT/usr/share/securedgram" ] || fail "share/securedgram left behind"
note "make uninstall: nothing left"

# It leaves other files alone; the default PREFIX is /usr/local.
mk install DESTDIR="$ROOT"
[ -x "$ROOT/usr/local/bin/securedgram" ] || fail "default PREFIX is not /usr/local"
grep -qx 'ExecStart=/usr/local/bin/securedgram --foreground start' \
    "$ROOT/usr/local/share/securedgram/securedgram.service" || fail "unit ExecStart for /usr/local"
echo keep >"$ROOT/usr/local/bin/other"
mk uninstall DESTDIR="$ROOT"
assert_eq "$(installed "$ROOT")" "644 usr/local/bin/other" "uninstall removed only its own files"
[ ! -e "$ROOT/usr/local/share/securedgram" ] || fail "share/securedgram left behind (default PREFIX)"
note "default PREFIX /usr/local; uninstall leaves other files alone"
