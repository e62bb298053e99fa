#!/usr/bin/env bash
# How much a running probe job slows training (make bench-cluster): coordinator + 1 worker on
# the tiny config, without and with a probe job submitted at step 0; training tokens/s over
# steps 10..STEPS. probes.share (default 0.25) bounds the slowdown.
#
#   cluster/bench-probe-share.sh [CONFIG] [STEPS] [ROUNDS]
set -euo pipefail
CONFIG=${1:-configs/fashion-mnist-tiny.yaml}; STEPS=${2:-80}; ROUNDS=${3:-2}
IGPT=${IGPT:-$(dirname "$0")/../.build/release/igpt}
WORK=$(mktemp -d /tmp/igpt-share.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PORT=${PORT:-5592}
BATCH=$(grep -E '^\s*batch:' "$CONFIG" | head -1 | awk '{print $2}')
rate() {
  awk -v steps="$STEPS" -v batch="$BATCH" -v seq="$2" '
    /"loss"/ && !/val_loss/ {
      match($0, /"step":[0-9]+/); s = substr($0, RSTART + 7, RLENGTH - 7) + 0
      match($0, /"elapsed_s":[0-9.e+-]+/); e = substr($0, RSTART + 12, RLENGTH - 12) + 0
      if (s == 10) a = e; if (s == steps) b = e
    }
    END { printf "%.0f", (steps - 10) * batch * seq / (b - a) }' "$1/metrics.jsonl"
}
SEQ=$("$IGPT" train --config "$CONFIG" --run "$WORK/probe" --steps 1 2>&1 | grep -o 'images of [0-9]* tokens' | grep -o '[0-9]*' || echo 196)
for r in $(seq 1 "$ROUNDS"); do
  for mode in plain probe; do
    rm -rf "$WORK/$mode"
    "$IGPT" coordinator --config "$CONFIG" --run "$WORK/$mode" --steps "$STEPS" --bind "tcp://127.0.0.1:$PORT" > "$WORK/$mode.log" 2>&1 &
    sleep 0.5
    [ $mode = probe ] && "$IGPT" probe submit --coordinator "tcp://127.0.0.1:$PORT" --layers mid --train-images 5000 --eval-images 2000 > /dev/null
    "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" > /dev/null 2>&1
    wait
    eval "$mode=$(rate "$WORK/$mode" "$SEQ")"
  done
  awk -v r="$r" -v a="$plain" -v b="$probe" 'BEGIN { printf "round %d: training %d tokens/s alone, %d with a probe job running (%.3f)\n", r, a, b, b / a }'
done
