#!/usr/bin/env bash
# make fuzz [FUZZ_SECONDS=300] [FUZZ_RUNS=1000000] [FUZZ_TARGETS="message codec ..."]: runs each
# libFuzzer harness (Tests/FuzzHarness) from its committed seed corpus (Tests/Fuzz/corpus/NAME)
# for FUZZ_SECONDS or FUZZ_RUNS executions, whichever comes first (0 runs: no limit), two at a
# time, and prints executions, coverage and crashes per harness. A crash input is kept in
# .build-fuzz/crashes/; copy it to Tests/Fuzz/regressions/NAME/ once fixed (make test replays it).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/.build-fuzz/release/igpt-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-300}
RUNS_EACH=${FUZZ_RUNS:-1000000}
TARGETS=${FUZZ_TARGETS:-"message codec safetensors npy idx cifar image config state probejobs manifest hfconfig preprocessor hfindex store curvekey allowlist zap tfevents metrics vqvaeconfig vqvaecheckpoint"}
OUT=$ROOT/.build-fuzz/runs
mkdir -p "$OUT" "$ROOT/.build-fuzz/crashes"
run() {
  local t=$1 work=$OUT/$1
  mkdir -p "$work/corpus"
  IGPT_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=0 "$BIN" -max_total_time="$SECONDS_EACH" $([ "$RUNS_EACH" -gt 0 ] && echo "-runs=$RUNS_EACH") -rss_limit_mb=2048 -max_len=65536 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$ROOT/.build-fuzz/crashes/$t-" "$work/corpus" "$ROOT/Tests/Fuzz/corpus/$t" \
    > "$work/log" 2>&1
  echo $? > "$work/rc"
}
set -- $TARGETS
while [ $# -gt 0 ]; do
  run "$1" & [ $# -gt 1 ] && { run "$2" & }
  wait; shift; [ $# -gt 0 ] && shift
done
printf "%-13s %12s %8s %8s %7s\n" harness executions exec/s coverage crashes
fail=0
for t in $TARGETS; do
  log=$OUT/$t/log
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  crashes=$(ls "$ROOT/.build-fuzz/crashes/" 2>/dev/null | grep -c "^$t-" || true)
  [ "$(cat "$OUT/$t/rc")" = 0 ] || fail=1
  printf "%-13s %12s %8s %8s %7s\n" "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$crashes"
done
exit $fail
