# Helpers shared by the benchmark scripts (sourced, not run).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLI="node $ROOT/dist/cli/main.js"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }
median() { python3 -c "import statistics,sys;print(f'{statistics.median(map(float,sys.argv[1:])):.2f}')" "$@"; }

# A throwaway git repository `demo` holding the demo stack, under a new temp dir ($BASE).
make_bench_repo() {
  BASE=$(mktemp -d /tmp/sandstack-bench.XXXXXX)
  export SANDSTACK_HOME="$BASE/.home"
  cp -r "$ROOT/examples/demo-stack" "$BASE/demo"
  (cd "$BASE/demo" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm demo)
  # The raw compose file as Compose alone could run it beside other stacks: no fixed name, ports on
  # 127.0.0.1 with a random host port.
  sed -e '/container_name:/d' -e 's/"8000:8000"/"127.0.0.1::8000"/' -e 's/"5432:5432"/"127.0.0.1::5432"/' \
    "$BASE/demo/compose.yaml" > "$BASE/demo/compose.raw.yaml"
}

# Polls until every container of a Compose project is healthy (what `up --wait` would do on v2).
wait_healthy() {
  local deadline=$((SECONDS + 180)) ids states
  while [ $SECONDS -lt $deadline ]; do
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$1")
    if [ -n "$ids" ]; then
      states=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $ids 2>/dev/null | sort -u | tr '\n' ' ')
      [ "$states" = "healthy " ] && return 0
    fi
    sleep 0.2
  done
  return 1
}

raw_compose() { (cd "$BASE/demo" && DB_PASSWORD=bench-only-password docker-compose -p "$1" -f compose.raw.yaml "${@:2}"); }
