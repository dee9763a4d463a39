#!/bin/sh
# bench/report.sh RESULTS BUILD [COMMANDS] [OLD_REPORT]: turns the name=value lines of
# one bench/run.sh run into docs/benchmarks.md (on stdout). COMMANDS is the list of
# commands the run used; the hand-written notes of OLD_REPORT (from "## What these
# numbers say" on) are carried over, since no script can write them.
set -eu
results=$1
build=${2:-build}
commands=${3:-}
old=${4:-}

# A generator busier than this in a step is part of what that step measured.
BUSY_BOUND=80

val() { sed -n "s/^$1=//p" "$results" | tail -n 1; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
or_na() { if [ -n "${1:-}" ]; then echo "$1"; else echo "n/a"; fi; }
# gen TARGET SCENARIO_STEP: "CPU s (busy %)" of the generator, starred when bound
gen() {
    c=$(val "$1.${2}_loadgen_cpu_s"); b=$(val "$1.${2}_loadgen_busy_pct")
    if [ -z "$c" ]; then echo "n/a"; return; fi
    if [ -n "$b" ] && [ "$b" -ge "$BUSY_BOUND" ]; then echo "$c ($b%)*"; else echo "$c (${b:-?}%)"; fi
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)

cat <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh full, then bench/report.sh); \`make bench-quick\`
runs a reduced set in under a minute and prints the headline figures as name=value.

## Machine and method

- Machine: $(nproc) cores ($cpu), $mem, Linux $(uname -r); run on $(date -u +%Y-%m-%d).
- chatd ($("$build/chatd" --version 2>/dev/null || echo chatd)) and redis-server ($(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')) run pinned to core 0
  (\`taskset -c 0\`); the load generator (\`$build/loadgen\`, C on libuv) runs
  pinned to core 1. Everything on 127.0.0.1. The auth scenario runs twice: with chatd
  pinned to core 0, and with chatd unpinned (both cores, core 1 shared with the
  generator).
- chatd runs its defaults except: limits opened up (messages, connects, registrations),
  \`send_queue_bytes = 16 MiB\`, \`password_cost = 10\` (so setting up 1,000 users takes
  seconds), log level warn. Durability is the default, \`[database] durability = full\`:
  WAL with \`synchronous=FULL\`, every acknowledged message committed and its WAL fsynced
  before its ack (\`make bench-durability\` compares it with \`process\`).
- Open loop: senders fire on a 1 ms timer at the target rate whatever the server answers,
  with the send time in the payload; latency is measured at the receiving client. Each
  step: 0.5 s warm-up, then the measured window; messages sent in the window that have not
  arrived 2 s after it count as missing (the step then fails).
- Redis is driven by the same generator speaking RESP: SUBSCRIBE on as many connections as
  chatd has recipients, one publisher connection, the same 100-byte payload and rates.
  Both targets share one receive path ($(sed -n 's/^chatd\.fanout_loadgen_io=//p' "$results" | tail -n 1)): a multishot recv per
  connection on io_uring (epoll and read(2) where the kernel has none), every whole
  frame or reply of a read parsed in place, no allocation per message, the clock read
  once per batch of reads. Each scenario starts once chatd and Redis are idle (the
  previous one's tear-down finished).
- CPU seconds are read from /proc for the server and from getrusage for the generator,
  over the measured window. "generator CPU s (busy %)" is the generator's share of its
  core; a star marks a step where it was at least ${BUSY_BOUND}% busy: there the latency
  (and the rate, if it fell short) is partly the generator's, not the server's.

## Fan-out: one room of 1,000 members, 100-byte messages

| rate (msg/s) | chatd deliveries/s | chatd p50 / p99 ms | chatd CPU s | generator CPU s (busy) | Redis deliveries/s | Redis p50 / p99 ms | Redis CPU s | generator CPU s (busy) | chatd/Redis |
|---|---|---|---|---|---|---|---|---|---|
EOF

for r in $(sed -n 's/^chatd\.fanout_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
    c=$(val "chatd.fanout_r${r}_per_s"); x=$(val "redis.fanout_r${r}_per_s")
    printf '| %s | %s | %s / %s | %s | %s | %s | %s / %s | %s | %s | %s |\n' "$r" \
        "$(or_na "$c")" "$(or_na "$(val "chatd.fanout_r${r}_delivery_p50_ms")")" \
        "$(or_na "$(val "chatd.fanout_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "chatd.fanout_r${r}_server_cpu_s")")" "$(gen chatd "fanout_r${r}")" \
        "$(or_na "$x")" "$(or_na "$(val "redis.fanout_r${r}_delivery_p50_ms")")" \
        "$(or_na "$(val "redis.fanout_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "redis.fanout_r${r}_server_cpu_s")")" "$(gen redis "fanout_r${r}")" \
        "$(ratio "$c" "$x")"
done

fc=$(val chatd.fanout_best_per_s); fr=$(val redis.fanout_best_per_s)
bound=$(grep -E '^(chatd|redis)\.fanout_r[0-9]+_loadgen_busy_pct=' "$results" |
        awk -F'[.=]' -v b="$BUSY_BOUND" '$3 >= b { sub(/^fanout_r/, "", $2); sub(/_loadgen_busy_pct/, "", $2);
            printf "%s%s at %s msg/s (%s%%)", sep, ($1 == "redis" ? "Redis" : "chatd"), $2, $3; sep = "; " }')
cat <<EOF

Best rate with p99 under 50 ms: chatd $(or_na "$fc") deliveries/s, Redis $(or_na "$fr")
deliveries/s: **chatd/Redis = $(ratio "$fc" "$fr")**. Highest rate delivered whatever the
latency: chatd $(or_na "$(val chatd.fanout_max_per_s)"), Redis $(or_na "$(val redis.fanout_max_per_s)")
(chatd/Redis = $(ratio "$(val chatd.fanout_max_per_s)" "$(val redis.fanout_max_per_s)")).
Event-loop lag p99 of chatd during fan-out, by step: $(grep '^chatd.fanout_r[0-9]*_loop_lag_p99_ms=' "$results" | sed 's/^chatd.fanout_r\([0-9]*\)_loop_lag_p99_ms=/\1 msg\/s: /; s/$/ ms;/' | tr '\n' ' ')

Generator-bound steps (generator at least ${BUSY_BOUND}% busy): ${bound:-none}.
Generator CPU per message received, by step: $(grep -E '^(chatd|redis)\.fanout_r[0-9]+_loadgen_us_per_msg=' "$results" | sed 's/^\([a-z]*\)\.fanout_r\([0-9]*\)_loadgen_us_per_msg=\(.*\)/\1 \2 msg\/s: \3 us;/' | tr '\n' ' ')
Messages per read: $(grep -E '^(chatd|redis)\.fanout_r[0-9]+_loadgen_msgs_per_read=' "$results" | sed 's/^\([a-z]*\)\.fanout_r\([0-9]*\)_loadgen_msgs_per_read=\(.*\)/\1 \2 msg\/s: \3;/' | tr '\n' ' ')

## 1:1 chat: 100 pairs in direct rooms

Redis has no counterpart here (pub/sub has no acknowledgement or storage).

| rate (msg/s) | ack p50 / p99 ms | delivery p50 / p99 ms | chatd CPU s | generator CPU s (busy) | loop lag p99 ms |
|---|---|---|---|---|---|
EOF
for r in $(sed -n 's/^chatd\.pairs_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
    printf '| %s | %s / %s | %s / %s | %s | %s | %s |\n' "$r" \
        "$(or_na "$(val "chatd.pairs_r${r}_ack_p50_ms")")" "$(or_na "$(val "chatd.pairs_r${r}_ack_p99_ms")")" \
        "$(or_na "$(val "chatd.pairs_r${r}_delivery_p50_ms")")" "$(or_na "$(val "chatd.pairs_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "chatd.pairs_r${r}_server_cpu_s")")" "$(gen chatd "pairs_r${r}")" \
        "$(or_na "$(val "chatd.pairs_r${r}_loop_lag_p99_ms")")"
done

cat <<EOF

## Durable throughput: 50 senders, 64 messages in flight each

No Redis counterpart (Redis here runs without persistence).

| acked messages/s | ack p50 / p99 ms | chatd CPU s | generator CPU s | loop lag p99 ms |
|---|---|---|---|---|
| $(or_na "$(val chatd.durable_acked_per_s)") | $(or_na "$(val chatd.durable_ack_p50_ms)") / $(or_na "$(val chatd.durable_ack_p99_ms)") | $(or_na "$(val chatd.durable_server_cpu_s)") | $(or_na "$(val chatd.durable_loadgen_cpu_s)") | $(or_na "$(val chatd.durable_loop_lag_p99_ms)") |

Every acknowledged message was committed (WAL, group commit) before its ack.

## Auth

Refreshes: 8 threads, each on one kept-alive connection rotating its own refresh token
(RS256 signing). Upgrades: 64 clients each opening a WebSocket, counting the 101, closing
and opening again. No Redis counterpart.

| chatd on | refreshes/s | chatd CPU s | generator CPU s | seconds | upgrades/s | chatd CPU s | generator CPU s | seconds |
|---|---|---|---|---|---|---|---|---|
EOF
for t in chatd chatd2; do
    if [ "$t" = chatd ]; then where="core 0"; else where="both cores (unpinned)"; fi
    [ -n "$(val "$t.auth_refresh_per_s")" ] || continue
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$where" \
        "$(val "$t.auth_refresh_per_s")" "$(or_na "$(val "$t.auth_refresh_server_cpu_s")")" \
        "$(or_na "$(val "$t.auth_refresh_loadgen_cpu_s")")" "$(or_na "$(val "$t.auth_refresh_secs")")" \
        "$(or_na "$(val "$t.auth_upgrades_per_s")")" "$(or_na "$(val "$t.auth_upgrade_server_cpu_s")")" \
        "$(or_na "$(val "$t.auth_upgrade_loadgen_cpu_s")")" "$(or_na "$(val "$t.auth_upgrade_secs")")"
done

cat <<EOF

## Idle connections

No Redis counterpart.

| connections | RSS before / after (KiB) | RSS per connection (bytes) | chatd CPU while idle (% of a core) | chatd / generator CPU s | loop lag p99 ms |
|---|---|---|---|---|---|
| $(or_na "$(val chatd.idle_open)") | $(or_na "$(val chatd.idle_rss_before_kb)") / $(or_na "$(val chatd.idle_rss_after_kb)") | $(or_na "$(val chatd.idle_rss_per_conn_bytes)") | $(or_na "$(val chatd.idle_cpu_pct)") | $(or_na "$(val chatd.idle_server_cpu_s)") / $(or_na "$(val chatd.idle_loadgen_cpu_s)") | $(or_na "$(val chatd.idle_loop_lag_p99_ms)") |

EOF

# PostgreSQL beside SQLite, when this run had its server.
if [ -n "$(val pg.durable_acked_per_s)" ] || [ -n "$(val pg.fanout_max_per_s)" ]; then
    cat <<EOF

## PostgreSQL: this run

The fan-out, 1:1 and durable scenarios again, in the same order, on a chatd whose
\`[database] url\` names a fresh database on a throwaway PostgreSQL server
(\`scripts/pg-throwaway.sh\`, $("$(pg_config --bindir)/postgres" --version 2>/dev/null | sed 's/.*(PostgreSQL) //'), its defaults with fsync on) on the same machine, pinned as the commands below say. "PostgreSQL CPU s" is every
process of that server (backends, WAL writer, checkpointer) over the measured window;
"chatd CPU s" is chatd's alone.

| scenario | SQLite | PostgreSQL | chatd CPU s (SQLite / PostgreSQL) | PostgreSQL CPU s |
|---|---|---|---|---|
EOF
    for r in $(sed -n 's/^pg\.fanout_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
        printf '| fan-out %s msg/s: deliveries/s, p50 / p99 ms | %s, %s / %s | %s, %s / %s | %s / %s | %s |\n' "$r" \
            "$(or_na "$(val "chatd.fanout_r${r}_per_s")")" "$(or_na "$(val "chatd.fanout_r${r}_delivery_p50_ms")")" \
            "$(or_na "$(val "chatd.fanout_r${r}_delivery_p99_ms")")" \
            "$(or_na "$(val "pg.fanout_r${r}_per_s")")" "$(or_na "$(val "pg.fanout_r${r}_delivery_p50_ms")")" \
            "$(or_na "$(val "pg.fanout_r${r}_delivery_p99_ms")")" \
            "$(or_na "$(val "chatd.fanout_r${r}_server_cpu_s")")" "$(or_na "$(val "pg.fanout_r${r}_server_cpu_s")")" \
            "$(or_na "$(val "pg.fanout_r${r}_db_cpu_s")")"
    done
    for r in $(sed -n 's/^pg\.pairs_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
        printf '| 1:1 %s msg/s: ack p50 / p99 ms | %s / %s | %s / %s | %s / %s | %s |\n' "$r" \
            "$(or_na "$(val "chatd.pairs_r${r}_ack_p50_ms")")" "$(or_na "$(val "chatd.pairs_r${r}_ack_p99_ms")")" \
            "$(or_na "$(val "pg.pairs_r${r}_ack_p50_ms")")" "$(or_na "$(val "pg.pairs_r${r}_ack_p99_ms")")" \
            "$(or_na "$(val "chatd.pairs_r${r}_server_cpu_s")")" "$(or_na "$(val "pg.pairs_r${r}_server_cpu_s")")" \
            "$(or_na "$(val "pg.pairs_r${r}_db_cpu_s")")"
    done
    printf '| durable: acked messages/s (ack p99 ms) | %s (%s) | %s (%s) | %s / %s | %s |\n' \
        "$(or_na "$(val chatd.durable_acked_per_s)")" "$(or_na "$(val chatd.durable_ack_p99_ms)")" \
        "$(or_na "$(val pg.durable_acked_per_s)")" "$(or_na "$(val pg.durable_ack_p99_ms)")" \
        "$(or_na "$(val chatd.durable_server_cpu_s)")" "$(or_na "$(val pg.durable_server_cpu_s)")" \
        "$(or_na "$(val pg.durable_db_cpu_s)")"
fi

cat <<EOF

## Commands of this run

\`\`\`
$(if [ -n "$commands" ] && [ -f "$commands" ]; then cat "$commands"; else echo "(not recorded)"; fi)
\`\`\`

## Raw results

<details><summary>every name=value line of this run</summary>

\`\`\`
$(cat "$results")
\`\`\`
</details>
EOF

# The notes: carried over as written, for whoever ran the benchmark to bring up to date.
if [ -n "$old" ] && [ -f "$old" ] && grep -q '^## What these numbers say' "$old"; then
    echo
    sed -n '/^## What these numbers say/,$p' "$old"
fi
