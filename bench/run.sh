#!/bin/sh
# bench/run.sh quick|full|durability|pg BUILD_DIR [OUT]
#
# Starts chatd and redis-server on loopback, pinned to core 0, and drives both with
# build/loadgen pinned to core 1, so each side has one core of its own and the CPU
# seconds of each can be read apart. The auth scenario runs a second time with chatd
# unpinned (both cores, shared with the generator), since signing scales with cores.
# quick: a reduced set, one name=value line per headline figure. full: everything,
# written to OUT (default docs/benchmarks.md). durability: the cost of [database]
# durability = full against process, the two modes alternating on fresh data dirs for
# BENCH_ROUNDS rounds (default 3), so a loaded machine weighs on both alike.
#
# PostgreSQL: quick and full end with the fan-out, 1:1 and durable scenarios again on
# a chatd whose [database] url names a throwaway PostgreSQL server
# (scripts/pg-throwaway.sh: its defaults, fsync on), pinned to core 0 beside chatd
# (BENCH_PG_CPU="" leaves it unpinned), its CPU (every process of the server) read
# beside chatd's. pg: SQLite and PostgreSQL alternating on fresh servers for
# BENCH_ROUNDS rounds (1:1, durable, fan-out at BENCH_PG_FANOUT_RATES), medians of each.
#
# Environment: BENCH_RESULTS=FILE keeps the raw name=value lines; BENCH_DUR=S,
# BENCH_RATES=R1,R2 and BENCH_IDLE_CONNS=N shorten a full run (to check the whole path
# without the minutes).
set -eu

mode=${1:-quick}
build=${2:-build}
out=${3:-docs/benchmarks.md}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d /tmp/chatd-bench.XXXXXX)
results=$tmp/results.txt
commands=$tmp/commands.txt
chatd_pid=""
redis_pid=""
pg_pid=""
pg_url=""
db_url=""           # set: the next chatd runs on this PostgreSQL database
db_serial=0

for f in "$build/chatd" "$build/loadgen"; do
    [ -x "$f" ] || { echo "bench: $f is missing (make BUILD=$build $f)" >&2; exit 1; }
done
# The generator's parsers first: a figure must not rest on one that drops messages.
"$build/loadgen" --self-test > /dev/null || { echo "bench: loadgen --self-test failed" >&2; exit 1; }
command -v redis-server > /dev/null || {
    echo "bench: redis-server is missing (scripts/install-deps.sh installs it)" >&2
    exit 1
}

cleanup() {
    [ -n "$chatd_pid" ] && kill "$chatd_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "$pg_pid" ] && sh scripts/pg-throwaway.sh stop "$tmp" immediate || true
    if [ -n "${BENCH_RESULTS:-}" ] && [ -f "$results" ]; then
        cp "$results" "$BENCH_RESULTS"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Sockets: take what the hard limit allows (about 20,000 here).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
    server_cpu="taskset -c 0"
    client_cpu="taskset -c 1"
else
    server_cpu=""
    client_cpu=""
fi
pg_cpu=${BENCH_PG_CPU-$server_cpu}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_conf DATA_DIR [DURABILITY]: the bench configuration.
write_conf() {
cat > "$tmp/chatd.conf" <<EOF
# Limits opened up so the load generator measures the server, not its throttles.
[server]
listen = 127.0.0.1:0
data_dir = $1
max_connections = 30000
[auth]
password_cost = 10
[websocket]
send_queue_bytes = 16777216
[limits]
messages_per_s = 1000000
messages_burst = 1000000
typing_per_s = 1000
connects_per_s = 1000000
connects_burst = 1000000
registrations_per_min = 1000000
login_failures_per_min = 1000000
connections_per_user = 1000000
connections_per_address = 1000000
[log]
level = warn
[database]
$(if [ -n "$db_url" ]; then echo "url = $db_url"; else echo "durability = ${2:-full}"; fi)
EOF
}

# start_chatd DATA_DIR [CPU-PREFIX [DURABILITY]]: a chatd on a fresh data dir.
start_chatd() {
    write_conf "$1" "${3:-full}"
    cpu=${2-$server_cpu}
    : > "$tmp/chatd.out"
    $cpu "$build/chatd" -c "$tmp/chatd.conf" > "$tmp/chatd.out" 2> "$tmp/chatd.err" &
    chatd_pid=$!
    i=0
    while ! grep -q 'listening on' "$tmp/chatd.out" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 200 ] || ! kill -0 "$chatd_pid" 2>/dev/null; then
            echo "bench: chatd did not start:" >&2
            cat "$tmp/chatd.err" >&2
            exit 1
        fi
        sleep 0.05
    done
    chatd_port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/chatd.out" | head -n 1)
    echo "${cpu:-(unpinned)} $build/chatd -c chatd.conf${db_url:+  # [database] url = a fresh PostgreSQL database}" >> "$commands"
}

