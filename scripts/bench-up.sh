#!/usr/bin/env bash
# Benchmark (not a test): wall time of `sandstack up` for one instance, for three instances started
# in parallel, and of raw Compose doing the same start and wait (up -d --build, then polling health)
# on the demo stack. Images are built once first so every round measures warm-cache starts.
# Usage: bash scripts/bench-up.sh [rounds]   (default 3). Prints medians.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
ROUNDS="${1:-3}"
make_bench_repo
cleanup() {
  for id in bench-single demo--b1 demo--b2 demo--b3; do $CLI --cwd "$BASE/demo" --instance "$id" destroy >/dev/null 2>&1 || true; done
  raw_compose benchraw down -v -t 0 --rmi local >/dev/null 2>&1 || true
  rm -rf "$BASE"
}
trap cleanup EXIT
for b in b1 b2 b3; do $CLI --cwd "$BASE/demo" new "$b" >/dev/null 2>&1; done

echo "warming the image cache..." >&2
$CLI --cwd "$BASE/demo" --instance bench-single up >/dev/null 2>&1
$CLI --cwd "$BASE/demo" --instance bench-single destroy >/dev/null 2>&1

single=(); parallel=(); raw=()
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now); $CLI --cwd "$BASE/demo" --instance bench-single up >/dev/null 2>&1; t1=$(now)
  single+=("$(secs "$t0" "$t1")")
  $CLI --cwd "$BASE/demo" --instance bench-single destroy >/dev/null 2>&1

  t0=$(now)
  for b in b1 b2 b3; do $CLI --cwd "$BASE/demo--$b" up >/dev/null 2>&1 & done
  wait
  t1=$(now)
  parallel+=("$(secs "$t0" "$t1")")
  for b in b1 b2 b3; do $CLI --cwd "$BASE/demo--$b" down >/dev/null 2>&1; docker volume rm "demo--${b}_pgdata" >/dev/null 2>&1 || true; done

  # Raw Compose: the same start and wait (compose.raw.yaml: see bench-lib.sh).
  t0=$(now)
  raw_compose benchraw up -d --build >/dev/null 2>&1 && wait_healthy benchraw
  t1=$(now)
  raw+=("$(secs "$t0" "$t1")")
  raw_compose benchraw down -v -t 0 >/dev/null 2>&1
  echo "round $r: single ${single[-1]} s, three in parallel ${parallel[-1]} s, raw compose single ${raw[-1]} s" >&2
done
echo "median over $ROUNDS rounds (warm image cache, fresh volumes):"
echo "  sandstack up, one instance:            $(median "${single[@]}") s"
echo "  sandstack up, three instances at once: $(median "${parallel[@]}") s (wall time until all three are healthy)"
echo "  raw docker-compose up -d --build + health wait: $(median "${raw[@]}") s"
