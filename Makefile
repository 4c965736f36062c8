# securedgram — GNU make. Targets:
#   make            build bin/securedgram, bin/sg-send, bin/sg-recv, bin/sg-clean
#   make run        install missing Debian packages, build, write .env if missing, run in the foreground
#   make test       install missing packages, build, run every test; then again under ASan+UBSan
#   make bench      release build, two daemons, throughput/latency/memory vs ../shared/bench-limit,
#                   then through a lossy relay (make bench-lossy: that part alone)
#   make install    PREFIX (/usr/local) and DESTDIR honoured; make uninstall
#   make fuzz       libFuzzer targets for FUZZ_SECONDS (60) each

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
BIN      ?= bin
CFLAGS   ?= -O2 -g
SAN      ?=
WERROR   ?= -Werror

PKGS     := libsodium sqlite3 jansson libseccomp
# libpq: its headers at build time; loaded at run time only for a PostgreSQL database
# (store/pg_lib.c: linked, its libraries would cost every daemon 1.4 MB). The unit
# tests link it (test_store's raw connection).
PQ_CFLAGS = $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PQ_LIBS   = $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq)
WARN     := -std=c11 -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wvla $(WERROR)
comma    := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(PQ_CFLAGS)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lsodium -lsqlite3 -ljansson)
ALL_CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -I$(BUILD) $(CPPFLAGS)
ALL_CFLAGS   = $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS  = $(SANFLAGS) $(LDFLAGS)

LIB_SRC  := $(wildcard src/*/*.c)
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/src/%.o)
LIB      := $(BUILD)/libsecuredgram.a
PROGS    := securedgram sg-send sg-recv sg-clean
PROG_BIN := $(PROGS:%=$(BIN)/%)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(BUILD)/tests/sgtest
RELAY_BIN := $(BUILD)/tests/sgrelay
CTL_BIN  := $(BUILD)/tests/sgctl

.PHONY: all run test check check-unit check-integration test-asan deps deps-test bench bench-lossy bench-pg \
        install uninstall fuzz fuzz-lib fuzz-build check-fuzz clean format lint lint-man

all: $(PROG_BIN)

$(BUILD)/schema.h: data/schema.sql
	@mkdir -p $(@D)
	{ echo '/* generated from data/schema.sql */'; echo 'static const char schema_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/src/store/sqlite_open.o: $(BUILD)/schema.h

# data/schema-pg.sql, embedded in the PostgreSQL backend (store/ in the name: scripts/check-layers.sh)
$(BUILD)/store/schema_pg.h: data/schema-pg.sql
	@mkdir -p $(@D)
	{ echo '/* generated from data/schema-pg.sql */'; echo 'static const char schema_pg_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } > $@

$(BUILD)/src/store/pg_open.o: $(BUILD)/store/schema_pg.h

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN)/%: $(BUILD)/cmd/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -DSHARED_DIR='"$(abspath tests)"' $(ALL_LDFLAGS) \
	  -o $@ $< $(LIB) $(PKG_LIBS) $(PQ_LIBS) -lcmocka

$(TOOL_BIN): tests/tools/sgtest.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) -lm

$(RELAY_BIN): tests/tools/sgrelay.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

$(CTL_BIN): tests/tools/sgctl.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

LIMIT_SRC ?= ../shared/bench-limit/limit.c

$(BUILD)/bench/sgbench: bench/sgbench.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS)

$(BUILD)/bench/limit: $(LIMIT_SRC)
	@mkdir -p $(@D)
	$(CC) -O2 -g -Wall -Wextra $(PKG_CFLAGS) -pthread -o $@ $< $(PKG_LIBS) -pthread

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=build/release BIN=build/release/bin CFLAGS='-O2 -g' \
	  all build/release/tests/sgtest build/release/tests/sgrelay build/release/bench/sgbench \
	  build/release/bench/limit
	@BIN=build/release/bin SGBENCH=build/release/bench/sgbench SGTEST=build/release/tests/sgtest \
	  SG_RELAY=build/release/tests/sgrelay LIMIT=build/release/bench/limit sh bench/run.sh

