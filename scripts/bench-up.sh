#!/usr/bin/env bash
# Benchmark (not a test): wall time of `sandstack up` for one instance, for three instances started
# in parallel, and of raw Compose doing the same start and wait (up -d --build, then polling health)
# on the demo stack. Images are built once first so every round measures warm-cache starts.
# Usage: bash scripts/bench-up.sh [rounds]   (default 3). Prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
ROOT=$PWD
BASE=$(mktemp -d /tmp/sandstack-bench.XXXXXX)
export SANDSTACK_HOME="$BASE/.home"
CLI="node $ROOT/dist/cli/main.js"
cleanup() {
  for id in bench-single demo--b1 demo--b2 demo--b3; do $CLI --cwd "$BASE/demo" --instance "$id" destroy >/dev/null 2>&1 || true; done
  (cd "$BASE/demo" && docker-compose -p benchraw down -v -t 0 >/dev/null 2>&1) || true
  rm -rf "$BASE"
}
trap cleanup EXIT
cp -r examples/demo-stack "$BASE/demo"
(cd "$BASE/demo" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm demo)
for b in b1 b2 b3; do $CLI --cwd "$BASE/demo" new "$b" >/dev/null; done
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }
median() { python3 -c "import statistics,sys;print(f'{statistics.median(map(float,sys.argv[1:])):.2f}')" "$@"; }

echo "warming the image cache..." >&2
$CLI --cwd "$BASE/demo" --instance bench-single up >/dev/null 2>&1
$CLI --cwd "$BASE/demo" --instance bench-single destroy >/dev/null 2>&1

wait_healthy() { # project
  local deadline=$((SECONDS + 180))
  while [ $SECONDS -lt $deadline ]; do
    local ids states
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1")
    states=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $ids 2>/dev/null | sort -u | tr '\n' ' ')
    [ "$states" = "healthy " ] && return 0
    sleep 0.2
  done
  return 1
}

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

  # Raw Compose: same start and wait, on a copy without the fixed container name and ports
  # (the raw file as written could not run beside anything else).
  sed -e '/container_name:/d' -e 's/"8000:8000"/"127.0.0.1::8000"/' -e 's/"5432:5432"/"127.0.0.1::5432"/' "$BASE/demo/compose.yaml" > "$BASE/demo/compose.raw.yaml"
  t0=$(now)
  (cd "$BASE/demo" && docker-compose -p benchraw -f compose.raw.yaml up -d --build >/dev/null 2>&1 && wait_healthy benchraw)
  t1=$(now)
  raw+=("$(secs "$t0" "$t1")")
  (cd "$BASE/demo" && docker-compose -p benchraw -f compose.raw.yaml down -v -t 0 >/dev/null 2>&1)
  echo "round $r: single ${single[-1]} s, three in parallel ${parallel[-1]} s, raw compose single ${raw[-1]} s" >&2
done
echo "median over $ROUNDS rounds (warm image cache, fresh volumes):"
echo "  sandstack up, one instance:            $(median "${single[@]}") s"
echo "  sandstack up, three instances at once: $(median "${parallel[@]}") s (wall time until all three are healthy)"
echo "  raw docker-compose up -d --build + health wait: $(median "${raw[@]}") s"
