#!/usr/bin/env bash
# Coordinator + N workers on this host.
#
#   cluster/local.sh CONFIG RUN_DIR [WORKERS] [PORT] [-- extra coordinator flags]
#
# Example: cluster/local.sh configs/fashion-mnist-tiny.yaml runs/local 2 5555 -- --steps 100
# Logs go to RUN_DIR/logs/. Ctrl-C stops everything (the coordinator checkpoints first);
# run it again with `-- --resume` to continue. IGPT overrides the binary (.build/release/igpt);
# IGPT_WORKER_THREADS sets each worker's threads (default: the config's train.threads);
# IGPT_SHARDS=K adds K parameter-server shards (igpt server, ports PORT+1..PORT+K).
set -euo pipefail
if [ $# -lt 2 ]; then sed -n '2,9p' "$0"; exit 2; fi
CONFIG=$1; RUN=$2; WORKERS=${3:-2}; PORT=${4:-5555}
shift $(( $# < 4 ? $# : 4 ))
[ "${1:-}" = "--" ] && shift
IGPT=${IGPT:-$(dirname "$0")/../.build/release/igpt}
[ -x "$IGPT" ] || { echo "local.sh: $IGPT not found: run 'make build' first" >&2; exit 1; }
mkdir -p "$RUN/logs"
SHARDS=${IGPT_SHARDS:-0}

"$IGPT" coordinator --config "$CONFIG" --run "$RUN" --bind "tcp://127.0.0.1:$PORT" --shards "$SHARDS" "$@" \
  > >(tee "$RUN/logs/coordinator.log") 2>&1 &
COORD=$!
PIDS=()
for k in $(seq 1 "$SHARDS"); do
  "$IGPT" server --connect "tcp://127.0.0.1:$PORT" --bind "tcp://127.0.0.1:$((PORT + k))" --name "shard-$k" --give-up-after 30 \
    > "$RUN/logs/shard-$k.log" 2>&1 &
  PIDS+=($!)
done
for i in $(seq 1 "$WORKERS"); do
  "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" --name "local-$i" --give-up-after 30 \
    ${IGPT_WORKER_THREADS:+--threads $IGPT_WORKER_THREADS} > "$RUN/logs/worker-$i.log" 2>&1 &
  PIDS+=($!)
done
stop() { kill -TERM "$COORD" "${PIDS[@]}" 2>/dev/null || true; }
trap stop INT TERM
status=0
wait "$COORD" || status=$?
# Workers exit on their own once told the run is over; after a stop they are told to quit.
[ $status -eq 0 ] || kill -TERM "${PIDS[@]}" 2>/dev/null || true
for p in "${PIDS[@]}"; do wait "$p" || true; done
echo "local.sh: coordinator exited with $status; logs in $RUN/logs/" >&2
exit $status
