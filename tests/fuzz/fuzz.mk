# fuzz.mk: libFuzzer targets (tests/fuzz/fuzz_*.c), included by the Makefile.
#
# `make fuzz` builds the server's library with clang, ASan and UBSan and coverage
# instrumentation into build-fuzz/, then one binary per target. `make fuzz-smoke` runs
# each target for FUZZ_SMOKE_SECONDS from its committed corpus (tests/fuzz/corpus/<name>)
# and fails on any crash, leak or sanitizer report. Longer runs: see docs/security.md.

FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(notdir $(FUZZ_SRC:.c=))
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_NAMES))
FUZZ_SMOKE_SECONDS ?= 8

fuzz: $(DEPS_STAMP)
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="-O1 -g" \
	  SANFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

# Each target links the whole library: the linker keeps what the target reaches.
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libchatd.a
	$(FUZZ_CC) $(CFLAGS_BASE) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(WARN) \
	  -o $@ $< $(FUZZ_BUILD)/libchatd.a $(LDLIBS)

fuzz-smoke: fuzz
	sh tests/fuzz/smoke.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)
