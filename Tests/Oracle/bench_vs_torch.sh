#!/usr/bin/env bash
# igpt bench and the PyTorch peer (../shared/tools/torch_igpt.py bench) on the same shape,
# alternating in one session (this machine is shared and noisy: only side-by-side ratios mean
# anything); prints each pair's tokens/s and ratio, then the median and pooled ratios.
#
#   Tests/Oracle/bench_vs_torch.sh IGPT TORCH_PYTHON [PAIRS [STEPS [SHAPE FLAGS...]]]
#
# The shape defaults to the bench shape (8 x 256, T 196); STEPS (default 10) timed steps per run.
set -euo pipefail
IGPT=$1; PY=$2; PAIRS=${3:-5}; STEPS=${4:-10}
shift $(( $# < 4 ? $# : 4 ))
SHAPE=(--layers 8 --embd 256 --heads 8 --seq 196 --batch 16 --vocab 16 --threads 2)
[ $# -gt 0 ] && SHAPE=("$@")
echo "shape: ${SHAPE[*]}"
TORCH=$(dirname "$0")/../../../shared/tools/torch_igpt.py
rate() { "$PY" -c 'import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["tokens_per_s"])'; }
ratios=()
for i in $(seq 1 "$PAIRS"); do
  a=$("$IGPT" bench "${SHAPE[@]}" --steps "$STEPS" 2>/dev/null | rate)
  b=$("$PY" "$TORCH" bench "${SHAPE[@]}" --steps "$STEPS" --warmup 2 2>/dev/null | rate)
  r=$("$PY" -c "print(f'{$a / $b:.3f}')")
  echo "pair $i: igpt $a tokens/s, torch $b tokens/s, ratio $r"
  ratios+=("$a/$b")
done
"$PY" - "${ratios[@]}" <<'PY'
import statistics, sys
pairs = [tuple(map(float, p.split("/"))) for p in sys.argv[1:]]
print(f"median ratio {statistics.median(a / b for a, b in pairs):.3f}, "
      f"pooled {sum(a for a, _ in pairs) / sum(b for _, b in pairs):.3f} over {len(pairs)} pairs")
PY
