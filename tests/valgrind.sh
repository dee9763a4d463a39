#!/bin/sh
# valgrind.sh BUILD_DIR [INTEGRATION_TEST_FILE...]: the integration suite with every chatd
# process under valgrind memcheck (through CHATD_WRAPPER, read by the test harness).
#
# What decides the outcome is memcheck's reports, one log per chatd process: any invalid
# read or write, invalid free, use of uninitialised values or definitely lost block fails.
# Under valgrind chatd runs 20 to 50 times slower, so tests with tight deadlines may fail
# for time alone; their count is printed for information, not counted.
set -u

cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift

logs=$(mktemp -d "${TMPDIR:-/tmp}/chatd-valgrind.XXXXXX")
echo "== valgrind memcheck: logs in $logs"
CHATD_WRAPPER="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
--errors-for-leak-kinds=definite --track-origins=no --num-callers=30 \
--suppressions=$PWD/tests/valgrind.supp \
--log-file=$logs/vg.%p.log" \
    sh tests/run.sh "$BUILD" "$@" > "$logs/suite.out" 2>&1
echo "suite under valgrind (deadlines not adjusted): $(tail -n 1 "$logs/suite.out")"

n=$(ls "$logs"/vg.*.log 2>/dev/null | wc -l)
bad=0
for f in "$logs"/vg.*.log; do
    [ -f "$f" ] || continue
    if grep -qE 'Invalid (read|write|free)|uninitialised|Mismatched free|definitely lost in|Syscall param .* points to' "$f"; then
        bad=$((bad + 1))
        echo "---- $f"
        sed -n '1,200p' "$f"
    fi
done
echo "valgrind: $n chatd processes checked, $bad with errors"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
