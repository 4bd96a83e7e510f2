#!/usr/bin/env bash
# Benchmark (not a test): `sandstack gate --fresh` against the raw Compose commands that do the same
# start, wait and teardown on the demo stack (up -d --build; poll until healthy; down -v -t 0), run
# alternately. Prints each pair and the median ratio gate/raw.
# Usage: bash scripts/bench-gate.sh [rounds]   (default 5)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
ROUNDS="${1:-5}"
make_bench_repo
trap 'raw_compose benchraw down -v -t 0 --rmi local >/dev/null 2>&1 || true; rm -rf "$BASE"' EXIT

echo "warming the image cache..." >&2
$CLI --cwd "$BASE/demo" gate --fresh >/dev/null 2>&1

gate=(); raw=(); ratios=()
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now); $CLI --cwd "$BASE/demo" gate --fresh >/dev/null 2>&1; t1=$(now)
  g=$(secs "$t0" "$t1")
  t0=$(now)
  raw_compose benchraw up -d --build >/dev/null 2>&1
  wait_healthy benchraw
  raw_compose benchraw down -v -t 0 >/dev/null 2>&1
  t1=$(now)
  c=$(secs "$t0" "$t1")
  gate+=("$g"); raw+=("$c"); ratios+=("$(python3 -c "print(f'{$g/$c:.3f}')")")
  echo "round $r: gate --fresh ${g} s, raw compose ${c} s, ratio ${ratios[-1]}" >&2
done
echo "median over $ROUNDS alternating rounds (warm image cache):"
echo "  sandstack gate --fresh (config, build, start, healthy, 5 probes, isolation, teardown): $(median "${gate[@]}") s"
echo "  raw compose (up -d --build, poll health, down -v -t 0):                             $(median "${raw[@]}") s"
echo "  median ratio gate/raw: $(median "${ratios[@]}")"
