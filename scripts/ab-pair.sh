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
[[ $N =~ ^[0-9]+$ && $((10#$N)) -gt 0 ]] || { echo "CLIENTS_EACH must be a positive integer, not '$N'" >&2; exit 2; }
[[ $DUR =~ ^[0-9]+$ && $((10#$DUR)) -ge 5 && $((10#$DUR)) -le 600 ]] || { echo "SECONDS must be 5..600, not '$DUR'" >&2; exit 2; }
# Decimal even with a leading zero (bash reads 0500 as octal).
N=$((10#$N)) DUR=$((10#$DUR))
for f in "$A" "$B" "$LG"; do [[ -x $f ]] || { echo "not an executable: $f" >&2; exit 2; }; done
OUT=$(mktemp -d)
SA='' SB='' LA='' LB=''
# On any exit: every process this script started goes; the logs stay when
# the run failed, for a look.
cleanup() {
    local rc=$?
    kill $SA $SB $LA $LB 2>/dev/null || true
    # Their drains end before the next run starts on the same CPUs.
    wait $SA $SB $LA $LB 2>/dev/null || true
    if [[ $rc -eq 0 ]]; then rm -rf "$OUT"; else echo "logs kept in $OUT" >&2; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
runtime_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f", s}'; }
PA=$(port) PB=$(port)
taskset -c 0 "$A" --listen 127.0.0.1:"$PA" --shards 1 --no-pin --max-connections $((N + 1000)) >"$OUT/a.log" 2>&1 & SA=$!
taskset -c 0 "$B" --listen 127.0.0.1:"$PB" --shards 1 --no-pin --max-connections $((N + 1000)) >"$OUT/b.log" 2>&1 & SB=$!
sleep 0.5
taskset -c 1 "$LG" --url ws://127.0.0.1:"$PA"/ws --clients "$N" --cores 1 --connect-rate 1000 --warmup 3s --duration "${DUR}s" --quiet --json "$OUT/a.json" --source-ips 127.0.0.1-127.0.0.4 >"$OUT/la.log" 2>&1 & LA=$!
taskset -c 1 "$LG" --url ws://127.0.0.1:"$PB"/ws --clients "$N" --cores 1 --connect-rate 1000 --warmup 3s --duration "${DUR}s" --quiet --json "$OUT/b.json" --source-ips 127.0.0.5-127.0.0.8 >"$OUT/lb.log" 2>&1 & LB=$!
# Past the connections and the warm-up, then the window's first DUR-2 s.
sleep "$(python3 -c "print(max(1, $N / 1000) + 3 + 0.7)")"
alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null || { echo "process $p ended early (see its log)" >&2; exit 1; }; done; }
alive $SA $SB $LA $LB
A0=$(runtime_ns $SA) B0=$(runtime_ns $SB)
sleep $((DUR - 2))
alive $SA $SB
A1=$(runtime_ns $SA) B1=$(runtime_ns $SB)
wait $LA || { echo "loadgen A failed (exit $?)" >&2; exit 1; }
wait $LB || { echo "loadgen B failed (exit $?)" >&2; exit 1; }
python3 - "$N" $((DUR - 2)) "$A0" "$A1" "$B0" "$B1" "$OUT/a.json" "$OUT/b.json" <<'PY'
import json, sys
n, secs, a0, a1, b0, b1 = map(int, sys.argv[1:7])
ra, rb = (json.load(open(p)) for p in sys.argv[7:9])
# Client-ticks each server delivered in the window (its loadgen's rate of
# state messages received over its own window, which holds this one).
ca, cb = ra["ticks_per_sec"] * secs, rb["ticks_per_sec"] * secs
if ca <= 0 or cb <= 0:
    sys.exit(f"a loadgen received no state messages (A {ca:.0f}, B {cb:.0f}): no cost per client-tick")
a, b = (a1 - a0) / 1e3 / ca, (b1 - b0) / 1e3 / cb
p99 = lambda r: r["tick_latency_us"]["p99"] / 1000
print(f"A {a:.2f} us/client-tick, B {b:.2f}, B/A {b / a:.3f}; tick p99 A {p99(ra):.2f} B {p99(rb):.2f} ms; "
      f"state msgs/s A {ra['ticks_per_sec']:.0f} B {rb['ticks_per_sec']:.0f} (of {n * 30}); errors A {ra['errors_total']} B {rb['errors_total']}")
PY
