#!/usr/bin/env bash
# Redis for the cluster tests: Debian's redis-server, installed when missing,
# started on a free loopback port and stopped afterwards.
#
#   scripts/redis.sh install     installs redis-server (apt-get) unless it is
#                                there; prints the binary's path
#   scripts/redis.sh start DIR   starts a throw-away server (no persistence)
#                                on a free 127.0.0.1 port, its files in DIR;
#                                prints its URL (redis://127.0.0.1:PORT)
#   scripts/redis.sh stop DIR    stops the server started in DIR
#
# Idempotent: install skips what is there; stop of a stopped server is fine.
# The server binds loopback only and saves nothing to disk.
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

install() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "redis.sh: installing Debian's redis-server" >&2
        export DEBIAN_FRONTEND=noninteractive
        local sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        # The package list may be stale on a fresh machine: update once, then install.
        $sudo apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 || {
            $sudo apt-get update -q >/dev/null
            $sudo apt-get install -y -q --no-install-recommends redis-server >/dev/null
        }
        # Debian's package starts a system-wide instance on port 6379; the
        # tests never use it (they start their own on free ports).
    fi
    command -v redis-server
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir=${1:?usage: redis.sh start DIR}
    mkdir -p "$dir"
    local server
    server=$(install)
    local port tries=0
    while :; do
        port=$(free_port)
        "$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" >/dev/null
        # Ready when it answers PING (at most 5 s).
        for _ in $(seq 50); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                echo "$port" >"$dir/redis.port"
                echo "redis://127.0.0.1:$port"
                return 0
            fi
            sleep 0.1
        done
        # The port was taken between free_port and bind: try another.
        tries=$((tries + 1))
        [[ $tries -lt 3 ]] || die "redis-server did not start; see $dir/redis.log"
    done
}

stop() {
    local dir=${1:?usage: redis.sh stop DIR}
    [[ -f "$dir/redis.pid" ]] || return 0
    local pid
    pid=$(cat "$dir/redis.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$dir/redis.pid"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) die "usage: redis.sh install | start DIR | stop DIR" ;;
esac