stop_chatd() {
    kill "$chatd_pid" 2>/dev/null || true
    wait "$chatd_pid" 2>/dev/null || true
    chatd_pid=""
}

start_redis() {
    redis_port=$(free_port)
    $server_cpu redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --maxclients 30000 --loglevel warning > "$tmp/redis.log" 2>&1 &
    redis_pid=$!
    echo "$server_cpu redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no --maxclients 30000" >> "$commands"
    i=0
    until redis-cli -p "$redis_port" ping > /dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 200 ] && { echo "bench: redis-server did not start" >&2; exit 1; }
        sleep 0.05
    done
}

# start_pg: the throwaway PostgreSQL server (fsync on); 1 when it is not installed or
# chatd has no PostgreSQL engine (no [database] url).
start_pg() {
    sh scripts/pg-throwaway.sh check || return 1
    "$build/chatd" --help-config 2>/dev/null |
        awk '/^\[/ { s = ($0 == "[database]"); next } s && /^url *=/ { f = 1 } END { exit !f }' ||
        return 1
    pg_url=$($pg_cpu sh scripts/pg-throwaway.sh start "$tmp") || exit 1
    pg_pid=$(head -n 1 "$tmp/pg/data/postmaster.pid")
    echo "${pg_cpu:-(unpinned)} sh scripts/pg-throwaway.sh start DIR  # $("$(pg_config --bindir)/postgres" --version), its defaults, fsync on" >> "$commands"
}

# use_pg_db: the next chatd gets a database of its own on the throwaway server.
use_pg_db() {
    db_serial=$((db_serial + 1))
    psql "$pg_url" -qAtc "CREATE DATABASE bench_$db_serial" > /dev/null || exit 1
    db_url=$(echo "$pg_url" | sed "s|/postgres\$|/bench_$db_serial|")
}

# settle: waits (at most 10 s) until the servers on core 0 are idle, so that one
# scenario's tear-down (chatd closing a thousand connections, writing their last_seen)
# does not land in the next one's measurement, Redis's included.
ticks() {
    t=0
    for p in $chatd_pid $redis_pid $pg_pid ${pg_pid:+$(pgrep -P "$pg_pid")}; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$t"
}
settle() {
    i=0
    a=$(ticks)
    while [ $i -lt 50 ]; do
        sleep 0.2
        b=$(ticks)
        [ $((b - a)) -le 1 ] && return 0
        a=$b
        i=$((i + 1))
    done
}

# lg PREFIX ARGS...: one loadgen run, once the servers are idle; its lines go to
# results with PREFIX.
lg() {
    prefix=$1
    shift
    settle
    echo "bench: $(($(date +%s) - start))s: $prefix: loadgen $*" >&2
    echo "$client_cpu $build/loadgen $*" >> "$commands"
    $client_cpu "$build/loadgen" "$@" | sed "s/^/${prefix}./" >> "$results" || {
        echo "bench: loadgen failed for $prefix" >&2
        return 1
    }
}

