#!/usr/bin/env bash
# Writes one run config of the recipe sweep (issue 20): a pilot at a fixed step budget, probed at
# its last step on all layers (first 5,000 train / 2,000 val / 2,000 test images, raw pixels too).
#
#   configs/sweep/pilot.sh OUT.yaml LAYERS EMBD HEADS LR WARMUP STEPS AUGMENT [STORE]
#
# AUGMENT: none, f (flip), t1f or t2f (translate 1 or 2 pixels, and flip). STORE defaults to
# data/fmnist14 (igpt prepare --dataset fashion-mnist --resolution 14 --palette 16 --out data/fmnist14).
# Then: igpt train --config OUT.yaml --run runs/sweep/NAME
set -euo pipefail
out=$1; L=$2; C=$3; H=$4; lr=$5; wu=$6; steps=$7; aug=$8; store=${9:-data/fmnist14}
case $aug in
  none) a="" ;; f) a=", augment: {flip: true}" ;;
  t1f) a=", augment: {translate: 1, flip: true}" ;; t2f) a=", augment: {translate: 2, flip: true}" ;;
  *) echo "pilot.sh: AUGMENT must be none, f, t1f or t2f (got $aug)" >&2; exit 2 ;;
esac
cat > "$out" <<YAML
model: {layers: $L, embd: $C, heads: $H, objective: ar}
data: {store: $store$a}
train: {steps: $steps, batch: 32, microbatch: 32, lr: $lr, warmup: $wu, clip: 1.0, seed: 0, log_every: 20, val_every: 100, val_images: 2048}
checkpoint: {every: $steps, keep: 2}
probes: {every: $steps, layers: all, train_images: 5000, eval_images: 2000, raw_pixels: true}
YAML
