#!/bin/sh
# check-layering.sh: the module boundaries, checked by grep (make check-layering, run by
# make test). Prints each breach and ends with "N passed, N failed" over the rules.
#  1. a module includes only its own headers and the public ones (include/chatd/);
#  2. only a module's store implementation for an engine (*_store_sqlite*.c) speaks
#     SQLite: includes sqlite3.h or chatd/db_sqlite.h, calls sqlite3_*; only those
#     and the PostgreSQL ones (*_store_pg*.c) hold SQL;
#  3. module code reads no bus payload as JSON and builds none: it publishes, asks
#     and answers with the typed calls (bus_publish_ev, bus_request_ev,
#     bus_reply_ev) and its handlers read the decoded struct (ev->data).
#  4. core and the bus include no module header.
set -u
cd "$(dirname "$0")/.."

pass=0
fail=0
report() {   # report RULE OUTPUT
    if [ -z "$2" ]; then
        echo "ok   $1"
        pass=$((pass + 1))
    else
        echo "FAIL $1"
        echo "$2" | sed 's/^/     /'
        fail=$((fail + 1))
    fi
}

# 1. "x.h" includes in a module resolve inside that module (or are chatd/ headers).
out=$(for dir in src/modules/*/; do
    m=$(basename "$dir")
    grep -Hn '#include "' "$dir"*.c "$dir"*.h 2>/dev/null |
    while IFS= read -r line; do
        h=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
        case "$h" in
        chatd/*) ;;
        */*) echo "$line (another directory's header)" ;;
        *) [ -f "$dir$h" ] || echo "$line (not a header of module $m)" ;;
        esac
    done
done)
report "modules include only their own headers and include/chatd/" "$out"

# 2. SQLite stays in the store implementations.
others=$(find src/modules -name '*.[ch]' ! -name '*_store_sqlite*' | sort)
out=$(grep -HnE '#include *[<"](sqlite3\.h|chatd/db_sqlite\.h)[>"]|sqlite3_[a-z_]+ *\(|\bsqlite3 *\*' $others)
report "only *_store_sqlite* files in src/modules speak SQLite" "$out"
not_stores=$(find src/modules -name '*.[ch]' ! -name '*_store_sqlite*' ! -name '*_store_pg*' | sort)
out=$(grep -HnE '"[^"]*\b(SELECT|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM|CREATE (TABLE|INDEX|UNIQUE INDEX)|ALTER TABLE|DROP (TABLE|INDEX)|BEGIN|COMMIT|SAVEPOINT)\b' $not_stores)
report "no SQL text in src/modules outside *_store_sqlite* and *_store_pg* files" "$out"

# 3. Typed events only.
out=$(grep -HnE '\->payload\b|\bbus_event_new *\(|\bbus_publish *\(|\bbus_post(_wait)? *\(|\bbus_request *\(|\bbus_reply *\(|\bbus_reply_fn\b' \
      $(find src/modules -name '*.[ch]' | sort) | grep -vE '^[^:]+:[0-9]+: *(/?\*|//)')
report "module code publishes, asks and answers only typed events" "$out"

# 4. Dependencies point one way.
out=$(grep -HnE '#include *"[^"]*(modules/|_internal\.h)' src/core/*.c src/core/*.h src/bus/*.c src/bus/*.h 2>/dev/null |
      grep -vE '"(bus|db|http|token|lifecycle|cli|ws_stream)_internal\.h"|"(http_internal|db_internal|token_internal|bus_internal)\.h"')
report "core and the bus include no module header" "$out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