val() { sed -n "s/^$1=//p" "$results" | tail -n 1; }

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# median PATTERN: the median of the values of the result lines matching PATTERN.
median() {
    sed -n "s/^$1=//p" "$results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# all PATTERN: the values of the result lines matching PATTERN, in run order.
all() { sed -n "s/^$1=//p" "$results" | tr '\n' ' '; }

# One round per mode and per BENCH_ROUNDS, alternating: 1:1 pairs (ack p99 at 1,000
# msg/s) and durable senders (acks/s), each on a fresh server.
durability_rounds() {
    for r in $(seq 1 "${BENCH_ROUNDS:-3}"); do
        for m in full process; do
            start_chatd "$tmp/data-$m-$r" "$server_cpu" "$m"
            lg "$m.$r" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" \
                --scenario pairs --pairs 100 --rates 1000 --duration 5 --size 100 \
                --max-p99-ms 1000 --prefix p
            lg "$m.$r" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" \
                --scenario durable --senders 50 --window 64 --duration 5 --size 100 --prefix d
            stop_chatd
        done
    done
    for m in full process; do
        for k in durable_acked_per_s durable_ack_p99_ms pairs_r1000_ack_p99_ms; do
            echo "durability_${m}_${k}_median=$(median "$m\.[0-9]*\.$k")"
            echo "durability_${m}_${k}_runs=$(all "$m\.[0-9]*\.$k")"
        done
    done
    for k in durable_acked_per_s pairs_r1000_ack_p99_ms; do
        echo "durability_${k}_full_vs_process=$(ratio "$(median "full\.[0-9]*\.$k")" "$(median "process\.[0-9]*\.$k")")"
    done
    echo "loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
}

# pg_scenarios PREFIX RATES: fan-out, 1:1 and durable on a chatd on a fresh PostgreSQL
# database, as the SQLite ones ran.
pg_scenarios() {
    use_pg_db
    start_chatd "$tmp/data-$1"
    lg "$1" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --db-pid "$pg_pid" \
        --scenario fanout --members 1000 --rates "$2" --duration "$dur" --size 100 --prefix f
    lg "$1" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --db-pid "$pg_pid" \
        --scenario pairs --pairs 100 --rates "$pairs_rate" --duration "$dur" --size 100 \
        --max-p99-ms 1000 --prefix p
    lg "$1" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --db-pid "$pg_pid" \
        --scenario durable --senders 50 --window 64 --duration "$dur" --size 100 --prefix d
    stop_chatd
    db_url=""
}

# One round per engine and per BENCH_ROUNDS, alternating, each on a fresh server: 1:1
# pairs at 1,000 msg/s, durable senders, fan-out to 1,000 members.
pg_rounds() {
    start_pg || { echo "bench: no PostgreSQL server binaries (postgresql-15), or $build/chatd has no [database] url" >&2; exit 1; }
    dur=${BENCH_DUR:-5}
    fan_rates=${BENCH_PG_FANOUT_RATES:-500,1000}
    for r in $(seq 1 "${BENCH_ROUNDS:-3}"); do
        for e in sqlite pg; do
            db=
            if [ "$e" = pg ]; then
                use_pg_db
                db="--db-pid $pg_pid"
            fi
            start_chatd "$tmp/data-$e-$r"
            # shellcheck disable=SC2086
            lg "$e.$r" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" $db \
                --scenario pairs --pairs 100 --rates 1000 --duration "$dur" --size 100 \
                --max-p99-ms 1000 --prefix p
            # shellcheck disable=SC2086
            lg "$e.$r" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" $db \
                --scenario durable --senders 50 --window 64 --duration "$dur" --size 100 --prefix d
            # shellcheck disable=SC2086
            lg "$e.$r" --target chatd --port "$chatd_port" --server-pid "$chatd_pid" $db \
                --scenario fanout --members 1000 --rates "$fan_rates" --duration "$dur" \
                --size 100 --prefix f
            stop_chatd
            db_url=""
        done
    done
    keys="durable_acked_per_s durable_ack_p50_ms durable_ack_p99_ms durable_server_cpu_s
durable_db_cpu_s pairs_r1000_ack_p50_ms pairs_r1000_ack_p99_ms pairs_r1000_delivery_p99_ms
pairs_r1000_server_cpu_s pairs_r1000_db_cpu_s fanout_best_per_s fanout_max_per_s"
    for r in $(echo "$fan_rates" | tr ',' ' '); do
        keys="$keys fanout_r${r}_per_s fanout_r${r}_delivery_p50_ms fanout_r${r}_delivery_p99_ms"
        keys="$keys fanout_r${r}_server_cpu_s fanout_r${r}_db_cpu_s"
    done
    for e in sqlite pg; do
        for k in $keys; do
            echo "pg_mode_${e}_${k}_median=$(median "$e\.[0-9]*\.$k")"
            echo "pg_mode_${e}_${k}_runs=$(all "$e\.[0-9]*\.$k")"
        done
    done
    echo "pg_mode_durable_pg_vs_sqlite=$(ratio "$(median "pg\.[0-9]*\.durable_acked_per_s")" "$(median "sqlite\.[0-9]*\.durable_acked_per_s")")"
    echo "loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commands:"
    sort -u "$commands"
}

start=$(date +%s)
: > "$results"
: > "$commands"
if [ "$mode" = pg ]; then
    echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    pg_rounds
    exit 0
fi
if [ "$mode" = durability ]; then
    echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    durability_rounds
    exit 0
fi
start_chatd "$tmp/data"
start_redis

if [ "$mode" = quick ]; then
    rates="100,500,1000"
    dur=2
    idle_dur=2
    auth_dur=1
    idle_conns=2000
    pairs_rate=1000
else
    rates=${BENCH_RATES:-100,250,500,1000,1500,2000,3000,4000}
    dur=${BENCH_DUR:-5}
    idle_conns=${BENCH_IDLE_CONNS:-19000}
    idle_dur=$((dur * 2))
    auth_dur=$dur
    pairs_rate=1000
fi

# Idle first: the server's heap has not grown yet, so RSS growth is the connections'.
lg chatd --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario idle \
    --conns "$idle_conns" --duration "$idle_dur" --prefix i
lg chatd --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario fanout \
    --members 1000 --rates "$rates" --duration "$dur" --size 100 --prefix f
lg redis --target redis --port "$redis_port" --server-pid "$redis_pid" --scenario fanout \
    --members 1000 --rates "$rates" --duration "$dur" --size 100
lg chatd --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario pairs \
    --pairs 100 --rates "$pairs_rate" --duration "$dur" --size 100 --max-p99-ms 1000 --prefix p
lg chatd --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario durable \
    --senders 50 --window 64 --duration "$dur" --size 100 --prefix d
lg chatd --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario auth \
    --duration "$auth_dur" --prefix a

# Auth again with chatd on both cores (its loop, writer and signing threads may use
# core 1 too, which the generator shares): the bar's refresh figure is for 2 cores.
stop_chatd
start_chatd "$tmp/data2" ""
lg chatd2 --target chatd --port "$chatd_port" --server-pid "$chatd_pid" --scenario auth \
    --duration "$auth_dur" --prefix a2

# The same scenarios on PostgreSQL.
stop_chatd
if start_pg; then
    pg_scenarios pg "$rates"
else
    echo "bench: no PostgreSQL server binaries (postgresql-15), or $build/chatd has no [database] url: the PostgreSQL scenarios are skipped" >&2
fi

fan_chatd=$(val chatd.fanout_best_per_s)
fan_redis=$(val redis.fanout_best_per_s)
echo "fanout_deliveries_per_s=${fan_chatd:-0}"
echo "fanout_redis_deliveries_per_s=${fan_redis:-0}"
echo "fanout_vs_redis=$(ratio "$fan_chatd" "$fan_redis")"
echo "fanout_max_deliveries_per_s=$(val chatd.fanout_max_per_s)"
echo "fanout_max_vs_redis=$(ratio "$(val chatd.fanout_max_per_s)" "$(val redis.fanout_max_per_s)")"
echo "fanout_r100_delivery_p99_ms=$(val chatd.fanout_r100_delivery_p99_ms)"
echo "fanout_r100_redis_delivery_p99_ms=$(val redis.fanout_r100_delivery_p99_ms)"
# The generator's own cost: a step where it is busy most of the time measures it too.
for t in chatd redis; do
    for r in $(sed -n "s/^$t\.fanout_r\([0-9]*\)_per_s=.*/\1/p" "$results"); do
        echo "fanout_${t}_r${r}_server_cpu_s=$(val "$t.fanout_r${r}_server_cpu_s")"
        echo "fanout_${t}_r${r}_loadgen_cpu_s=$(val "$t.fanout_r${r}_loadgen_cpu_s")"
        echo "fanout_${t}_r${r}_loadgen_busy_pct=$(val "$t.fanout_r${r}_loadgen_busy_pct")"
        echo "fanout_${t}_r${r}_loadgen_us_per_msg=$(val "$t.fanout_r${r}_loadgen_us_per_msg")"
    done
done
echo "pairs_ack_p99_ms=$(val "chatd.pairs_r${pairs_rate}_ack_p99_ms")"
echo "pairs_delivery_p99_ms=$(val "chatd.pairs_r${pairs_rate}_delivery_p99_ms")"
echo "durable_acked_per_s=$(val chatd.durable_acked_per_s)"
echo "auth_refresh_per_s=$(val chatd.auth_refresh_per_s)"
echo "auth_upgrades_per_s=$(val chatd.auth_upgrades_per_s)"
echo "auth_2cores_refresh_per_s=$(val chatd2.auth_refresh_per_s)"
echo "auth_2cores_upgrades_per_s=$(val chatd2.auth_upgrades_per_s)"
echo "auth_2cores_refresh_server_cpu_s=$(val chatd2.auth_refresh_server_cpu_s)"
echo "auth_2cores_upgrade_server_cpu_s=$(val chatd2.auth_upgrade_server_cpu_s)"
echo "idle_conns=$(val chatd.idle_open)"
echo "idle_rss_per_conn_bytes=$(val chatd.idle_rss_per_conn_bytes)"
echo "idle_cpu_pct=$(val chatd.idle_cpu_pct)"
if [ -n "$pg_pid" ]; then
    echo "pg_fanout_deliveries_per_s=$(val pg.fanout_best_per_s)"
    echo "pg_fanout_max_deliveries_per_s=$(val pg.fanout_max_per_s)"
    echo "pg_pairs_ack_p99_ms=$(val "pg.pairs_r${pairs_rate}_ack_p99_ms")"
    echo "pg_pairs_delivery_p99_ms=$(val "pg.pairs_r${pairs_rate}_delivery_p99_ms")"
    echo "pg_pairs_server_cpu_s=$(val "pg.pairs_r${pairs_rate}_server_cpu_s")"
    echo "pg_pairs_db_cpu_s=$(val "pg.pairs_r${pairs_rate}_db_cpu_s")"
    echo "pg_durable_acked_per_s=$(val pg.durable_acked_per_s)"
    echo "pg_durable_ack_p99_ms=$(val pg.durable_ack_p99_ms)"
    echo "pg_durable_server_cpu_s=$(val pg.durable_server_cpu_s)"
    echo "pg_durable_db_cpu_s=$(val pg.durable_db_cpu_s)"
fi
echo "loop_lag_p99_ms_max=$(grep 'loop_lag_p99_ms=' "$results" | sed 's/.*=//' | sort -g | tail -n 1)"

echo "bench: $(($(date +%s) - start))s: done" >&2
if [ "$mode" = full ]; then
    sh bench/report.sh "$results" "$build" "$commands" "$out" > "$tmp/report.md"
    mv "$tmp/report.md" "$out"
    echo "bench: wrote $out" >&2
fi
