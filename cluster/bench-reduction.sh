#!/usr/bin/env bash
# What the coordinator holds and receives per step (make bench-reduction).
#
#   cluster/bench-reduction.sh memory [IGPT] [EXTRA]   # 8 x 512 (25M parameters), 32 microbatches a step:
#       one worker stuck on its first microbatch (--debug-stall-after 0), another computes the rest;
#       prints the coordinator's peak RSS. EXTRA goes to the coordinator (e.g. --debug-max-block 1).
#   cluster/bench-reduction.sh wire [IGPT] [WORKERS]  # 4 x 256, 32 microbatches a step, WORKERS healthy
#       workers: gradients and bytes the coordinator received per step.
#
# IGPT defaults to .build/release/igpt; give another build's binary to compare (old and new side
# by side in one session). Needs the CIFAR-10 sample (../shared/data/cifar10-sample).
set -euo pipefail
MODE=${1:?memory or wire}
IGPT=${2:-$(dirname "$0")/../.build/release/igpt}
SAMPLE=${SAMPLE:-$(dirname "$0")/../../shared/data/cifar10-sample}
WORK=$(mktemp -d /tmp/igpt-reduction.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=${PORT:-5597}
"$IGPT" prepare --dataset "$SAMPLE" --resolution 16 --palette 16 --out "$WORK/store" > /dev/null

if [ "$MODE" = memory ]; then
  cat > "$WORK/run.yaml" <<EOF
model: {layers: 8, embd: 512, heads: 8, objective: ar}
data: {store: $WORK/store}
train: {steps: 2, batch: 32, microbatch: 1, lr: 0.001, warmup: 1, seed: 1, threads: 1, log_every: 1, val_every: 0}
checkpoint: {every: 100, keep: 1}
cluster: {heartbeat_interval: 0.5, heartbeat_misses: 20, task_timeout: ${TIMEOUT:-60}}
EOF
  /usr/bin/time -f "%M" -o "$WORK/rss" "$IGPT" coordinator --config "$WORK/run.yaml" --run "$WORK/run" \
    --bind "tcp://127.0.0.1:$PORT" ${3:-} > "$WORK/coordinator.log" 2>&1 &
  sleep 1
  "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" --name stuck --debug-stall-after 0 --give-up-after 30 > "$WORK/stuck.log" 2>&1 &
  sleep 3
  "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" --name healthy --give-up-after 30 > "$WORK/healthy.log" 2>&1
  wait %1
  kill %2 2>/dev/null || true
  echo "coordinator peak RSS: $(awk '{printf "%.2f GB", $1 / 1048576}' "$WORK/rss") (${3:-default blocks})"
  grep -E '"step":[0-9]+' "$WORK/run/metrics.jsonl" | sed -E 's/.*"step":([0-9]+).*"step_s":([0-9.]+).*/  step \1: \2 s/' || true
else
  W=${3:-2}
  cat > "$WORK/run.yaml" <<EOF
model: {layers: 4, embd: 256, heads: 4, objective: ar}
data: {store: $WORK/store}
train: {steps: 4, batch: 32, microbatch: 1, lr: 0.001, warmup: 1, seed: 1, threads: 1, log_every: 1, val_every: 0}
checkpoint: {every: 100, keep: 1}
cluster: {heartbeat_interval: 0.5, heartbeat_misses: 20, task_timeout: 60}
EOF
  "$IGPT" coordinator --config "$WORK/run.yaml" --run "$WORK/run" --bind "tcp://127.0.0.1:$PORT" > "$WORK/coordinator.log" 2>&1 &
  for i in $(seq 1 "$W"); do "$IGPT" worker --connect "tcp://127.0.0.1:$PORT" --name "w$i" --give-up-after 30 > "$WORK/w$i.log" 2>&1 & done
  wait %1
  # steps 2..4 (step 1 may start before every worker is in)
  awk -v w="$W" '/"wire_bytes_in"/ {
      match($0, /"step":[0-9]+/); s = substr($0, RSTART + 7, RLENGTH - 7) + 0
      match($0, /"wire_bytes_in":[0-9]+/); b = substr($0, RSTART + 16, RLENGTH - 16) + 0
      g = "-"; if (match($0, /"gradients_in":[0-9]+/)) g = substr($0, RSTART + 15, RLENGTH - 15)
      if (s > 1) { n++; sum += b; printf "  step %d: %s gradients, %.1f MB in\n", s, g, b / 1e6 }
    }
    END { printf "%d workers, 32 microbatches: %.1f MB received per step (mean of %d steps)\n", w, sum / n / 1e6, n }' "$WORK/run/metrics.jsonl"
fi
