#!/usr/bin/env bash
# The JavaScript client's tests (clients/js, node's test runner): the
# cross-language corpus, PROTOCOL.md's examples, the refusals, a real
# server, a misbehaving fake one, the package and its types.
#
#   scripts/js-test.sh
#
# Installs what is missing on a bare Debian bookworm (run as root there):
# Node.js and npm (apt), the dev packages of clients/js from its
# package-lock.json (ws, typescript). Writes the corpus with the Rust test
# `js_corpus` (server/tests/it/js_corpus.rs) and builds the server
# (`cargo build -p tickforge-server`, debug) unless TICKFORGE_BIN names one.
#
# Env: TICKFORGE_BIN         use this server binary, do not build
#      TICKFORGE_CORPUS_DIR  where the corpus goes (default target/tmp/js-corpus)
# Exit: 0 when every test passed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
export TICKFORGE_CORPUS_DIR=${TICKFORGE_CORPUS_DIR:-$target/tmp/js-corpus}

log() { printf 'js-test: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        exit 1
    fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    log "Node.js $(node --version) is too old: the client needs 20 or newer"
    exit 1
fi

log "npm packages of clients/js (from package-lock.json)"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)

log "the cross-language corpus (cargo test js_corpus) -> $TICKFORGE_CORPUS_DIR"
cargo test -p tickforge-server --test it --quiet js_corpus

if [ -z "${TICKFORGE_BIN:-}" ]; then
    log "building the server (debug)"
    cargo build -p tickforge-server --quiet
    export TICKFORGE_BIN=$target/debug/tickforge
fi

log "node --test (clients/js/test)"
cd clients/js
node --test --test-concurrency=1 test/
