#!/usr/bin/env bash
# clone-check.sh — the test command needs nothing beside a plain clone.
#
# Clones this repository's HEAD into a fresh temporary folder, where
# nothing is beside it (no ../shared), and runs that clone's conformance
# step, scripts/autobahn.sh: its harness lookup (tests/autobahn), its setup
# (setup.sh; a no-op taking about 1 s when wstest is installed) and a short
# Autobahn run against a tickforge binary. Bounded in time; the clone is
# removed after. It checks what is committed: uncommitted changes are not
# in the clone (it says so when there are some).
#
#   scripts/clone-check.sh
#
# Env: TICKFORGE_BIN        the server the clone's autobahn.sh runs (default
#                           target/release/tickforge of this tree, built when
#                           missing), so that the check builds nothing
#      CLONE_CHECK_CASES    Autobahn cases (default '1.*,2.*': 27 cases)
#      CLONE_CHECK_TIMEOUT  seconds for the whole step (default 900, enough
#                           for a first install of wstest)
# Exit: 0 when the clone's conformance step passed.
set -euo pipefail

root=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
cd "$root"
log() { printf 'clone-check: %s\n' "$*" >&2; }

bin=${TICKFORGE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/tickforge}
if [[ -z ${TICKFORGE_BIN:-} && ! -x $bin ]]; then
    cargo build --release -p tickforge-server
fi
[[ -x $bin ]] || { log "no server binary at $bin"; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

head=$(git rev-parse HEAD)
if [[ -n $(git status --porcelain) ]]; then
    log "note: uncommitted changes are not in the clone (it checks $head)"
fi

tmp=$(mktemp -d /tmp/tickforge-clone-check-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
clone=$tmp/tickforge
git clone --quiet --no-checkout "$root" "$clone"
git -C "$clone" checkout --quiet --detach "$head"
[[ ! -e $clone/../shared ]] || { log "$clone/../shared exists; not a plain clone"; exit 1; }

log "running the conformance step of a plain clone of $head in $clone"
out=$tmp/autobahn.out
status=0
(
    cd "$clone"
    timeout --kill-after=15 "${CLONE_CHECK_TIMEOUT:-900}" \
        env TICKFORGE_BIN="$bin" AUTOBAHN_RESULTS="$tmp/results" \
        scripts/autobahn.sh "${CLONE_CHECK_CASES:-1.*,2.*}"
) >"$out" 2>&1 || status=$?
if [[ $status -ne 0 ]]; then
    log "FAILED: the clone's scripts/autobahn.sh exited $status; its output:"
    cat "$out" >&2
    exit 1
fi
# It used the clone's own harness, not one found elsewhere.
if ! grep -qxF "autobahn.sh: harness $clone/tests/autobahn" "$out"; then
    log "FAILED: the clone's autobahn.sh did not use $clone/tests/autobahn; its output:"
    cat "$out" >&2
    exit 1
fi
log "ok: $(grep -m1 '^RESULT:' "$out" || echo 'passed')"
