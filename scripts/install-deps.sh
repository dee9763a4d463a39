#!/bin/sh
# install-deps.sh: everything needed to build and test chatd on Debian 12.
#
# Safe to run again and again: it checks before it installs, so on a machine that already
# has everything it finishes in well under a second. Runs as root (or through sudo) with no
# terminal. Prints each thing it does.
set -eu

cd "$(dirname "$0")/.."

# Build: compiler, pkg-config and the libraries chatd links against (llhttp comes as
# sources in node-llhttp). Test: sqlite3 CLI, clang's libFuzzer and sanitizer runtimes,
# redis-server (benchmark baseline), chromium (web client tests), python3 (the sd_notify
# listener of the ops tests), python3-websockets (a second, independent WebSocket
# client), gdb (the walkthrough test) and valgrind, systemd for systemd-analyze;
# libpq-dev to build, postgresql-15 for the server binaries that the tests and benchmarks
# start their own throwaway servers from (scripts/pg-throwaway.sh).
APT_PACKAGES="build-essential pkg-config libuv1-dev libwslay-dev node-llhttp libjwt-dev
libcjson-dev libsqlite3-dev libssl-dev sqlite3 clang libclang-rt-14-dev redis-server
chromium python3 python3-websockets gdb valgrind systemd strace ca-certificates
libpq-dev postgresql-15"

NODE_MIN=18
LOCK_STAMP=node_modules/.chatd-lock-hash

say() { echo "install-deps: $*"; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

apt_updated=no
apt_install() {
    if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
        say "need root to install: $* (run this script as root)" >&2
        exit 1
    fi
    if [ "$apt_updated" = no ]; then
        say "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        apt_updated=yes
    fi
    say "apt-get install $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# 1. Debian packages: ask dpkg for each, update and install only the missing ones.
missing=
for p in $APT_PACKAGES; do
    installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt_install $missing
else
    say "Debian packages: all present"
fi

# 2. Node.js. Debian 12 ships node 18, which is enough. A node from another packaging
# (for example NodeSource's, which bundles npm) is kept as it is: Debian's npm package
# would conflict with it, so npm comes from apt only when no npm exists at all.
node_ok() {
    command -v node >/dev/null 2>&1 &&
        node -e "process.exit(parseInt(process.versions.node, 10) >= $NODE_MIN ? 0 : 1)"
}
if ! node_ok; then
    apt_install nodejs
    node_ok || { say "node >= $NODE_MIN is required, found: $(node --version 2>&1)" >&2; exit 1; }
fi
if ! command -v npm >/dev/null 2>&1; then
    apt_install npm
fi
say "node $(node --version)"

# 3. npm packages, exactly as package-lock.json pins them. The lock file's hash is kept in
# node_modules so a changed lock file (a pull, a branch switch) triggers a fresh install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -d node_modules ] && [ -f "$LOCK_STAMP" ] && [ "$(cat "$LOCK_STAMP")" = "$lock_hash" ]; then
    say "node_modules: up to date"
else
    say "npm ci"
    npm ci --no-audit --no-fund
    echo "$lock_hash" > "$LOCK_STAMP"
fi
say "done"
