#!/usr/bin/env bash
# Start a run across hosts over ssh.
#
#   cluster/hosts.sh HOSTS_FILE CONFIG RUN_DIR [PORT]
#
# HOSTS_FILE: the first line is the coordinator's host (the address workers connect to), each
# further line a worker host, optionally followed by how many workers to start there:
#     10.0.0.1
#     10.0.0.2 2
#     10.0.0.3
# Every host needs the igpt binary at $IGPT_REMOTE (default: igpt on its PATH); only the
# coordinator's host needs CONFIG's token store. IGPT_KEYS=DIR (the same path on every host)
# turns on CURVE: DIR/coordinator.key and DIR/allow/ on the coordinator's host, DIR/worker.key
# and DIR/coordinator.pub on the workers (see cluster/README.md). Without it the coordinator
# runs --insecure. IGPT_SSH overrides the ssh command and IGPT_COORDINATOR_FLAGS adds flags
# (e.g. --resume). Ctrl-C stops the workers and the coordinator.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,17p' "$0"; exit 2; fi
HOSTS=$1; CONFIG=$2; RUN=$3; PORT=${4:-5555}
SSH=${IGPT_SSH:-ssh -o BatchMode=yes}
BIN=${IGPT_REMOTE:-igpt}
mapfile -t LINES < <(grep -v '^\s*\(#\|$\)' "$HOSTS")
[ ${#LINES[@]} -ge 2 ] || { echo "hosts.sh: $HOSTS needs a coordinator line and at least one worker line" >&2; exit 2; }
COORD_HOST=$(echo "${LINES[0]}" | awk '{print $1}')
ENDPOINT="tcp://$COORD_HOST:$PORT"
if [ -n "${IGPT_KEYS:-}" ]; then
  COORD_SECURITY="--secret-key $IGPT_KEYS/coordinator.key --allow $IGPT_KEYS/allow"
  WORKER_SECURITY="--secret-key $IGPT_KEYS/worker.key --server-key $IGPT_KEYS/coordinator.pub"
else
  COORD_SECURITY="--insecure"; WORKER_SECURITY=""
  echo "hosts.sh: no IGPT_KEYS: traffic is unencrypted and unauthenticated (--insecure)" >&2
fi

echo "hosts.sh: coordinator on $COORD_HOST ($ENDPOINT)" >&2
$SSH "$COORD_HOST" "$BIN coordinator --config '$CONFIG' --run '$RUN' --bind tcp://0.0.0.0:$PORT $COORD_SECURITY ${IGPT_COORDINATOR_FLAGS:-}" &
COORD=$!
PIDS=()
for line in "${LINES[@]:1}"; do
  host=$(echo "$line" | awk '{print $1}'); n=$(echo "$line" | awk '{print ($2 == "" ? 1 : $2)}')
  for i in $(seq 1 "$n"); do
    echo "hosts.sh: worker $host-$i" >&2
    $SSH "$host" "$BIN worker --connect $ENDPOINT --name $host-$i --give-up-after 120 $WORKER_SECURITY" &
    PIDS+=($!)
  done
done
trap 'kill -TERM "$COORD" "${PIDS[@]}" 2>/dev/null || true' INT TERM
status=0
wait "$COORD" || status=$?
for p in "${PIDS[@]}"; do wait "$p" || true; done
exit $status
