#!/bin/sh
# file-structure.sh BUILD: the structure figures docs/architecture.md quotes: source
# files over 400 lines, and pairs of files in one folder that call each other both ways
# (read from the objects' symbol tables, so static helpers do not count).
set -eu
build=${1:-build}
echo "files over 400 lines:"
find src include -name '*.[ch]' | sort | while read -r f; do
    n=$(wc -l < "$f")
    [ "$n" -gt 400 ] && echo "  $n $f"
done || true
echo "pairs of files in one folder calling each other both ways:"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find "$build/src" -name '*.o' | sort | while read -r o; do
    f=${o#"$build"/}
    [ -f "${f%.o}.c" ] || continue    # an object left from a source since removed
    nm "$o" | awk -v f="$f" '$2 ~ /^[TDBR]$/ {print $3, f}' >> "$tmp/defs"
    nm -u "$o" | awk -v f="$f" '{print $2, f}' >> "$tmp/uses"
done
sort -u "$tmp/defs" > "$tmp/d"; sort -u "$tmp/uses" > "$tmp/u"
# edge: user -> definer, same folder
join "$tmp/u" "$tmp/d" | awk '{
    a=$2; b=$3; da=a; db=b; sub(/\/[^\/]*$/, "", da); sub(/\/[^\/]*$/, "", db);
    if (da == db && a != b) print a, b }' | sort -u > "$tmp/e"
awk '{print $2, $1}' "$tmp/e" | sort -u > "$tmp/r"
comm -12 "$tmp/e" "$tmp/r" | awk '$1 < $2 {sub(/\.o$/, ".c", $1); sub(/\.o$/, ".c", $2); print "  " $1 " <-> " $2}'
