#!/bin/sh
# bench/report.sh RESULTS BUILD: turns the name=value lines of one bench/run.sh run
# into docs/benchmarks.md (on stdout).
set -eu
results=$1
build=${2:-build}

val() { sed -n "s/^$1=//p" "$results" | tail -n 1; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
or_na() { if [ -n "${1:-}" ]; then echo "$1"; else echo "n/a"; fi; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)

cat <<EOF
# Benchmarks

Written by \`make bench\` (bench/run.sh full, then bench/report.sh); \`make bench-quick\`
runs a reduced set in under a minute and prints the headline figures as name=value.

## Machine and method

- Machine: $(nproc) cores ($cpu), $mem, Linux $(uname -r); run on $(date -u +%Y-%m-%d).
- chatd ($("$build/chatd" --version 2>/dev/null || echo chatd)) and redis-server ($(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')) run pinned to core 0
  (\`taskset -c 0\`); the load generator (\`$build/loadgen\`, C on libuv + wslay) runs
  pinned to core 1. Everything on 127.0.0.1.
- chatd runs its defaults except: limits opened up (messages, connects, registrations),
  \`send_queue_bytes = 16 MiB\`, \`password_cost = 10\` (so setting up 1,000 users takes
  seconds), log level warn. Durability is unchanged: WAL, \`synchronous=NORMAL\`, every
  acknowledged message committed before its ack.
- Open loop: senders fire on a 1 ms timer at the target rate whatever the server answers,
  with the send time in the payload; latency is measured at the receiving client. Each
  step: 0.5 s warm-up, then the measured window; messages sent in the window that have not
  arrived 2 s after it count as missing (the step then fails).
- Redis is driven by the same generator speaking RESP: SUBSCRIBE on as many connections as
  chatd has recipients, one publisher connection, the same 100-byte payload and rates.
- CPU seconds are read from /proc for the server and from getrusage for the generator.

## Fan-out: one room of 1,000 members, 100-byte messages

| rate (msg/s) | chatd deliveries/s | chatd p50 / p99 ms | chatd CPU s | Redis deliveries/s | Redis p50 / p99 ms | Redis CPU s | chatd/Redis |
|---|---|---|---|---|---|---|---|
EOF

for r in $(sed -n 's/^chatd\.fanout_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
    c=$(val "chatd.fanout_r${r}_per_s"); x=$(val "redis.fanout_r${r}_per_s")
    printf '| %s | %s | %s / %s | %s | %s | %s / %s | %s | %s |\n' "$r" \
        "$(or_na "$c")" "$(or_na "$(val "chatd.fanout_r${r}_delivery_p50_ms")")" \
        "$(or_na "$(val "chatd.fanout_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "chatd.fanout_r${r}_server_cpu_s")")" \
        "$(or_na "$x")" "$(or_na "$(val "redis.fanout_r${r}_delivery_p50_ms")")" \
        "$(or_na "$(val "redis.fanout_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "redis.fanout_r${r}_server_cpu_s")")" "$(ratio "$c" "$x")"
done

fc=$(val chatd.fanout_best_per_s); fr=$(val redis.fanout_best_per_s)
cat <<EOF

Best rate with p99 under 50 ms: chatd $(or_na "$fc") deliveries/s, Redis $(or_na "$fr")
deliveries/s: **chatd/Redis = $(ratio "$fc" "$fr")**. Event-loop lag p99 of chatd during
fan-out, by step: $(grep '^chatd.fanout_r[0-9]*_loop_lag_p99_ms=' "$results" | sed 's/^chatd.fanout_r\([0-9]*\)_loop_lag_p99_ms=/\1 msg\/s: /; s/$/ ms;/' | tr '\n' ' ')

## 1:1 chat: 100 pairs in direct rooms

| rate (msg/s) | ack p50 / p99 ms | delivery p50 / p99 ms | chatd CPU s | loop lag p99 ms |
|---|---|---|---|---|
EOF
for r in $(sed -n 's/^chatd\.pairs_r\([0-9]*\)_per_s=.*/\1/p' "$results"); do
    printf '| %s | %s / %s | %s / %s | %s | %s |\n' "$r" \
        "$(or_na "$(val "chatd.pairs_r${r}_ack_p50_ms")")" "$(or_na "$(val "chatd.pairs_r${r}_ack_p99_ms")")" \
        "$(or_na "$(val "chatd.pairs_r${r}_delivery_p50_ms")")" "$(or_na "$(val "chatd.pairs_r${r}_delivery_p99_ms")")" \
        "$(or_na "$(val "chatd.pairs_r${r}_server_cpu_s")")" "$(or_na "$(val "chatd.pairs_r${r}_loop_lag_p99_ms")")"
done

cat <<EOF

## Durable throughput: 50 senders, 64 messages in flight each

| acked messages/s | ack p50 / p99 ms | chatd CPU s | loop lag p99 ms |
|---|---|---|---|
| $(or_na "$(val chatd.durable_acked_per_s)") | $(or_na "$(val chatd.durable_ack_p50_ms)") / $(or_na "$(val chatd.durable_ack_p99_ms)") | $(or_na "$(val chatd.durable_server_cpu_s)") | $(or_na "$(val chatd.durable_loop_lag_p99_ms)") |

Every acknowledged message was committed (WAL, group commit) before its ack.

## Auth

| token refreshes/s (RS256 signing) | WebSocket upgrades/s |
|---|---|
| $(or_na "$(val chatd.auth_refresh_per_s)") | $(or_na "$(val chatd.auth_upgrades_per_s)") |

## Idle connections

| connections | RSS before / after (KiB) | RSS per connection (bytes) | CPU while idle (% of a core) | loop lag p99 ms |
|---|---|---|---|---|
| $(or_na "$(val chatd.idle_open)") | $(or_na "$(val chatd.idle_rss_before_kb)") / $(or_na "$(val chatd.idle_rss_after_kb)") | $(or_na "$(val chatd.idle_rss_per_conn_bytes)") | $(or_na "$(val chatd.idle_cpu_pct)") | $(or_na "$(val chatd.idle_loop_lag_p99_ms)") |

## Raw results

<details><summary>every name=value line of this run</summary>

\`\`\`
$(cat "$results")
\`\`\`
</details>
EOF
