#!/usr/bin/env bash
# Network and process faults against a real tickforge server under the real
# loadgen (tests/faults/faults.py does the work; this script checks the
# machine, installs what it needs and finds the binaries). One PASS/FAIL
# line per check, a summary per scenario; exits 1 when a check failed.
#
#   scripts/faults.sh                  every scenario, full length
#   scripts/faults.sh --short          the CI form (about three minutes)
#   scripts/faults.sh blackhole proxy  some scenarios
#
# Scenarios: bandwidth (tbf caps the server's link below what the ticks
# need), blackhole (nftables drops one client address for 10 s; closed by
# the slow-client rule), blackhole-keepalive (the same, closed by
# keepalive), proxy (tests/faults/proxy.py: 100 +- 30 ms, one byte at a
# time, stalls, resets), sigkill (kill -9 mid-load, restart), sigstop (5 s
# stop, then continue).
#
# The network scenarios run inside two network namespaces the script
# creates and deletes (all their traffic stays inside them); they need root.
# Where namespaces cannot be made, they are SKIPPED, loudly, and the
# others run on loopback.
#
# Environment: TICKFORGE_BIN, LOADGEN_BIN (default: target/release, built
# when missing); FAULTS_OUT (default target/faults/<UTC time>).
set -euo pipefail
cd "$(dirname "$0")/.."

short=()
scenarios=()
for arg in "$@"; do
    case "$arg" in
        --short) short=(--short) ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "faults.sh: unknown flag '$arg' (try --help)" >&2
            exit 2
            ;;
        *) scenarios+=("$arg") ;;
    esac
done

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
    [[ -x $bin ]] || { echo "faults.sh: no binary at $bin" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "faults.sh: python3 is required" >&2; exit 2; }

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)

netns=()
probe=tfprobe$$
if [[ $(id -u) -ne 0 ]]; then
    why="not root (namespaces, tc and nftables need CAP_NET_ADMIN)"
elif ! ip netns add "$probe" 2>/dev/null; then
    why="'ip netns add' failed here"
else
    ip netns del "$probe"
    why=
    command -v nft >/dev/null || need_apt+=(nftables)
    command -v tc >/dev/null || need_apt+=(iproute2)
fi
if ((${#need_apt[@]})); then
    echo "==> Installing ${need_apt[*]} (Debian apt)"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null ||
            { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
    else
        echo "faults.sh: ${need_apt[*]} missing and not root to install them" >&2
        exit 2
    fi
fi
if [[ -n $why ]]; then
    netns=(--no-netns)
    cat >&2 <<EOF

################################################################################
#  NETWORK NAMESPACES UNAVAILABLE: $why.
#  SKIPPING the bandwidth and blackhole scenarios (they need a real kernel
#  link); the proxy and process scenarios run on loopback.
################################################################################

EOF
fi

out=${FAULTS_OUT:-$target/faults/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
echo "==> Faults (server $server, loadgen $loadgen; logs and results.json in $out)"
echo "    host load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
exec python3 tests/faults/faults.py --server "$server" --loadgen "$loadgen" --out "$out" \
    "${short[@]}" "${netns[@]}" "${scenarios[@]}"