# Only bench's lossy part (bench/lossy.sh: through sgrelay, RTT 50 ms, 0/1/5 % loss, 1 MiB
# at 10 MB/s), about a minute; LOSSY_POLICY=fixed|adaptive|auto, LOSSY_ENFORCE=0 pass through.
bench-pg:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=build/release BIN=build/release/bin CFLAGS='-O2 -g' \
	  all build/release/tests/sgtest build/release/bench/sgbench
	@BIN=build/release/bin SGBENCH=build/release/bench/sgbench SGTEST=build/release/tests/sgtest \
	  sh bench/pg.sh

bench-lossy:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=build/release BIN=build/release/bin CFLAGS='-O2 -g' \
	  all build/release/tests/sgtest build/release/tests/sgrelay build/release/bench/sgbench
	@BIN=build/release/bin SGBENCH=build/release/bench/sgbench SGTEST=build/release/tests/sgtest \
	  SG_RELAY=build/release/tests/sgrelay sh bench/lossy.sh

# Fuzzing (clang libFuzzer + ASan + UBSan). `make fuzz` runs every target for
# FUZZ_SECONDS; `make check-fuzz` (part of make test) runs each briefly and
# replays the committed regression corpus.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := datagram datagram_noauth prepare dotenv config timeparse relayout address engine \
                peers v2header parts
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_SAN     := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all

FUZZ_LIB     := $(FUZZ_BUILD)/lib/libsecuredgram.a

fuzz-lib:
	@$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD)/lib SAN=1 \
	  CFLAGS='-g -O1 -fsanitize=fuzzer-no-link' $(FUZZ_LIB)

$(FUZZ_BUILD)/judge_noauth.o: src/wire/judge.c $(wildcard src/*/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -DSG_FUZZ_NO_AUTH \
	  $(PKG_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_datagram_noauth: tests/fuzz/fuzz_datagram.c $(FUZZ_BUILD)/judge_noauth.o fuzz-lib
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
	  $(FUZZ_BUILD)/judge_noauth.o $(FUZZ_LIB) $(PKG_LIBS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c fuzz-lib
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN) $(TOOL_BIN)

fuzz: fuzz-build
	@SG_TOOL=$(abspath $(TOOL_BIN)) sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

check-fuzz: fuzz-build
	@SG_TOOL=$(abspath $(TOOL_BIN)) sh tests/fuzz/run.sh 3 $(FUZZ_TARGETS)

C_FILES = $(wildcard src/*/*.[ch] cmd/*.c tests/unit/*.c tests/fuzz/*.[ch] tests/tools/*.c bench/*.c)

format:
	clang-format -i $(C_FILES)

# Static analysis: clang-format (.clang-format), cppcheck and clang-tidy (.clang-tidy)
# must all report nothing.
lint: $(BUILD)/schema.h $(BUILD)/store/schema_pg.h
	sh scripts/check-layers.sh
	clang-format --dry-run --Werror $(C_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance --std=c11 \
	  --inline-suppr -Isrc src cmd
	clang-tidy --quiet src/*/*.c cmd/*.c -- -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
	  -Isrc -I$(BUILD) $(PKG_CFLAGS)

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test

run: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/quickstart.sh

# test_store runs its PostgreSQL cases on a throw-away cluster (tests/tools/with-pg.sh).
check-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	  case $$t in */test_store) sh tests/tools/with-pg.sh $$t ;; *) $$t ;; esac; done

check-integration: $(PROG_BIN) $(TOOL_BIN) $(RELAY_BIN) $(CTL_BIN)
	@SG_BIN=$(abspath $(BIN)) SG_TOOL=$(abspath $(TOOL_BIN)) SG_RELAY=$(abspath $(RELAY_BIN)) \
	  SG_SAN=$(SAN) VALGRIND=$(VALGRIND) \
	  sh tests/integration/run.sh $(T)

check: check-unit check-integration

test-asan:
	@$(MAKE) --no-print-directory BUILD=build/san BIN=build/san/bin SAN=1 CFLAGS='-O1 -g' check

# make test VALGRIND=1: the plain build's tests with every daemon under valgrind (slow).
test: deps-test
ifeq ($(VALGRIND),)
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory check-fuzz
	@echo "all tests passed (plain, ASan+UBSan, fuzz targets)"
else
	@$(MAKE) --no-print-directory check VALGRIND=1
	@echo "all tests passed with the daemons under valgrind"
endif

clean:
	rm -rf build bin

# install, uninstall, lint-man
-include mk/install.mk

-include $(LIB_OBJ:.o=.d) $(PROGS:%=$(BUILD)/cmd/%.d)
