#!/usr/bin/env bash
# autobahn.sh — RFC 6455 conformance of tickforge's WebSocket stack.
#
# Builds `tickforge`, starts it with `--echo` (the /echo route runs every
# message through the same handshake, WebSocket driver and limits as /ws,
# then echoes it), runs the Autobahn|Testsuite fuzzing client from the shared
# harness (../shared/tools/autobahn) over cases 1-7 and 9 (9.*: up to 16 MiB
# messages), and stops the server (by its PID) whatever happens.
#
# Usage: scripts/autobahn.sh [CASES]        default '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*'
# Exit status: run.sh's: 0 only when every case ran and none FAILED
# (the close-handshake column included); 1 some FAILED; 2 could not run.
# Env: AUTOBAHN_PORT (default: a free port), CARGO_PROFILE (default release).
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
HARNESS="$ROOT/../shared/tools/autobahn"
CASES="${1:-1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*}"
PROFILE="${CARGO_PROFILE:-release}"

[ -x "$HARNESS/run.sh" ] || { echo "autobahn.sh: no harness at $HARNESS" >&2; exit 2; }
"$HARNESS/setup.sh" >&2

cd "$ROOT"
cargo build --quiet --profile "$PROFILE" -p tickforge-server --bin tickforge >&2
case "$PROFILE" in dev) DIR=debug ;; *) DIR="$PROFILE" ;; esac
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$DIR/tickforge"

PORT="${AUTOBAHN_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
LOG="$(mktemp /tmp/tickforge-autobahn-XXXXXX.log)"
"$BIN" --echo --max-message-size 16777216 --listen "127.0.0.1:$PORT" --shards 1 >"$LOG" 2>&1 &
PID=$!
stop() {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 100); do
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "autobahn.sh: the server exited; log: $LOG" >&2; cat "$LOG" >&2; exit 2; }
  sleep 0.1
done

set +e
"$HARNESS/run.sh" --agent tickforge "ws://127.0.0.1:$PORT/echo" "$CASES"
RC=$?
set -e
echo "autobahn.sh: run.sh exited $RC (server log: $LOG)" >&2
exit "$RC"
