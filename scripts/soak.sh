#!/usr/bin/env bash
# A soak: the release server under sustained load with churn (clients
# leaving and joining all the time) and a mix of binary and JSON clients,
# sampled for DURATION (tests/soak/soak.py does the work). Fails when RSS
# or open descriptors grow past their bound after the warm-up, or when any
# error appears. Writes samples.csv, minutes.csv, summary.json and soak.svg.
#
#   scripts/soak.sh 1h                   the recorded soak
#   scripts/soak.sh 10m --clients 40     shorter, another load
#
# DURATION: a number with s, m or h (90s, 10m, 1h); a bare number is
# seconds. Flags after DURATION go to tests/soak/soak.py (--clients N,
# --churn-clients N, --churn-secs S, --reconnect-every S, --sample S,
# --warmup S, --rss-growth-mib M, --fd-growth N); --clients defaults to
# half the largest count that held p99 <= 5 ms in BENCHMARKS.md's
# end-to-end matrix.
#
# Churn comes two ways from the real tickforge-loadgen: the steady binary
# and JSON clients each drop their socket and resume their seat at a mean
# interval (loadgen --reconnect-every, default 60 s), and short
# back-to-back loadgen runs on two staggered lanes join and leave (rooms
# created and disposed of all the time).
#
# Environment: TICKFORGE_BIN, LOADGEN_BIN (default: target/release, built
# when missing); SOAK_OUT (default target/soak/<UTC time>).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [[ $# -ge 1 ]] && exit 0 || exit 2
fi
text=$1
shift
if [[ "$text" =~ ^([0-9]+)(s|m|h)?$ ]]; then
    n=${BASH_REMATCH[1]}
    case "${BASH_REMATCH[2]}" in
        h) secs=$((n * 3600)) ;;
        m) secs=$((n * 60)) ;;
        *) secs=$n ;;
    esac
else
    echo "soak.sh: DURATION must be like 90s, 10m or 1h, got '$text'" >&2
    exit 2
fi
if ((secs < 60)); then
    echo "soak.sh: DURATION must be at least a minute (one per-minute sample), got '$text'" >&2
    exit 2
fi

target=${CARGO_TARGET_DIR:-target}
server=${TICKFORGE_BIN:-$target/release/tickforge}
loadgen=${LOADGEN_BIN:-$target/release/tickforge-loadgen}
if [[ -z "${TICKFORGE_BIN:-}" || -z "${LOADGEN_BIN:-}" ]]; then
    if [[ ! -x $server || ! -x $loadgen ]]; then
        echo "==> Building the release binaries"
        nice -n 10 cargo build --release -p tickforge-server -p tickforge-loadgen
    fi
fi
for bin in "$server" "$loadgen"; do
    [[ -x $bin ]] || { echo "soak.sh: no binary at $bin" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "soak.sh: python3 is required" >&2; exit 2; }

out=${SOAK_OUT:-$target/soak/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
echo "==> Soak for ${secs} s (server $server, loadgen $loadgen; results in $out)"
echo "    host load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
exec python3 tests/soak/soak.py --server "$server" --loadgen "$loadgen" --out "$out" --duration "$secs" \
    --root . "$@"
