#!/usr/bin/env bash
# `make ui`: a local Prefect server + the neurolm deployments + a worker per work pool (cpu, gpu);
# Ctrl-C or SIGTERM stops everything it started.
#
# Why a script and not `prefect server start` alone: the deployments in
# prefect.yaml need their work pool and a worker before "Run" in the UI does
# anything, and the server's SQLite database belongs in this checkout
# (.prefect/, git-ignored) rather than in ~/.prefect shared with other projects.
#
# Environment knobs:
#   NEUROLM_UI_HOST   (127.0.0.1)   NEUROLM_UI_PORT (4200)
#   NEUROLM_PREFECT_HOME (<repo>/.prefect)
#   NEUROLM_UI_NO_WORKER=1  register deployments but start no worker
# Work pools (docs/DEPLOYMENT.md): neurolm-cpu (ingestion, the build) and neurolm-gpu (tokenizer,
# tokenize, pretrain); both are process pools, and here the gpu pool's worker runs on the CPU.
#
# Stopping: each child (server, workers) is started as a job in its own process group (`set -m`), so
# stopping kills each group — the worker's flow-run processes and their Dask workers included — and
# not the caller's (Ctrl-C from a terminal reaches this script only; the trap stops the rest).
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
POOLS=(neurolm-cpu neurolm-gpu)
export PREFECT_HOME="${NEUROLM_PREFECT_HOME:-$REPO/.prefect}"
export PREFECT_API_URL="http://$HOST:$PORT/api"
export PREFECT_UI_API_URL="$PREFECT_API_URL"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export NEUROLM_REPO="$REPO"
mkdir -p "$PREFECT_HOME" "$REPO/data"

set -m  # background jobs get their own process groups: a kill of one group stops all it started
CHILDREN=()  # pids (= process-group ids) of the jobs started here
stop_group() {  # TERM a job's process group, KILL it when still there after $2 seconds
  local pgid=$1 wait_s=$2
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for _ in $(seq 1 $((wait_s * 4))); do
    kill -0 -- "-$pgid" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}
descendants() {  # every live process below pid $1 (a worker's flow runs start their own sessions)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}
cleanup() {
  trap - INT TERM EXIT
  trap '' INT TERM  # a second Ctrl-C must not cut the shutdown short
  echo; echo "stopping neurolm UI..."
  local i rest p
  rest="$(descendants $$)"  # before anything exits and its children are re-parented out of reach
  for ((i = ${#CHILDREN[@]} - 1; i >= 0; i--)); do  # workers first, then the server
    stop_group "${CHILDREN[i]}" 20
  done
  for p in $rest; do  # flow runs in their own sessions, if their worker did not stop them
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      sleep 1
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  echo "stopped."
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
  CHILDREN+=("$SERVER_PID")
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

for POOL in "${POOLS[@]}"; do
  if ! "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1; then
    "$PREFECT" work-pool create "$POOL" --type process >/dev/null
    echo "created work pool $POOL (process)"
  fi
done

echo "registering deployments from prefect.yaml..."
# A deployment whose flow cannot be imported must not take the UI down with it: warn and go on.
(cd "$REPO" && "$PREFECT" --no-prompt deploy --all --prefect-file "$REPO/prefect.yaml") \
  >"$PREFECT_HOME/deploy.log" 2>&1 || {
  echo "WARNING: prefect deploy reported errors (see $PREFECT_HOME/deploy.log):" >&2
  tail -15 "$PREFECT_HOME/deploy.log" >&2; }
grep -o "Deployment '[^']*'" "$PREFECT_HOME/deploy.log" | sed 's/^/  /' || true

if [[ "${NEUROLM_UI_NO_WORKER:-0}" != "1" ]]; then
  for POOL in "${POOLS[@]}"; do
    log="$PREFECT_HOME/worker-${POOL#neurolm-}.log"
    (cd "$REPO" && exec "$PREFECT" worker start --pool "$POOL") >"$log" 2>&1 &
    CHILDREN+=("$!")
    echo "worker started on pool $POOL (log: $log)"
  done
fi

echo "neurolm UI ready: http://$HOST:$PORT"
echo "CLI runs show up there with: export PREFECT_API_URL=$PREFECT_API_URL"
echo "press Ctrl-C to stop"
# Wait on whichever child exits first (or Ctrl-C / SIGTERM: the trap stops the others).
if ((${#CHILDREN[@]})); then
  wait -n "${CHILDREN[@]}" || true
else
  while true; do sleep 1; done
fi
