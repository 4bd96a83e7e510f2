#!/usr/bin/env bash
# Benchmark (not a test): what shared observability costs.
#  1. `sandstack obs up` with the Prometheus image built (warm) and from nothing (image removed first,
#     so it includes the Debian package install), and `obs down`.
#  2. `sandstack up` + `destroy` of the demo with observability enabled (stack running) against the
#     same with observability disabled, alternating; and the observability stage's own time.
# Usage: bash scripts/bench-obs.sh [rounds]   (default 5)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
ROUNDS="${1:-5}"
make_bench_repo
cp -r "$BASE/demo" "$BASE/demo-off"
sed -i 's/^  enabled: true/  enabled: false/' "$BASE/demo-off/sandstack.yaml"
trap '$CLI --cwd "$BASE/demo" destroy >/dev/null 2>&1 || true; $CLI --cwd "$BASE/demo-off" destroy >/dev/null 2>&1 || true; $CLI obs down --volumes >/dev/null 2>&1 || true; rm -rf "$BASE"' EXIT

cold=""
if [ "${BENCH_OBS_COLD:-1}" = 1 ]; then
  docker rmi -f sandstack-prometheus:2.42.0 >/dev/null 2>&1 || true
  t0=$(now); $CLI obs up >/dev/null 2>&1; t1=$(now); cold=$(secs "$t0" "$t1")
  $CLI obs down >/dev/null 2>&1
  echo "obs up from nothing (builds Prometheus from Debian's package): ${cold} s" >&2
fi
warm=(); downs=()
for r in $(seq 1 3); do
  t0=$(now); $CLI obs up >/dev/null 2>&1; t1=$(now); warm+=("$(secs "$t0" "$t1")")
  t0=$(now); $CLI obs down >/dev/null 2>&1; t1=$(now); downs+=("$(secs "$t0" "$t1")")
done
$CLI obs up >/dev/null 2>&1

echo "warming the image cache..." >&2
$CLI --cwd "$BASE/demo" up >/dev/null 2>&1; $CLI --cwd "$BASE/demo" destroy >/dev/null 2>&1

on=(); off=(); stage=()
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now); $CLI --cwd "$BASE/demo" up --json > "$BASE/up.json" 2>/dev/null; t1=$(now)
  a=$(secs "$t0" "$t1")
  stage+=("$(node -e 'const r=require(process.argv[1]);console.log((r.gate.stages.find(s=>s.name==="observability").durationMs/1000).toFixed(3))' "$BASE/up.json")")
  $CLI --cwd "$BASE/demo" destroy >/dev/null 2>&1
  t0=$(now); $CLI --cwd "$BASE/demo-off" up >/dev/null 2>&1; t1=$(now)
  b=$(secs "$t0" "$t1")
  $CLI --cwd "$BASE/demo-off" destroy >/dev/null 2>&1
  on+=("$a"); off+=("$b")
  echo "round $r: up with observability ${a} s (stage ${stage[-1]} s), without ${b} s" >&2
done
echo "shared stack:"
[ -n "$cold" ] && echo "  obs up from nothing (Prometheus image built):   ${cold} s"
echo "  obs up, image present (median of 3):             $(median "${warm[@]}") s"
echo "  obs down (graceful stop, median of 3):            $(median "${downs[@]}") s"
echo "instance up (demo, warm image cache), median over $ROUNDS alternating rounds:"
echo "  observability enabled, stack running:  $(median "${on[@]}") s (observability stage $(median "${stage[@]}") s)"
echo "  observability disabled:                $(median "${off[@]}") s"
