#!/usr/bin/env bash
# Kernel targets that share an arithmetic compute the same bytes; the x86-64 baseline does not.
#
# Builds this checkout for haswell (AVX2 + FMA), for x86-64 (no FMA) and, on an AVX-512 host,
# for skylake-avx512, each in its own build directory; then, with the same OpenBLAS kernels
# (Haswell) for all, compares their numerics probes (igpt info) and the model after a few
# training steps at a 32x32 image's length (T 1024: 16 attention blocks, 4 forward spans),
# AR and BERT. Prints one line per build and per comparison; exits 1 when builds with the same
# arithmetic differ or the baseline agrees with them.
#
#   Tests/Targets/check.sh            (make check-targets; about 25 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
TMP=$(mktemp -d /tmp/igpt-targets-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
targets=(haswell x86-64)
grep -q avx512bw /proc/cpuinfo && targets+=(skylake-avx512)
for t in "${targets[@]}"; do
  echo "building for $t (.build-$t)"
  IGPT_TARGET_CPU=$t swift build -c release --product igpt --build-path ".build-$t" 2>&1 | tail -1
done
export OPENBLAS_CORETYPE=Haswell
first=".build-${targets[0]}/release/igpt"
"$first" prepare --dataset ../shared/data/cifar10-sample --resolution 32 --palette 16 --out "$TMP/cifar32" >/dev/null
for objective in ar bert; do
  cat > "$TMP/$objective.yaml" <<YAML
model: {layers: 2, embd: 128, heads: 2, objective: $objective}
data: {store: $TMP/cifar32}
train: {steps: 3, batch: 4, microbatch: 4, lr: 0.002, warmup: 1, seed: 0, log_every: 1, val_every: 1000, val_images: 16, threads: 2}
checkpoint: {every: 3, keep: 1}
YAML
done
declare -A result
for t in "${targets[@]}"; do
  bin=".build-$t/release/igpt"
  probe=$("$bin" info --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["numerics"]["probe"], d["kernel_arithmetic"])')
  models=""
  for objective in ar bert; do
    "$bin" train --config "$TMP/$objective.yaml" --run "$TMP/run-$t-$objective" >/dev/null 2>&1
    models+=" $objective $(cat "$TMP/run-$t-$objective"/checkpoints/*/model.safetensors | sha256sum | cut -c1-16)"
  done
  result[$t]="probe ${probe%% *}$models"
  echo "$t (${probe#* }): ${result[$t]}"
done
status=0
if [ -n "${result[skylake-avx512]:-}" ]; then
  if [ "${result[haswell]}" = "${result[skylake-avx512]}" ]; then echo "haswell = skylake-avx512: same bytes"
  else echo "haswell != skylake-avx512: builds with the same arithmetic differ"; status=1; fi
fi
if [ "${result[haswell]}" != "${result[x86-64]}" ]; then echo "x86-64 (baseline) != haswell: another numerics, as its fingerprint says"
else echo "x86-64 (baseline) = haswell: the baseline was expected to differ"; status=1; fi
exit $status
