#!/usr/bin/env bash
# Side-by-side cluster throughput on this host (make bench-cluster): for each pair, `igpt train`,
# then coordinator + 1 worker in plaintext, then the same with CURVE keys; tokens/s over steps
# 10..STEPS from each run's metrics.jsonl, and the ratios to `igpt train`.
#
#   cluster/bench.sh [CONFIG] [STEPS] [ROUNDS]
set -euo pipefail
CONFIG=${1:-configs/fashion-mnist-tiny.yaml}; STEPS=${2:-60}; ROUNDS=${3:-3}
IGPT=${IGPT:-$(dirname "$0")/../.build/release/igpt}
WORK=$(mktemp -d /tmp/igpt-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PORT=${PORT:-5591}
"$IGPT" keys generate --out "$WORK/keys" --name coordinator > /dev/null
"$IGPT" keys generate --out "$WORK/keys" --name worker > /dev/null
mkdir -p "$WORK/allow" && cp "$WORK/keys/worker.pub" "$WORK/allow/"

# tokens/s between step 10 and the last step, from elapsed_s in metrics.jsonl
rate() {
  local f=$1/metrics.jsonl
  awk -v steps="$STEPS" -v per="$PER_STEP" '
    /"loss"/ && !/val_loss/ {
      match($0, /"step":[0-9]+/); s = substr($0, RSTART + 7, RLENGTH - 7) + 0
      match($0, /"elapsed_s":[0-9.e+-]+/); e = substr($0, RSTART + 12, RLENGTH - 12) + 0
      if (s == 10) a = e; if (s == steps) b = e
    }
    END { printf "%.0f", (steps - 10) * per / (b - a) }' "$f"
}
BATCH=$(grep -E '^\s*batch:' "$CONFIG" | head -1 | awk '{print $2}')
SEQ=$("$IGPT" train --config "$CONFIG" --run "$WORK/probe" --steps 1 2>&1 | grep -o 'images of [0-9]* tokens' | grep -o '[0-9]*' || echo 196)
PER_STEP=$((BATCH * SEQ))
echo "config $CONFIG: $STEPS steps, $PER_STEP tokens per step"
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/t" "$WORK/p" "$WORK/k"
  "$IGPT" train --config "$CONFIG" --run "$WORK/t" --steps "$STEPS" > /dev/null 2>&1
  "$IGPT" coordinator --config "$CONFIG" --run "$WORK/p" --steps "$STEPS" --bind "tcp://127.0.0.1:$PORT" > /dev/null 2>&1 &
  "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" > /dev/null 2>&1; wait
  "$IGPT" coordinator --config "$CONFIG" --run "$WORK/k" --steps "$STEPS" --bind "tcp://127.0.0.1:$PORT" \
    --secret-key "$WORK/keys/coordinator.key" --allow "$WORK/allow" > /dev/null 2>&1 &
  "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" --secret-key "$WORK/keys/worker.key" --server-key "$WORK/keys/coordinator.pub" > /dev/null 2>&1; wait
  t=$(rate "$WORK/t"); p=$(rate "$WORK/p"); k=$(rate "$WORK/k")
  same=$(cmp -s "$WORK/t/checkpoints/$(printf 'step-%08d' "$STEPS")/model.safetensors" \
                "$WORK/k/checkpoints/$(printf 'step-%08d' "$STEPS")/model.safetensors" && echo yes || echo NO)
  awk -v r="$r" -v t="$t" -v p="$p" -v k="$k" -v same="$same" 'BEGIN {
    printf "round %d: train %d tokens/s | coordinator+1 worker %d (%.3f of train) | with CURVE %d (%.3f of train, %.3f of plaintext) | identical model: %s\n",
      r, t, p, p / t, k, k / t, k / p, same }'
done
