#!/usr/bin/env bash
# The cluster under load: a real Redis (scripts/redis.sh), three `tickforge`
# nodes on free ports of 127.0.0.1 in one cluster, and `tickforge-loadgen`
# with 1,000 clients (`--join-or-create`) pointed at the first node only,
# so that joins are redirected to the others. Fails unless every client
# connected, joined and played to the end with zero errors, some joins were
# redirected, and every node holds players. Asserts no timing.
#
#   scripts/cluster-load.sh
#
# Env: CLUSTER_CLIENTS   clients (default 1000)
#      CLUSTER_PROFILE   release (default) or debug: which build to run
#                        (built when missing)
# Exit: 0 when every check passed; on failure it prints why and the logs.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${CLUSTER_CLIENTS:-1000}
profile=${CLUSTER_PROFILE:-release}
target=${CARGO_TARGET_DIR:-target}/$profile
server=$target/tickforge
loadgen=$target/tickforge-loadgen
if [[ ! -x $server || ! -x $loadgen ]]; then
    if [[ $profile == release ]]; then
        cargo build --release -p tickforge-server -p tickforge-loadgen
    else
        cargo build -p tickforge-server -p tickforge-loadgen
    fi
fi

work=$(mktemp -d -t tickforge-cluster.XXXXXX)
redis_url=$(scripts/redis.sh start "$work/redis")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    scripts/redis.sh stop "$work/redis" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "cluster-load: FAILED: $*"
    for n in a b c; do
        [[ -f $work/$n.log ]] && { echo "--- node $n:"; tail -n 20 "$work/$n.log"; }
    done
    exit 1
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# GET PATH of node PORT: its body ("" while it does not answer).
get() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$2" >&3
        sed '1,/^\r$/d' <&3
    ) 2>/dev/null || true
}

ports=()
for n in a b c; do
    port=$(free_port)
    ports+=("$port")
    "$server" --listen "127.0.0.1:$port" --shards 1 --no-pin --cluster "$redis_url" \
        --public-url "ws://127.0.0.1:$port/ws" --node-id "$n" >"$work/$n.log" 2>&1 &
    pids+=($!)
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        [[ $(get "$port" /healthz) == ok* ]] && break
        sleep 0.1
    done
    [[ $(get "$port" /healthz) == ok* ]] || fail "node on port $port did not reach Redis in 10 s"
done
# Every node sees the three (the first refresh after the last one joined).
sleep 2

report=$work/report.json
"$loadgen" --url "ws://127.0.0.1:${ports[0]}/ws" --clients "$clients" --join-or-create \
    --warmup 2s --duration 10s --connect-rate 200 --json "$report" &
loadgen_pid=$!
# Mid-run (after the ramp and the warm-up): the players each node holds.
sleep $((clients / 200 + 5))
spread=()
for port in "${ports[@]}"; do
    spread+=("$(get "$port" /metrics | awk '/^tickforge_players\{/ { s += $2 } END { print s + 0 }')")
done
wait "$loadgen_pid" || fail "the loadgen failed"

python3 - "$report" "$clients" <<'EOF' || fail "the report"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
c = r["clients"]
problems = []
if r["errors_total"] != 0:
    problems.append(f"{r['errors_total']} errors: {r['errors']}")
for k in ("connected", "joined", "completed"):
    if c[k] != n:
        problems.append(f"{c[k]} of {n} {k}")
if c["redirected"] == 0:
    problems.append("no join was redirected")
if problems:
    sys.exit("; ".join(problems))
j, jr = r["join_latency_us"], r["join_redirected_latency_us"]
print(f"cluster-load: {n} clients, 0 errors, {c['redirected']} joins redirected; "
      f"join p50/p99 local {j['p50']/1000:.1f}/{j['p99']/1000:.1f} ms, "
      f"redirected {jr['p50']/1000:.1f}/{jr['p99']/1000:.1f} ms")
EOF

echo "cluster-load: players per node mid-run: ${spread[*]}"
for players in "${spread[@]}"; do
    [[ $players -gt 0 ]] || fail "a node held no players mid-run: ${spread[*]}"
done
