#!/usr/bin/env bash
# Multi-host cluster test on one machine (make cluster-test; needs root for `ip netns`).
#
# The coordinator and each worker run in their own network namespace with their own address
# (10.77.0.0/24 over veth pairs on a bridge), so all traffic crosses real interfaces. A worker
# is SIGKILLed mid-run and a new one joins later; the final model must be byte-identical to
# `igpt train` on one host with the same config. Traffic is CURVE-encrypted, and a worker whose
# key is not allow-listed is refused.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IGPT=${IGPT:-$ROOT/.build/release/igpt}
WORK=${WORK:-$(mktemp -d /tmp/igpt-netns.XXXXXX)}
STEPS=${STEPS:-100}
NET=10.77.0
BR=br-igpt$$
NSES=(c w1 w2 w3)
[ "$(id -u)" = 0 ] || { echo "netns-test: needs root (ip netns)" >&2; exit 1; }
ns() { echo "igpt$$-$1"; }

cleanup() {
  set +e
  for n in "${NSES[@]}"; do ip netns pids "$(ns $n)" 2>/dev/null | xargs -r kill -9; ip netns del "$(ns $n)" 2>/dev/null; done
  ip link del "$BR" 2>/dev/null
}
trap cleanup EXIT

ip link add "$BR" type bridge
ip link set "$BR" up
i=1
for n in "${NSES[@]}"; do
  ip netns add "$(ns $n)"
  ip link add "v$$$n" type veth peer name eth0 netns "$(ns $n)"
  ip link set "v$$$n" master "$BR" up
  ip -n "$(ns $n)" addr add "$NET.$i/24" dev eth0
  ip -n "$(ns $n)" link set eth0 up
  ip -n "$(ns $n)" link set lo up
  i=$((i + 1))
done
COORD_ADDR=$NET.1
echo "netns-test: coordinator $(ns c) at $COORD_ADDR, workers at $NET.2-4; work dir $WORK"

# A small store and config.
mkdir -p "$WORK"
"$IGPT" prepare --dataset fashion-mnist --resolution 14 --palette 16 --out "$WORK/store" > /dev/null 2>&1
cat > "$WORK/run.yaml" <<CONF
model: {layers: 2, embd: 64, heads: 2, objective: ar}
data: {store: $WORK/store}
train: {steps: $STEPS, batch: 16, microbatch: 4, lr: 0.003, warmup: 10, seed: 7, threads: 1, log_every: 1, val_every: 20, val_images: 32}
checkpoint: {every: 20, keep: 5}
cluster: {heartbeat_interval: 0.5, heartbeat_misses: 4}
CONF

# CURVE keys: the coordinator's pair, one per worker, all workers allow-listed; plus an intruder.
for k in coordinator w1 w2 w3 intruder; do "$IGPT" keys generate --out "$WORK/keys" --name $k > /dev/null; done
mkdir -p "$WORK/allow" && cp "$WORK/keys/w1.pub" "$WORK/keys/w2.pub" "$WORK/keys/w3.pub" "$WORK/allow/"

echo "netns-test: reference run with igpt train"
"$IGPT" train --config "$WORK/run.yaml" --run "$WORK/reference" > "$WORK/reference.log" 2>&1

ip netns exec "$(ns c)" "$IGPT" coordinator --config "$WORK/run.yaml" --run "$WORK/cluster" \
  --bind "tcp://$COORD_ADDR:5555" --secret-key "$WORK/keys/coordinator.key" --allow "$WORK/allow" > "$WORK/coordinator.log" 2>&1 &
COORD=$!
start_worker() {  # NAME [KEY]
  ip netns exec "$(ns $1)" "$IGPT" worker --connect "tcp://$COORD_ADDR:5555" --name "$1" --give-up-after "${3:-60}" \
    --secret-key "$WORK/keys/${2:-$1}.key" --server-key "$WORK/keys/coordinator.pub" > "$WORK/$1.log" 2>&1 &
}
start_worker w1; W1=$!
start_worker w2; W2=$!
# w3's namespace first hosts an intruder with a key that is not allow-listed
start_worker w3 intruder 3; INTRUDER=$!
sleep 0.2; mv "$WORK/w3.log" "$WORK/intruder.log" 2>/dev/null || true
step() { grep -o '"step":[0-9]*' "$WORK/cluster/metrics.jsonl" 2>/dev/null | tail -n 1 | cut -d: -f2; }
wait_step() { for _ in $(seq 1 600); do [ "$(step || echo 0)" -ge "$1" ] 2>/dev/null && return 0; sleep 0.1; done; echo "netns-test: run stuck before step $1" >&2; cat "$WORK/coordinator.log" >&2; exit 1; }

wait_step $((STEPS / 4))
echo "netns-test: SIGKILL worker w1 at step $(step)"
kill -9 $W1
wait_step $((STEPS / 2))
echo "netns-test: worker w3 joins at step $(step)"
start_worker w3; W3=$!
wait $COORD
wait $W2 $W3 || true
wait $INTRUDER && { echo "netns-test: the intruder was let in" >&2; exit 1; }
grep -q "not on the allow-list" "$WORK/coordinator.log" || { echo "netns-test: the intruder's refusal was not logged" >&2; exit 1; }

grep -q "worker w1 .*lost" "$WORK/coordinator.log" || { echo "netns-test: the coordinator never noticed w1 was gone" >&2; exit 1; }
grep -q "worker w3 joined from $NET.4" "$WORK/coordinator.log" || { echo "netns-test: w3 did not join from its own address" >&2; exit 1; }
last=$(printf 'step-%08d' "$STEPS")
if cmp "$WORK/reference/checkpoints/$last/model.safetensors" "$WORK/cluster/checkpoints/$last/model.safetensors"; then
  echo "netns-test: PASS: model.safetensors after $STEPS steps is byte-identical to igpt train (CURVE; w1 killed, w3 joined, intruder refused; addresses $NET.1-4)"
  grep -E "joined|lost|refused" "$WORK/coordinator.log"
else
  echo "netns-test: FAIL: the cluster's model differs from igpt train's" >&2
  exit 1
fi
