#!/usr/bin/env bash
# Runs every test of tickforge on a fresh machine: installs what the tests
# need (each step is idempotent and skips what is already there), then runs
# the Rust tests, the RFC 6455 conformance suite (its harness is in
# tests/autobahn; a plain clone needs nothing beside it, which
# scripts/clone-check.sh proves), the loadgen smoke run, the browser
# test, a short run of every fuzz target and the short form of the fault
# scenarios. Exits non-zero on the first failing group.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the Rust tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[[ "${1:-}" == "--quick" ]] && quick=true

step() { printf '\n==> %s\n' "$*"; }

step "Redis for the cluster tests (Debian's redis-server)"
# The cluster tests start their own redis-server processes on free ports.
TICKFORGE_REDIS_SERVER="$(scripts/redis.sh install)"
export TICKFORGE_REDIS_SERVER

step "Rust tests (unit, integration, doc)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast --lib --bins --tests
fi
cargo test --workspace --doc

$quick && exit 0

step "Release binaries"
cargo build --release -p tickforge-server -p tickforge-loadgen

step "RFC 6455 conformance (Autobahn|Testsuite against tickforge --echo)"
scripts/autobahn.sh

step "The same conformance over wss:// (tickforge --echo --tls-self-signed)"
TLS=1 scripts/autobahn.sh

step "A plain clone: its conformance step needs nothing beside it (no ../shared)"
TICKFORGE_BIN=${CARGO_TARGET_DIR:-target}/release/tickforge scripts/clone-check.sh

step "Loadgen smoke run (64 clients, 5 s, zero errors)"
scripts/smoke.sh

step "Loadgen smoke run of lines, the turn-based game (random inputs over its input schema)"
SMOKE_GAME=lines SMOKE_PLAYERS_PER_ROOM=2 scripts/smoke.sh

step "Cluster under load (Redis, three nodes, 1,000 clients at one node, zero errors)"
scripts/cluster-load.sh

step "JavaScript client (clients/js: corpus, real and fake servers, package)"
scripts/js-test.sh

step "Browser test (Chromium + playwright-core)"
scripts/browser-test.sh

step "Deployment files (hadolint, compose schema, Kubernetes schemas)"
scripts/deploy-check.sh

step "Fuzzing: every target of both fuzz crates for 15 s (scripts/fuzz.sh; nightly, cargo-fuzz)"
scripts/fuzz.sh 15

step "Network and process faults, short form (scripts/faults.sh; namespaces skipped loudly where unavailable)"
scripts/faults.sh --short

step "All tests passed"
