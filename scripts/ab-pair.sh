#!/usr/bin/env bash
# Paired A/B of two server builds: both on CPU 0 at once, each serving N
# clients of its own loadgen (both loadgens on CPU 1), so that the host's
# speed, which drifts by 10 % or more over minutes on a shared VM, is the
# same for both. Prints each server's CPU per client-tick (its threads'
# run time, /proc/PID/task/*/schedstat, over the measured window) and B/A.
# Swap A and B between runs: the order of start-up is not quite neutral.
#
# usage: scripts/ab-pair.sh SERVER_A SERVER_B [CLIENTS_EACH] [SECONDS] [LOADGEN]
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 SERVER_A SERVER_B [CLIENTS_EACH (500)] [SECONDS (20)] [LOADGEN (target/release/tickforge-loadgen)]" >&2
    exit 2
fi
A=$1 B=$2 N=${3:-500} DUR=${4:-20} LG=${5:-target/release/tickforge-loadgen}
[[ $N =~ ^[0-9]+$ && $N -gt 0 ]] || { echo "CLIENTS_EACH must be a positive integer, not '$N'" >&2; exit 2; }
[[ $DUR =~ ^[0-9]+$ && $DUR -ge 5 && $DUR -le 600 ]] || { echo "SECONDS must be 5..600, not '$DUR'" >&2; exit 2; }
for f in "$A" "$B" "$LG"; do [[ -x $f ]] || { echo "not an executable: $f" >&2; exit 2; }; done
OUT=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
runtime_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f", s}'; }
PA=$(port) PB=$(port)
taskset -c 0 "$A" --listen 127.0.0.1:"$PA" --shards 1 --no-pin --max-connections $((N + 1000)) >"$OUT/a.log" 2>&1 & SA=$!
taskset -c 0 "$B" --listen 127.0.0.1:"$PB" --shards 1 --no-pin --max-connections $((N + 1000)) >"$OUT/b.log" 2>&1 & SB=$!
trap 'kill $SA $SB 2>/dev/null || true; rm -rf "$OUT"' EXIT
sleep 0.5
taskset -c 1 "$LG" --url ws://127.0.0.1:"$PA"/ws --clients "$N" --cores 1 --connect-rate 1000 --warmup 3s --duration "${DUR}s" --quiet --json "$OUT/a.json" --source-ips 127.0.0.1-127.0.0.4 >/dev/null 2>&1 & LA=$!
taskset -c 1 "$LG" --url ws://127.0.0.1:"$PB"/ws --clients "$N" --cores 1 --connect-rate 1000 --warmup 3s --duration "${DUR}s" --quiet --json "$OUT/b.json" --source-ips 127.0.0.5-127.0.0.8 >/dev/null 2>&1 & LB=$!
# Past the connections and the warm-up, then the window's first DUR-2 s.
sleep "$(python3 -c "print(max(1, $N / 1000) + 3 + 0.7)")"
A0=$(runtime_ns $SA) B0=$(runtime_ns $SB)
sleep $((DUR - 2))
A1=$(runtime_ns $SA) B1=$(runtime_ns $SB)
wait $LA $LB
python3 - "$N" $((DUR - 2)) "$A0" "$A1" "$B0" "$B1" "$OUT/a.json" "$OUT/b.json" <<'PY'
import json, sys
n, secs, a0, a1, b0, b1 = map(int, sys.argv[1:7])
ra, rb = (json.load(open(p)) for p in sys.argv[7:9])
ct = n * 30 * secs  # client-ticks each server owed in the window
a, b = (a1 - a0) / 1e3 / ct, (b1 - b0) / 1e3 / ct
p99 = lambda r: r["tick_latency_us"]["p99"] / 1000
print(f"A {a:.2f} us/client-tick, B {b:.2f}, B/A {b / a:.3f}; tick p99 A {p99(ra):.2f} B {p99(rb):.2f} ms; "
      f"state msgs/s A {ra['ticks_per_sec']:.0f} B {rb['ticks_per_sec']:.0f} (of {n * 30}); errors A {ra['errors_total']} B {rb['errors_total']}")
PY
