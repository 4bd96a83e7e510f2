# Helpers shared by the benchmark scripts (sourced, not run).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLI="node $ROOT/dist/cli/main.js"
V1_COMPOSE=/opt/sandstack/bin/docker-compose-v1

now() { date +%s.%N; }
# secs <t0> <t1> [digits]: t1 - t0 in seconds.
secs() { python3 -c "print(f'{$2-$1:.${3:-2}f}')"; }
median() { python3 -c "import statistics,sys;print(f'{statistics.median(map(float,sys.argv[1:])):.2f}')" "$@"; }

# select_compose [v1|v2|'']: the Compose sandstack and the raw commands use. v1 is the v1 binary
# (SANDSTACK_COMPOSE, which sandstack honours, is set to it); v2 is `docker compose` (SANDSTACK_COMPOSE
# unset, so sandstack uses its own detection, which prefers v2); '' keeps SANDSTACK_COMPOSE when set,
# else v2. Sets COMPOSE_CMD (argv array), COMPOSE_VARIANT, COMPOSE_VERSION, COMPOSE_PATH.
select_compose() {
  case "${1:-}" in
    v1) export SANDSTACK_COMPOSE="$V1_COMPOSE" ;;
    v2) unset SANDSTACK_COMPOSE ;;
    '') ;;
    *) echo "unknown Compose '$1' (v1 or v2)" >&2; return 2 ;;
  esac
  if [ -n "${SANDSTACK_COMPOSE:-}" ]; then read -r -a COMPOSE_CMD <<< "$SANDSTACK_COMPOSE"; else COMPOSE_CMD=(docker compose); fi
  COMPOSE_VERSION=$("${COMPOSE_CMD[@]}" version --short 2>/dev/null) || { echo "Compose '${COMPOSE_CMD[*]}' does not answer 'version'" >&2; return 3; }
  COMPOSE_VERSION=${COMPOSE_VERSION#v}
  case "$COMPOSE_VERSION" in 1.*) COMPOSE_VARIANT=v1 ;; *) COMPOSE_VARIANT=v2 ;; esac
  COMPOSE_PATH=$(command -v "${COMPOSE_CMD[0]}")
  if [ "${COMPOSE_CMD[*]}" = "docker compose" ]; then
    local plugin
    plugin=$(docker info --format '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}' 2>/dev/null || true)
    [ -n "$plugin" ] && COMPOSE_PATH="$COMPOSE_PATH compose ($plugin)"
  fi
}

# A throwaway git repository holding the demo stack, $BASE/<name> (default demo), under a new temp
# dir ($BASE), with its own state home; REPO is its path.
make_bench_repo() {
  BASE=$(mktemp -d /tmp/sandstack-bench.XXXXXX)
  export SANDSTACK_HOME="$BASE/.home"
  REPO="$BASE/${1:-demo}"
  cp -r "$ROOT/examples/demo-stack" "$REPO"
  (cd "$REPO" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm demo)
  make_raw_file "$REPO"
}

# The raw compose file as Compose alone could run it beside other stacks: no fixed name, ports on
# 127.0.0.1 with a random host port. Written to <dir>/compose.raw.yaml (untracked).
make_raw_file() {
  sed -e '/container_name:/d' -e 's/"8000:8000"/"127.0.0.1::8000"/' -e 's/"5432:5432"/"127.0.0.1::5432"/' \
    "$1/compose.yaml" > "$1/compose.raw.yaml"
}

# Polls until every container of a Compose project is healthy (what `up --wait` does on v2).
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

# raw_compose <project> <args...>: the chosen Compose (COMPOSE_CMD, default `docker compose`) on
# compose.raw.yaml of RAW_DIR (default $BASE/demo).
raw_compose() {
  local cmd=("${COMPOSE_CMD[@]}")
  [ ${#cmd[@]} -gt 0 ] || cmd=(docker compose)
  (cd "${RAW_DIR:-$BASE/demo}" && DB_PASSWORD=bench-only-password "${cmd[@]}" -p "$1" -f compose.raw.yaml "${@:2}")
}

# raw_up_wait <project>: start with a build and wait until healthy: `up -d --build --wait` on v2;
# on v1 (no --wait), `up -d --build` then polling health.
raw_up_wait() {
  if [ "${COMPOSE_VARIANT:-v2}" = v1 ]; then
    raw_compose "$1" up -d --build && wait_healthy "$1"
  else
    raw_compose "$1" up -d --build --wait
  fi
}
