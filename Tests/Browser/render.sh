#!/usr/bin/env bash
# Renders an igpt report in headless Chromium (Debian's `chromium`) to a PNG and fails when the
# page logged anything to its console; prints the render time.
#
#   Tests/Browser/render.sh REPORT.html OUT.png [WIDTHxHEIGHT]
set -euo pipefail
html=$(realpath "$1"); out=$2; size=${3:-1000x4000}
command -v chromium >/dev/null || { echo "render.sh: chromium is not installed (apt-get install chromium)" >&2; exit 2; }
log=$(mktemp)
start=$(date +%s.%N)
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="${size/x/,}" \
  --enable-logging=stderr --v=0 --screenshot="$out" "file://$html" 2>"$log" >/dev/null
end=$(date +%s.%N)
console=$(grep -c 'CONSOLE' "$log" || true)
printf 'rendered %s -> %s in %.2f s, %s console message(s)\n' "$1" "$out" "$(echo "$end - $start" | bc)" "$console"
grep 'CONSOLE' "$log" >&2 || true
rm -f "$log"
[ -s "$out" ] && [ "$console" -eq 0 ]
