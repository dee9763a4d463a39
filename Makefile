# chatd: `make` builds build/chatd; `make run` starts it; `make test` runs every test.
# Dependencies come from Debian packages (scripts/install-deps.sh installs them).

PREFIX      ?= /usr/local
DESTDIR     ?=
BUILD       ?= build
CC          ?= cc
PKGS        := libuv libjwt libcjson sqlite3 openssl libpq
LLHTTP_SRC  := /usr/share/llhttp
LLHTTP_INC  := /usr/share/include/llhttp
OPT         ?= -O2 -g
SANFLAGS    ?=
DEPS_STAMP  := .deps-ok

PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -pthread -Iinclude -I$(LLHTTP_INC) $(PKG_CFLAGS)
WARN        := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS      ?=
ALL_CFLAGS  := $(CFLAGS_BASE) $(OPT) $(SANFLAGS) $(WARN) -MMD -MP $(CFLAGS)
LDLIBS      := $(PKG_LIBS) -lwslay -lm -pthread
LDFLAGS     ?=

LIB_SRC     := $(shell find src -name '*.c' ! -name main.c | sort)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/%.o)
WEB_FILES   := $(shell find web -type f 2>/dev/null | sort)
WEB_OBJ     := $(BUILD)/gen/web_assets.o
LLHTTP_OBJ  := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
UNIT_SRC    := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ    := $(UNIT_SRC:%.c=$(BUILD)/%.o)
BENCH_SRC   := $(sort $(wildcard bench/*.c))

.PHONY: all run test check-layering test-unit test-integration test-asan test-tsan debug install clean deps \
        bench bench-quick bench-durability bench-pg loadgen fuzz fuzz-smoke fuzz-bins valgrind

all: $(BUILD)/chatd

$(BUILD)/libchatd.a: $(LIB_OBJ) $(LLHTTP_OBJ) $(WEB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/chatd: $(BUILD)/src/core/main.o $(BUILD)/libchatd.a
	$(CC) $(OPT) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# llhttp is compiled from the Debian package's sources; it is not our code, so it
# gets no -Werror.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(SANFLAGS) -w -c -o $@ $<

# The web client is embedded in the binary as a table of (path, type, bytes).
$(BUILD)/gen/web_assets.c: scripts/embed-web.sh $(WEB_FILES)
	@mkdir -p $(dir $@)
	sh scripts/embed-web.sh web > $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS_BASE) $(OPT) $(SANFLAGS) -c -o $@ $<

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libchatd.a
	$(CC) $(OPT) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(DEPS_STAMP): scripts/install-deps.sh package.json package-lock.json
	sh scripts/install-deps.sh
	@touch $@

deps: $(DEPS_STAMP)

# pkg-config is read when make starts, before the dependencies may exist: build in a
# second make, after install-deps.sh has run.
run: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd
	./$(BUILD)/chatd

# Unit and integration tests (the gdb walkthrough test runs the -O0 build-debug/chatd),
# each fuzz target for a few seconds (tests/fuzz/), and the layering check. tests/run.sh
# starts a throwaway PostgreSQL server and runs the integration tests on both engines.
test: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/unit_tests
	$(MAKE) debug
	$(MAKE) fuzz
	CHATD_FUZZ_SMOKE=$(FUZZ_BUILD) sh tests/run.sh $(BUILD)

# The module boundaries (docs/architecture.md), checked by grep.
check-layering:
	sh scripts/check-layering.sh

# The unit tests, with a throwaway PostgreSQL server for their PostgreSQL cases.
test-unit: $(BUILD)/unit_tests
	sh scripts/pg-throwaway.sh run --no-fsync -- ./$(BUILD)/unit_tests

test-integration: $(BUILD)/chatd
	CHATD_BIN=$(BUILD)/chatd node --test tests/integration/

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (the gdb
# walkthrough test runs build-debug/chatd, so that is brought up to date too).
test-asan: $(DEPS_STAMP)
	$(MAKE) debug
	$(MAKE) BUILD=build-asan OPT="-O1 -g" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  build-asan/chatd build-asan/unit_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh tests/run.sh build-asan

# The threaded parts (ring, bus, db writer on both engines) under ThreadSanitizer.
test-tsan: $(DEPS_STAMP)
	$(MAKE) BUILD=build-tsan OPT="-O1 -g" SANFLAGS="-fsanitize=thread" build-tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1 sh scripts/pg-throwaway.sh run --no-fsync -- \
	  ./build-tsan/unit_tests ring bus db

# The integration suite with chatd under valgrind memcheck: no invalid accesses, no
# definite leaks. Slow (tens of minutes), so outside CI; see docs/security.md.
valgrind: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/unit_tests
	sh tests/valgrind.sh $(BUILD)

debug:
	$(MAKE) BUILD=build-debug OPT="-O0 -g3" build-debug/chatd

install: $(BUILD)/chatd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/chatd $(DESTDIR)/lib/systemd/system \
	  $(DESTDIR)$(PREFIX)/share/doc/chatd
	install -m 0755 $(BUILD)/chatd $(DESTDIR)$(PREFIX)/bin/chatd
	test -e $(DESTDIR)/etc/chatd/chatd.conf || install -m 0640 chatd.conf $(DESTDIR)/etc/chatd/chatd.conf
	sed 's|/usr/local|$(PREFIX)|g' contrib/chatd.service > $(DESTDIR)/lib/systemd/system/chatd.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/chatd.service
	install -m 0644 README.md docs/deploy.md docs/api.md docs/protocol.md $(DESTDIR)$(PREFIX)/share/doc/chatd/

clean:
	rm -rf build build-asan build-tsan build-debug build-fuzz $(DEPS_STAMP)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- benchmarks (bench/) ----
# Like run and test, bench builds in a second make, after install-deps.sh has run, so
# that pkg-config sees the packages on a fresh machine.
$(BUILD)/loadgen: $(BENCH_SRC) $(wildcard bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -g $(WARN) -o $@ $(BENCH_SRC) $(LDLIBS)

loadgen: $(BUILD)/loadgen

bench: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/loadgen
	sh bench/run.sh full $(BUILD)

bench-quick: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/loadgen
	sh bench/run.sh quick $(BUILD)

# [database] durability = full against process, alternating (docs/benchmarks.md).
bench-durability: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/loadgen
	sh bench/run.sh durability $(BUILD)

# SQLite and PostgreSQL alternating on fresh servers (docs/benchmarks.md).
bench-pg: $(DEPS_STAMP)
	$(MAKE) $(BUILD)/chatd $(BUILD)/loadgen
	sh bench/run.sh pg $(BUILD)

# ---- fuzzing (tests/fuzz/) ----
include tests/fuzz/fuzz.mk
