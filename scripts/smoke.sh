#!/usr/bin/env bash
# Loadgen smoke run: starts a release `tickforge` on a free port, runs
# `tickforge-loadgen` with 64 clients for 5 s (1 s warm-up) and fails unless
# every client connected, joined and ran to the end with zero errors (delta
# errors included). Asserts no timing. Builds the release binaries when missing.
#
#   scripts/smoke.sh              bin subprotocol
#   SMOKE_SUBPROTOCOL=json scripts/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
server=$target/release/tickforge
loadgen=$target/release/tickforge-loadgen
if [[ ! -x $server || ! -x $loadgen ]]; then
    cargo build --release -p tickforge-server -p tickforge-loadgen
fi

# A free port: one nothing answers on.
port=
for candidate in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[[ -n $port ]] || { echo "smoke: no free port found"; exit 1; }
log=$(mktemp -t tickforge-smoke.XXXXXX)
report=$(mktemp -t tickforge-smoke-report.XXXXXX)
"$server" --listen "127.0.0.1:$port" --shards 1 >"$log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -f "$log" "$report"
}
trap cleanup EXIT

# Wait (at most 10 s) for the server to answer /healthz.
for _ in $(seq 100); do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
        if head -c 12 <&3 | grep -q ' 200'; then exec 3>&-; break; fi
        exec 3>&-
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "smoke: server exited:"; cat "$log"; exit 1; }
    sleep 0.1
done

status=0
timeout 120 "$loadgen" --url "ws://127.0.0.1:$port/ws" --clients 64 --duration 5s --warmup 1s \
    --connect-rate 200 --subprotocol "${SMOKE_SUBPROTOCOL:-bin}" --max-errors 0 --json "$report" --quiet || status=$?
if [[ $status -ne 0 ]]; then
    echo "smoke: loadgen exited with $status; server log:"
    tail -n 50 "$log"
    exit 1
fi
# The JSON report (pretty-printed by the loadgen): every client to the end,
# no error of any kind, some state received.
problems=()
grep -q '"errors_total": 0,' "$report" || problems+=("errors: $(tr -d ' \n' <"$report" | grep -o '"errors":{[^}]*}')")
grep -q '"delta": 0' "$report" || problems+=("delta errors")
grep -q '"completed": 64' "$report" || problems+=("not all 64 clients ran to the end")
grep -q '"state_messages": 0,' "$report" && problems+=("no state messages")
if ((${#problems[@]})); then
    echo "smoke: FAILED: ${problems[*]}"
    exit 1
fi
echo "smoke: ok: 64 clients, $(grep -o '"state_messages": [0-9]*' "$report" | grep -o '[0-9]*') state messages, 0 errors"
