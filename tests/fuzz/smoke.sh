#!/bin/sh
# smoke.sh BUILD_DIR SECONDS: runs every fuzz target in BUILD_DIR for SECONDS from its
# committed corpus (tests/fuzz/corpus/<target>). New inputs go to a scratch directory,
# never into the committed corpus. A crash, leak, timeout or sanitizer report fails the
# target; its input is kept in BUILD_DIR/crashes/. Ends with "N passed, N failed".
set -u

cd "$(dirname "$0")/../.."
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-8}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chatd-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$BUILD/crashes"

pass=0
fail=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    bin=$BUILD/$name
    if [ ! -x "$bin" ]; then
        echo "fuzz $name: $bin not found"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$tmp/$name"
    # -timeout: one input taking seconds is a hang; -rss_limit_mb: bounded memory.
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
           -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$name-" \
           "$tmp/$name" "tests/fuzz/corpus/$name" > "$tmp/$name.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$name.log")
        echo "ok   fuzz $name (${runs:-?} runs in ${SECONDS_EACH}s)"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz $name: the report follows; the input is in $BUILD/crashes/"
        tail -n 60 "$tmp/$name.log"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
