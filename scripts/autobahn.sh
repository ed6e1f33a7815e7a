#!/usr/bin/env bash
# autobahn.sh — RFC 6455 conformance of tickforge's WebSocket stack.
#
# Builds `tickforge`, starts it with `--echo` (the /echo route runs every
# message through the same handshake, WebSocket driver and limits as /ws,
# then echoes it), runs the Autobahn|Testsuite fuzzing client from the
# harness in tests/autobahn (installed by its setup.sh on first use) over
# cases 1-7 and 9 (9.*: up to 16 MiB messages), and stops the server (by
# its PID) whatever happens.
#
# Usage: scripts/autobahn.sh [CASES]        default '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*'
# Exit status: run.sh's: 0 only when every case ran and none FAILED
# (the close-handshake column included); 1 some FAILED; 2 could not run.
# Env: TICKFORGE_BIN   use this server binary, do not build
#      CARGO_PROFILE   the profile to build (default release)
#      AUTOBAHN_PORT   the port to serve on (default: one the kernel picks)
#      AUTOBAHN_PREFIX where setup.sh installs wstest (default /opt/autobahn)
#      TLS=1           serve TLS (--tls-self-signed) and run the cases over wss://
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
HARNESS="$ROOT/tests/autobahn"
CASES="${1:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*}"
PROFILE="${CARGO_PROFILE:-release}"

[ -x "$HARNESS/run.sh" ] || { echo "autobahn.sh: no harness at $HARNESS" >&2; exit 2; }
echo "autobahn.sh: harness $HARNESS" >&2
"$HARNESS/setup.sh" >&2

cd "$ROOT"
BIN="${TICKFORGE_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --quiet --profile "$PROFILE" -p tickforge-server --bin tickforge >&2
  case "$PROFILE" in dev) DIR=debug ;; *) DIR="$PROFILE" ;; esac
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$DIR/tickforge"
fi
[ -x "$BIN" ] || { echo "autobahn.sh: no server binary at $BIN" >&2; exit 2; }

LOG="$(mktemp /tmp/tickforge-autobahn-XXXXXX.log)"
SCHEME=ws; HTTP=http; TLS_FLAGS=()
if [ "${TLS:-}" = 1 ]; then SCHEME=wss; HTTP=https; TLS_FLAGS=(--tls-self-signed); fi
RUST_LOG=info NO_COLOR=1 "$BIN" --echo --max-message-size 16777216 --listen "127.0.0.1:${AUTOBAHN_PORT:-0}" \
  --shards 1 "${TLS_FLAGS[@]}" >"$LOG" 2>&1 &
PID=$!
stop() {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}
trap stop EXIT

# The server logs its address once it listens (the port, when 0 was asked).
PORT=
for _ in $(seq 100); do
  PORT="$(sed -n "s|.*listening on $HTTP://[^ ]*:\\([0-9][0-9]*\\)/.*|\\1|p" "$LOG" | head -n 1)"
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || { echo "autobahn.sh: the server exited; its log:" >&2; cat "$LOG" >&2; exit 2; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "autobahn.sh: the server did not listen within 10 s; its log:" >&2; cat "$LOG" >&2; exit 2; }

set +e
"$HARNESS/run.sh" --agent tickforge "$SCHEME://127.0.0.1:$PORT/echo" "$CASES"
RC=$?
set -e
echo "autobahn.sh: run.sh exited $RC (server log: $LOG)" >&2
exit "$RC"
