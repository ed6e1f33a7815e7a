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

server=target/release/tickforge
loadgen=target/release/tickforge-loadgen
if [[ ! -x $server || ! -x $loadgen ]]; then
    cargo build --release -p tickforge-server -p tickforge-loadgen
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
problems = []
if r["errors_total"] != 0: problems.append(f"{r['errors_total']} errors: {r['errors']}")
if r["errors"]["delta"] != 0: problems.append(f"{r['errors']['delta']} delta errors")
if r["clients"]["completed"] != 64: problems.append(f"{r['clients']['completed']} of 64 clients ran to the end")
if r["state_messages"] == 0: problems.append("no state messages")
if problems:
    print("smoke: FAILED: " + "; ".join(problems)); sys.exit(1)
print(f"smoke: ok: 64 clients, {r['state_messages']} state messages, 0 errors")
PY
