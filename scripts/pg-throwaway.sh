#!/bin/sh
# pg-throwaway.sh: a private PostgreSQL server for tests and benchmarks, in a directory.
#
#   pg-throwaway.sh check                 exit 0 when the server binaries are installed
#   pg-throwaway.sh start DIR [--no-fsync] start (initdb first when DIR has no cluster);
#                                          prints postgres://postgres@127.0.0.1:PORT/postgres
#   pg-throwaway.sh stop DIR [fast|immediate]   stop it (the data stays: start again
#                                          reuses it, on the same port when it is free)
#   pg-throwaway.sh url DIR               print the URL of a running one
#   pg-throwaway.sh run [--no-fsync] -- CMD [ARG...]
#                                          CMD with CHATD_TEST_PG_URL naming a server of
#                                          its own, stopped and removed after; without
#                                          the binaries, CMD alone (said in one line)
#
# The cluster lives in DIR/pg (log: DIR/pg/log); DIR/pg/url holds the URL. It listens on
# 127.0.0.1 only, on a free port, with no Unix socket, and trusts every local connection
# (superuser `postgres`, no password). `--no-fsync` is for a test suite that does not
# crash the machine: fsync=off makes commits cheap. initdb refuses to run as root, so
# as root everything runs as the `postgres` user, and DIR is made traversable for it.
set -eu

say() { echo "pg-throwaway: $*" >&2; }
die() { say "$*"; exit 1; }

bindir() {
    if command -v pg_config >/dev/null 2>&1; then
        pg_config --bindir
    else
        # Debian keeps the server binaries per major version, off PATH.
        ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
    fi
}

BIN=$(bindir)
have_binaries() { [ -n "$BIN" ] && [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ]; }

# Run a server binary as the owner of the cluster: `postgres` when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

pick_port() {
    # Random in 20000..59999; a port another process grabs between the check and the
    # bind makes pg_ctl fail, and start tries the next one.
    while :; do
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        port_in_use "$p" || { echo "$p"; return; }
    done
}

cluster_dir() {
    [ -n "${1:-}" ] || die "usage: $0 start|stop|url DIR"
    [ -d "$1" ] || die "no such directory: $1"
    d=$(cd "$1" && pwd)
    echo "$d/pg"
}

init_cluster() {
    pg=$1
    mkdir -p "$pg/data"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "no postgres user (install postgresql-15)"
        chown -R postgres: "$pg"
        # The postgres user must reach DIR/pg through DIR and its parents.
        chmod o+x "$(dirname "$pg")"
        runuser -u postgres -- test -w "$pg/data" ||
            die "the postgres user cannot reach $pg (a parent directory is closed to it)"
    fi
    as_owner "$BIN/initdb" -D "$pg/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 --no-instructions > "$pg/initdb.log" 2>&1 ||
        { cat "$pg/initdb.log" >&2; die "initdb failed"; }
}

try_start() {
    pg=$1; port=$2; fsync=$3
    # `-c` settings go on the command line so that a reused cluster gets them too.
    # max_connections: each chatd holds a writer and a read pool, and a test file may
    # run several servers at once (two files run in parallel).
    opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    opts="$opts -c max_connections=300 -c fsync=$fsync"
    if [ "$fsync" = off ]; then
        opts="$opts -c full_page_writes=off -c synchronous_commit=off"
    fi
    as_owner "$BIN/pg_ctl" -D "$pg/data" -l "$pg/log" -w -t 60 -o "$opts" start \
        > "$pg/pg_ctl.log" 2>&1
}

cmd_start() {
    dir=${1:-}; shift || true
    fsync=on
    for a in "$@"; do
        case $a in
            --no-fsync) fsync=off ;;
            *) die "unknown option: $a" ;;
        esac
    done
    have_binaries || die "PostgreSQL server binaries not found (install postgresql-15)"
    [ -n "$dir" ] && mkdir -p "$dir"
    pg=$(cluster_dir "$dir")
    [ -f "$pg/data/PG_VERSION" ] || init_cluster "$pg"
    if as_owner "$BIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
        die "already running: $(cat "$pg/url" 2>/dev/null)"
    fi
    port=
    [ -f "$pg/port" ] && ! port_in_use "$(cat "$pg/port")" && port=$(cat "$pg/port")
    tries=0
    while :; do
        [ -n "$port" ] || port=$(pick_port)
        if try_start "$pg" "$port" "$fsync"; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 5 ]; then
            cat "$pg/pg_ctl.log" >&2; tail -n 20 "$pg/log" >&2 2>/dev/null || true
            die "the server did not start"
        fi
        port=
    done
    url="postgres://postgres@127.0.0.1:$port/postgres"
    echo "$port" > "$pg/port"
    echo "$url" > "$pg/url"
    echo "$url"
}

cmd_stop() {
    dir=${1:-}; mode=${2:-fast}
    case $mode in fast|immediate|smart) ;; *) die "unknown stop mode: $mode" ;; esac
    [ -d "$dir" ] || return 0
    pg=$(cluster_dir "$dir")
    [ -f "$pg/data/PG_VERSION" ] || return 0
    if as_owner "$BIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$pg/data" -m "$mode" -w -t 60 stop >/dev/null
    fi
}

cmd_url() {
    pg=$(cluster_dir "${1:-}")
    as_owner "$BIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1 || die "not running: $pg"
    cat "$pg/url"
}

cmd_run() {
    flags=
    while [ $# -gt 0 ] && [ "$1" != -- ]; do flags="$flags $1"; shift; done
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "usage: $0 run [--no-fsync] -- CMD [ARG...]"
    if ! have_binaries; then
        say "PostgreSQL server binaries not installed: running without CHATD_TEST_PG_URL"
        unset CHATD_TEST_PG_URL
        "$@"
        return
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/chatd-pg.XXXXXX")
    trap 'cmd_stop "$dir" immediate; rm -rf "$dir"' EXIT
    trap 'exit 130' INT TERM
    # shellcheck disable=SC2086
    CHATD_TEST_PG_URL=$(cmd_start "$dir" $flags) || exit 1
    export CHATD_TEST_PG_URL
    rc=0
    "$@" || rc=$?
    return $rc
}

case ${1:-} in
    check) have_binaries ;;
    run) shift; cmd_run "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    url) shift; cmd_url "$@" ;;
    *) die "usage: $0 check | start DIR [--no-fsync] | stop DIR [fast|immediate] | url DIR | run [--no-fsync] -- CMD..." ;;
esac
