#!/bin/sh
# run.sh BUILD_DIR [INTEGRATION_TEST_FILE...]: the whole test suite against one build.
#
# Runs BUILD_DIR/unit_tests, then the integration tests (node --test, against
# BUILD_DIR/chatd) once per storage engine, with CHATD_FUZZ_SMOKE=FUZZ_BUILD_DIR the
# fuzz smoke run (tests/fuzz/smoke.sh), and (on a whole run) the layering check, prints
# a summary of each, and ends with one line
# "N passed, N failed" (the totals). Exits non-zero when anything failed or nothing ran.
#
# PostgreSQL: when its server binaries are installed, one throwaway server
# (scripts/pg-throwaway.sh, fsync off) serves the whole run: CHATD_TEST_PG_URL names it
# for the unit tests, and the integration files run twice, on SQLite and then with
# CHATD_TEST_ENGINE=pg (each chatd on a database of its own; files that start no server
# through the harness run on the first pass only). Without them (and without a
# CHATD_TEST_PG_URL given), the PostgreSQL cases and pass are skipped, said in one line.
# CHATD_TEST_ENGINES="sqlite" (or "pg") runs the integration files on that engine only.
set -u

cd "$(dirname "$0")/.."
BUILD=${1:-build}
[ $# -gt 0 ] && shift
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chatd-run.XXXXXX")
pg_started=no
cleanup() {
    [ "$pg_started" = yes ] && sh scripts/pg-throwaway.sh stop "$tmp" immediate
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL for the run ------------------------------------------------------------
pg_fail=0
pg_note=
if sh scripts/pg-throwaway.sh check; then
    echo "== PostgreSQL (scripts/pg-throwaway.sh, for this run)"
    if url=$(sh scripts/pg-throwaway.sh start "$tmp" --no-fsync); then
        pg_started=yes
        CHATD_TEST_PG_URL=$url
        export CHATD_TEST_PG_URL
        echo "PostgreSQL: $("$(pg_config --bindir)/postgres" --version), at $url"
    else
        echo "PostgreSQL: the throwaway server did not start"
        pg_fail=1
        unset CHATD_TEST_PG_URL
    fi
elif [ -n "${CHATD_TEST_PG_URL:-}" ]; then
    echo "PostgreSQL: server binaries not installed; using CHATD_TEST_PG_URL=$CHATD_TEST_PG_URL"
else
    pg_note="PostgreSQL server binaries not installed (postgresql-15)"
    echo "PostgreSQL: $pg_note: its unit cases and integration pass are skipped"
fi
echo

# --- unit tests: the runner's last line is "N passed, N failed" --------------------
unit_pass=0
unit_fail=0
echo "== unit tests ($BUILD/unit_tests)"
if [ -x "$BUILD/unit_tests" ]; then
    # Shown as it runs, and kept for the count (sh has no pipefail: the status goes
    # through a file).
    # A hung test must fail the run, not stall it: CHATD_UNIT_TIMEOUT seconds (default
    # 900) for the whole runner.
    { timeout -k 10 "${CHATD_UNIT_TIMEOUT:-900}" "$BUILD/unit_tests" 2>&1
      echo $? > "$tmp/unit.rc"; } | tee "$tmp/unit.out"
    unit_rc=$(cat "$tmp/unit.rc")
    [ "$unit_rc" -eq 124 ] && echo "unit_tests: still running after ${CHATD_UNIT_TIMEOUT:-900} s: stopped"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/unit.out" | tail -n 1)
    if [ -n "$line" ]; then
        unit_pass=${line%% passed*}
        unit_fail=${line#*, }
        unit_fail=${unit_fail%% failed*}
    fi
    # A crash (a sanitizer report, an abort) ends the runner before its summary, or
    # leaves a non-zero status with no failure counted: count it as one failure.
    if [ "$unit_rc" -ne 0 ] && [ "$unit_fail" -eq 0 ]; then
        echo "unit_tests: exited with status $unit_rc"
        unit_fail=$((unit_fail + 1))
    fi
else
    echo "unit_tests: $BUILD/unit_tests not found"
    unit_fail=1
fi
echo "unit tests: $unit_pass passed, $unit_fail failed"

# --- integration tests, per engine: spec output for people, TAP in a file for counts ---
int_pass=0
int_fail=0
int_summary=
if [ $# -gt 0 ]; then
    files="$*"
else
    files=$(ls tests/integration/*.test.mjs 2>/dev/null)
fi
concurrency=
# --test-concurrency came with node 20.10; older nodes pick their own.
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
    concurrency=--test-concurrency=2
fi
# A test that hangs fails after this many ms instead of stalling the suite.
if node --help 2>/dev/null | grep -q -- '--test-timeout'; then
    concurrency="$concurrency --test-timeout=${CHATD_TEST_TIMEOUT:-300000}"
fi

# Files that start no server through the harness (they run chatd with a config of their
# own, or only its command line) test the same thing on both passes: SQLite's only.
ONE_PASS="tests/integration/config-keys.test.mjs tests/integration/walkthrough.test.mjs"

# integration ENGINE LABEL FILES: one pass with CHATD_TEST_ENGINE=ENGINE; adds to the
# totals and to the per-engine summary.
integration() {
    engine=$1 label=$2 pass_files=$3
    p=0 f=0
    echo
    echo "== integration tests on $label (CHATD_BIN=$BUILD/chatd)"
    start=$(date +%s)
    if [ -z "$pass_files" ]; then
        echo "integration tests: none found"
    elif [ ! -x "$BUILD/chatd" ]; then
        echo "integration tests: $BUILD/chatd not found"
        f=1
    else
        tap=$tmp/int-$engine.tap
        # shellcheck disable=SC2086
        CHATD_TEST_ENGINE=$engine CHATD_BIN=$BUILD/chatd node --test $concurrency \
            --test-reporter=spec --test-reporter-destination=stdout \
            --test-reporter=tap --test-reporter-destination="$tap" \
            $pass_files
        rc=$?
        count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$tap" | tail -n 1; }
        c=$(count pass); p=${c:-0}
        c=$(count fail); f=${c:-0}
        c=$(count cancelled); f=$((f + ${c:-0}))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "node --test: exited with status $rc"
            f=1
        fi
    fi
    line="integration tests on $label: $p passed, $f failed ($(( $(date +%s) - start )) s)"
    echo "$line"
    int_summary="$int_summary$line
"
    int_pass=$((int_pass + p))
    int_fail=$((int_fail + f))
}

# A chatd built before its PostgreSQL engine has no `[database] url` key.
has_pg_engine() {
    "$BUILD/chatd" --help-config 2>/dev/null |
        awk '/^\[/ { s = ($0 == "[database]"); next } s && /^url *=/ { f = 1 } END { exit !f }'
}
[ -x "$BUILD/chatd" ] && ! has_pg_engine && pg_note="$BUILD/chatd has no [database] url"

engines=${CHATD_TEST_ENGINES:-sqlite pg}
case " $engines " in *" sqlite "*) integration sqlite SQLite "$files" ;; esac
case " $engines " in
    *" pg "*)
        if [ -n "${CHATD_TEST_PG_URL:-}" ] && [ -z "$pg_note" ]; then
            pg_files=
            for f in $files; do
                case " $ONE_PASS " in *" $f "*) ;; *) pg_files="$pg_files $f" ;; esac
            done
            integration pg PostgreSQL "$pg_files"
        elif [ "$pg_fail" -eq 0 ]; then
            line="integration tests on PostgreSQL: skipped ($pg_note)"
            echo
            echo "$line"
            int_summary="$int_summary$line
"
        fi
        ;;
esac

# --- fuzz smoke (when CHATD_FUZZ_SMOKE names the fuzz build, as `make test` does) -----
# Each libFuzzer target runs a few seconds from its committed corpus: one entry each.
fuzz_pass=0
fuzz_fail=0
if [ -n "${CHATD_FUZZ_SMOKE:-}" ]; then
    echo
    echo "== fuzz smoke ($CHATD_FUZZ_SMOKE, ${CHATD_FUZZ_SECONDS:-8} s per target)"
    sh tests/fuzz/smoke.sh "$CHATD_FUZZ_SMOKE" "${CHATD_FUZZ_SECONDS:-8}" > "$tmp/fuzz.out" 2>&1
    fuzz_rc=$?
    cat "$tmp/fuzz.out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/fuzz.out" | tail -n 1)
    if [ -n "$line" ]; then
        fuzz_pass=${line%% passed*}
        fuzz_fail=${line#*, }
        fuzz_fail=${fuzz_fail%% failed*}
    fi
    if [ "$fuzz_rc" -ne 0 ] && [ "$fuzz_fail" -eq 0 ]; then
        fuzz_fail=1
    fi
    echo "fuzz smoke: $fuzz_pass passed, $fuzz_fail failed"
fi

# --- the module boundaries (scripts/check-layering.sh), on a whole run only ----------
lay_pass=0
lay_fail=0
if [ $# -eq 0 ]; then
    echo
    echo "== layering (scripts/check-layering.sh)"
    sh scripts/check-layering.sh > "$tmp/lay.out" 2>&1
    lay_rc=$?
    cat "$tmp/lay.out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/lay.out" | tail -n 1)
    if [ -n "$line" ]; then
        lay_pass=${line%% passed*}
        lay_fail=${line#*, }
        lay_fail=${lay_fail%% failed*}
    fi
    [ "$lay_rc" -ne 0 ] && [ "$lay_fail" -eq 0 ] && lay_fail=1
    echo "layering: $lay_pass passed, $lay_fail failed"
fi

# --- totals: the last line, for people and for CI ------------------------------------
pass=$((unit_pass + int_pass + fuzz_pass + lay_pass))
fail=$((unit_fail + int_fail + fuzz_fail + lay_fail + pg_fail))
echo
echo "unit tests: $unit_pass passed, $unit_fail failed"
printf '%s' "$int_summary"
[ "$pg_fail" -ne 0 ] && echo "PostgreSQL: the throwaway server did not start (1 failure)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
