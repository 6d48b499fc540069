#!/usr/bin/env bash
# `make ui`: a local Prefect server + the neurolm deployments + one worker; Ctrl-C stops all.
#
# Why a script and not `prefect server start` alone: the deployments in
# prefect.yaml need their work pool and a worker before "Run" in the UI does
# anything, and the server's SQLite database belongs in this checkout
# (.prefect/, git-ignored) rather than in ~/.prefect shared with other projects.
#
# Environment knobs:
#   NEUROLM_UI_HOST   (127.0.0.1)   NEUROLM_UI_PORT (4200)
#   NEUROLM_PREFECT_HOME (<repo>/.prefect)   NEUROLM_POOL (neurolm-local)
#   NEUROLM_UI_NO_WORKER=1  register deployments but start no worker
# An existing PREFECT_API_URL is ignored on purpose: this script is the local server.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$REPO/.venv/bin/prefect" ]]; then
  PREFECT="$REPO/.venv/bin/prefect"; PY="$REPO/.venv/bin/python"
else
  PREFECT="$(command -v prefect)"; PY="$(command -v python3)"
fi
HOST="${NEUROLM_UI_HOST:-127.0.0.1}"
PORT="${NEUROLM_UI_PORT:-4200}"
POOL="${NEUROLM_POOL:-neurolm-local}"
export PREFECT_HOME="${NEUROLM_PREFECT_HOME:-$REPO/.prefect}"
export PREFECT_API_URL="http://$HOST:$PORT/api"
export PREFECT_UI_API_URL="$PREFECT_API_URL"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export NEUROLM_REPO="$REPO"
mkdir -p "$PREFECT_HOME" "$REPO/data"

SERVER_PID=""; WORKER_PID=""
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping neurolm UI..."
  for pid in "$WORKER_PID" "$SERVER_PID"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$WORKER_PID" "$SERVER_PID"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  echo "stopped."
}
trap cleanup INT TERM EXIT

healthy() {
  "$PY" - "$PREFECT_API_URL/health" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
}

if healthy; then
  echo "a Prefect server already answers at $PREFECT_API_URL: using it"
else
  echo "starting Prefect server on $HOST:$PORT (database in $PREFECT_HOME; log: $PREFECT_HOME/server.log)"
  "$PREFECT" server start --host "$HOST" --port "$PORT" >"$PREFECT_HOME/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    healthy && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "the Prefect server exited; last lines of $PREFECT_HOME/server.log:" >&2
      tail -20 "$PREFECT_HOME/server.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  healthy || { echo "the Prefect server did not become healthy in 300 s" >&2; exit 1; }
fi

if ! "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1; then
  "$PREFECT" work-pool create "$POOL" --type process >/dev/null
  echo "created work pool $POOL (process)"
fi

echo "registering deployments from prefect.yaml..."
# A deployment whose flow cannot be imported must not take the UI down with it: warn and go on.
(cd "$REPO" && "$PREFECT" --no-prompt deploy --all --prefect-file "$REPO/prefect.yaml") \
  >"$PREFECT_HOME/deploy.log" 2>&1 || {
  echo "WARNING: prefect deploy reported errors (see $PREFECT_HOME/deploy.log):" >&2
  tail -15 "$PREFECT_HOME/deploy.log" >&2; }
grep -o "Deployment '[^']*'" "$PREFECT_HOME/deploy.log" | sed 's/^/  /' || true

if [[ "${NEUROLM_UI_NO_WORKER:-0}" != "1" ]]; then
  (cd "$REPO" && exec "$PREFECT" worker start --pool "$POOL") >"$PREFECT_HOME/worker.log" 2>&1 &
  WORKER_PID=$!
  echo "worker started on pool $POOL (log: $PREFECT_HOME/worker.log)"
fi

echo "neurolm UI ready: http://$HOST:$PORT"
echo "CLI runs show up there with: export PREFECT_API_URL=$PREFECT_API_URL"
echo "press Ctrl-C to stop"
# Wait on whichever child exits first (or Ctrl-C).
if [[ -n "$SERVER_PID$WORKER_PID" ]]; then
  wait -n $SERVER_PID $WORKER_PID || true
else
  while true; do sleep 1; done
fi
