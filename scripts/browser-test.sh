#!/usr/bin/env bash
# The browser tests of the page served at GET / and of the operator's
# monitor at GET /monitor: Debian's headless Chromium, driven by
# playwright-core (tests/browser), against a real tickforge server on a free
# port of 127.0.0.1 (started with --admin-token), the monitor's while the
# real loadgen fills a room.
#
#   scripts/browser-test.sh
#
# Installs what is missing on a bare Debian bookworm (run as root there):
# Debian's chromium (only when /usr/bin/chromium is absent), Node.js, and the
# npm packages of tests/browser from its package-lock.json. Never downloads
# a browser build. Builds the server and the loadgen (`cargo build --release
# -p tickforge-server -p tickforge-loadgen`) when target/release/tickforge or
# target/release/tickforge-loadgen is missing or older than the sources.
#
# Env: TICKFORGE_BIN   use this server binary, do not build
#      LOADGEN_BIN     use this loadgen binary, do not build
#      MOCK=1          run against tests/browser/mock-server.mjs instead (page
#                      development without a server; not a test of the server)
#      SCREENSHOT      where to save the screenshot
#                      (default target/browser/screenshot.png)
# Exit: 0 when every check passed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/browser
mkdir -p "$out"
export SCREENSHOT=${SCREENSHOT:-$out/screenshot.png}

log() { printf 'browser-test: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        exit 1
    fi
}

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update
        apt_updated=1
    fi
    # With recommends: chromium's fonts come that way, and text must render.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- tools ---------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium"
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm"
    apt_install nodejs npm
fi

# --- npm packages (playwright-core only; it downloads no browser) -----------
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(
    cd tests/browser
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
)

# --- the page's unit tests (no browser) ------------------------------------
log "unit tests of server/web/state.js"
node --test tests/browser/state.test.mjs

# --- the server --------------------------------------------------------------
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
server_log=$out/server.log
if [ "${MOCK:-}" = 1 ]; then
    log "MOCK=1: using the mock server, not tickforge"
    cmd=(node tests/browser/mock-server.mjs "$port")
else
    bin=${TICKFORGE_BIN:-}
    if [ -z "$bin" ]; then
        bin=$target/release/tickforge
        if [ ! -x "$bin" ] || [ -n "$(find server protocol Cargo.toml Cargo.lock -newer "$bin" -type f -print -quit)" ]; then
            log "building the server (release)"
            cargo build --release -p tickforge-server
        fi
    fi
    [ -x "$bin" ] || { log "no server binary at $bin"; exit 1; }
    admin_token=$(node -e 'console.log(require("crypto").randomBytes(16).toString("hex"))')
    cmd=("$bin" --listen "127.0.0.1:$port" --admin-token "$admin_token")
fi
loadgen=${LOADGEN_BIN:-}
if [ "${MOCK:-}" != 1 ] && [ -z "$loadgen" ]; then
    loadgen=$target/release/tickforge-loadgen
    if [ ! -x "$loadgen" ] || [ -n "$(find loadgen protocol Cargo.toml Cargo.lock -newer "$loadgen" -type f -print -quit)" ]; then
        log "building the loadgen (release)"
        cargo build --release -p tickforge-loadgen
    fi
fi

log "starting: ${cmd[*]} (log: $server_log)"
"${cmd[@]}" >"$server_log" 2>&1 &
server_pid=$!

stop_server() {
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT

# --- the browser test ----------------------------------------------------------
status=0
TICKFORGE_URL="http://127.0.0.1:$port" node tests/browser/run.mjs || status=$?
if [ "${MOCK:-}" != 1 ]; then
    log "the monitor (GET /monitor) while the loadgen fills a room"
    TICKFORGE_URL="http://127.0.0.1:$port" TICKFORGE_ADMIN_TOKEN="$admin_token" TICKFORGE_LOADGEN="$loadgen" \
        node tests/browser/monitor.mjs || status=$?
fi
if [ "$status" != 0 ]; then
    log "failed; the server's log ($server_log) ends with:"
    tail -n 30 "$server_log" >&2 || true
fi
stop_server

# --- the same page over https (TLS on the port, wss for /ws) --------------------
if [ "${MOCK:-}" != 1 ]; then
    server_log=$out/server-tls.log
    log "starting: ${cmd[*]} --tls-self-signed (log: $server_log)"
    "${cmd[@]}" --tls-self-signed >"$server_log" 2>&1 &
    server_pid=$!
    tls_status=0
    # The server's own self-signed certificate, made at its start: this
    # process's health probe accepts it; the browser is told to (run.mjs).
    NODE_TLS_REJECT_UNAUTHORIZED=0 SCREENSHOT="$out/screenshot-tls.png" \
        TICKFORGE_URL="https://127.0.0.1:$port" node tests/browser/run.mjs || tls_status=$?
    if [ "$tls_status" != 0 ]; then
        log "failed over https; the server's log ($server_log) ends with:"
        tail -n 30 "$server_log" >&2 || true
        status=$tls_status
    fi
fi
exit "$status"
