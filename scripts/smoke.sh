#!/usr/bin/env bash
# Loadgen smoke run: starts a release `tickforge` on a free port, runs
# `tickforge-loadgen` with 64 clients for 5 s (1 s warm-up) and fails unless
# every client connected, joined and ran to the end with zero errors (delta
# errors included). Asserts no timing. Builds the release binaries when missing.
# Waits for the server quietly; any failure prints why and the server's log.
#
#   scripts/smoke.sh              bin subprotocol, arena
#   SMOKE_SUBPROTOCOL=json scripts/smoke.sh
#   SMOKE_GAME=lines SMOKE_PLAYERS_PER_ROOM=2 scripts/smoke.sh
#                                 another game: random inputs over its input schema
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
server=$target/release/tickforge
loadgen=$target/release/tickforge-loadgen
if [[ ! -x $server || ! -x $loadgen ]]; then
    cargo build --release -p tickforge-server -p tickforge-loadgen
fi

log=$(mktemp -t tickforge-smoke.XXXXXX)
report=$(mktemp -t tickforge-smoke-report.XXXXXX)
# Port 0: the kernel picks a free port, the server logs it.
RUST_LOG=info NO_COLOR=1 "$server" --listen 127.0.0.1:0 --shards 1 >"$log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -f "$log" "$report"
}
trap cleanup EXIT
fail() {
    echo "smoke: FAILED: $*; server log:"
    tail -n 50 "$log"
    exit 1
}

# GET /healthz answered 200 (quiet: a refused connect is just "not yet").
healthy() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
        head -c 12 <&3 | grep -q ' 200'
    ) 2>/dev/null
}

# Wait, quietly and at most 10 s, for the server's address, then its /healthz.
port=
for _ in $(seq 100); do
    port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$log" | head -n 1)
    [[ -n $port ]] && healthy && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
[[ -n $port ]] || fail "the server logged no address within 10 s"
healthy || fail "GET /healthz on port $port did not answer 200 within 10 s"

status=0
timeout 120 "$loadgen" --url "ws://127.0.0.1:$port/ws" --clients 64 --duration 5s --warmup 1s \
    --connect-rate 200 --subprotocol "${SMOKE_SUBPROTOCOL:-bin}" --max-errors 0 --json "$report" --quiet \
    --game "${SMOKE_GAME:-arena}" --players-per-room "${SMOKE_PLAYERS_PER_ROOM:-8}" || status=$?
if [[ $status -ne 0 ]]; then
    fail "the loadgen exited with $status"
fi
# The JSON report (pretty-printed by the loadgen): every client to the end,
# no error of any kind, some state received.
problems=()
grep -q '"errors_total": 0,' "$report" || problems+=("errors: $(tr -d ' \n' <"$report" | grep -o '"errors":{[^}]*}')")
grep -q '"delta": 0' "$report" || problems+=("delta errors")
grep -q '"completed": 64' "$report" || problems+=("not all 64 clients ran to the end")
grep -q '"state_messages": 0,' "$report" && problems+=("no state messages")
if ((${#problems[@]})); then
    fail "${problems[*]}"
fi
echo "smoke: ok: ${SMOKE_GAME:-arena}, 64 clients, $(grep -o '"state_messages": [0-9]*' "$report" | grep -o '[0-9]*') state messages, 0 errors"
