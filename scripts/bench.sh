#!/usr/bin/env bash
# Benchmark (not a test): sandstack against raw Docker Compose on the demo stack
# (examples/demo-stack), each round running sandstack and raw Compose alternately:
#   1. gate --fresh            vs up -d --build --wait + down -v -t 0 (v1: up -d --build, poll health, down);
#      and gate --fresh of a copy with gate.stableSeconds 0 (no stability window) against the same raw runs
#   2. one up                  vs up -d --build --wait (v1: up -d --build, poll health)
#   3. three ups in parallel   vs three raw projects in parallel (three worktrees from `sandstack new`)
#   4. the build stage of a second instance of the same source while the first runs (content-addressed
#      images are reused), and of the first instance for reference (`up --json` .gate.stages)
#   5. `ls --json` with 20 registered instances and `--version` (>= 10 runs each; target 0.15 s)
#   6. time to red of a crashing backend (exits 1 two seconds after start): gate --fresh until it exits
#      non-zero vs up -d --build --wait until it returns non-zero (v1: until the container has exited)
# Before the rounds, every image is built once (warm cache); instance teardown, raw `down` and image
# removal happen outside the timed parts. Everything it creates lives in a temp dir with its own
# state home, and is removed at exit (instances destroyed, the home's images removed with
# `sandstack gc --images`, raw projects downed with their images); the user's images are left alone.
# Progress goes to stderr, the Markdown table to stdout.
#
# Usage: bash scripts/bench.sh [--rounds N] [--compose v1|v2]
#   --rounds N     rounds of each measure (default 5)
#   --compose v1   Compose v1 (/opt/sandstack/bin/docker-compose-v1) for sandstack and raw Compose;
#   --compose v2   `docker compose`. Default: SANDSTACK_COMPOSE when set (sandstack honours it), else v2.
# Build first (npm run build): it runs dist/cli/main.js.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

ROUNDS=5
COMPOSE_CHOICE=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --rounds=*) ROUNDS="${1#*=}"; shift ;;
    --compose) COMPOSE_CHOICE="$2"; shift 2 ;;
    --compose=*) COMPOSE_CHOICE="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds needs a positive integer" >&2; exit 2; }
[ -f "$ROOT/dist/cli/main.js" ] || { echo "dist/cli/main.js is missing: run npm run build" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer (bash scripts/setup-system.sh --with-compose-v1)" >&2; exit 3; }
select_compose "$COMPOSE_CHOICE"
QUICK_RUNS=$((ROUNDS * 2 > 10 ? ROUNDS * 2 : 10))

# Unique names: several benchmarks (or tests) may share the engine.
NAME="sbench$$"
make_bench_repo "$NAME"
RAW_DIR="$REPO"
RAW="sbraw$$"          # raw projects: $RAW, ${RAW}p1..3, ${RAW}crash
CRASH="$BASE/${NAME}crash"
LOG="$BASE/log"
RESULTS="$BASE/results"
: > "$LOG"; : > "$RESULTS"
SINGLE="$NAME-single"; FIRST="$NAME-first"; SECOND="$NAME-second"
WORKTREES=("$BASE/$NAME--p1" "$BASE/$NAME--p2" "$BASE/$NAME--p3")

say() { echo "[bench $(date +%T)] $*" >&2; }
# quiet <cmd...>: output to the log (QLOG, default $LOG); on failure (unless EXPECT_FAIL) the last
# lines of that log go to stderr.
quiet() {
  local rc=0 log="${QLOG:-$LOG}"
  echo "\$ $*" >> "$log"
  "$@" >> "$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ] && [ -z "${EXPECT_FAIL:-}" ]; then
    { echo "failed ($rc): $*"; tail -n 15 "$log" | sed 's/^/    /'; } >&2
  fi
  return $rc
}
# timed <cmd...>: runs it, T = its wall time in seconds; returns its exit code.
timed() {
  local t0 t1 rc=0
  t0=$(now); "$@" || rc=$?; t1=$(now)
  T=$(secs "$t0" "$t1" 3)
  return $rc
}
# record <measure> <side> <seconds> [ok=1]: a failed run is counted, not used for the median.
record() { echo "$1 $2 $3 ${4:-1}" >> "$RESULTS"; }
ss() { $CLI --cwd "$REPO" "$@"; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  say "cleaning up"
  local ids
  ids=$($CLI ls --json 2>/dev/null | python3 -c 'import json,sys
try: d=json.load(sys.stdin)
except Exception: sys.exit(0)
for i in (d.get("instances", d) if isinstance(d, dict) else d): print(i.get("id",""))' 2>/dev/null)
  for id in $ids $SINGLE $FIRST $SECOND; do ss --instance "$id" destroy >/dev/null 2>&1; done
  $CLI --cwd "$REPO" gc >/dev/null 2>&1
  [ -d "$CRASH" ] && $CLI --cwd "$CRASH" gc >/dev/null 2>&1
  [ -d "${NOWIN:-}" ] && $CLI --cwd "$NOWIN" gc >/dev/null 2>&1
  $CLI --cwd "$REPO" gc --images >/dev/null 2>&1
  for p in "$RAW" "${RAW}p1" "${RAW}p2" "${RAW}p3"; do raw_compose "$p" down -v -t 0 --rmi local >/dev/null 2>&1; done
  [ -d "$CRASH" ] && RAW_DIR="$CRASH" raw_compose "${RAW}crash" down -v -t 0 --rmi local >/dev/null 2>&1
  local home left
  home=$(node --input-type=module -e 'const m = await import(process.argv[1]); console.log(m.homeLabelValue(process.argv[2]))' "$ROOT/dist/identity/identity.js" "$SANDSTACK_HOME" 2>/dev/null)
  if [ -n "$home" ]; then
    left=$( (docker ps -aq --filter "label=dev.sandstack.home=$home"; docker volume ls -q --filter "label=dev.sandstack.home=$home"; docker network ls -q --filter "label=dev.sandstack.home=$home"; docker images -q --filter "label=dev.sandstack.home=$home") | wc -l)
    [ "$left" -eq 0 ] || say "warning: $left container(s)/volume(s)/network(s)/image(s) of the bench state home remain (label dev.sandstack.home=$home)"
  fi
  left=$(docker ps -aq --filter "label=com.docker.compose.project" --filter "name=$RAW" | wc -l)
  [ "$left" -eq 0 ] || say "warning: $left raw Compose container(s) named $RAW* remain"
  rm -rf "$BASE"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Compose: ${COMPOSE_CMD[*]} ($COMPOSE_PATH) $COMPOSE_VERSION [$COMPOSE_VARIANT]; sandstack: $($CLI --version); $ROUNDS round(s); temp dir $BASE"
used=$($CLI --version --verbose --json | python3 -c 'import json,sys;c=json.load(sys.stdin)["compose"];print(c["variant"],c["version"]," ".join(c["command"]))')
say "sandstack uses Compose: $used"
[ "${used%% *}" = "$COMPOSE_VARIANT" ] || { echo "sandstack uses Compose $used, not $COMPOSE_VARIANT" >&2; exit 1; }

# The crashing copy: the backend exits 1 two seconds after it starts.
cp -r "$ROOT/examples/demo-stack" "$CRASH"
python3 - "$CRASH/compose.yaml" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = 'command: ["python3", "/app/backend.py"]'
assert old in s, "backend command not found in the demo compose file"
open(p, 'w').write(s.replace(old, 'command: ["sh", "-c", "sleep 2; exit 1"]', 1))
EOF
(cd "$CRASH" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm crash)
make_raw_file "$CRASH"
raw_crash() { RAW_DIR="$CRASH" raw_compose "${RAW}crash" "$@"; }

# The copy without a stability window (gate.stableSeconds 0): what the window costs.
NOWIN="$BASE/${NAME}nowin"
cp -r "$ROOT/examples/demo-stack" "$NOWIN"
python3 - "$NOWIN/sandstack.yaml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r'^gate:\n', 'gate:\n  stableSeconds: 0\n', s, count=1, flags=re.M)
assert n == 1, "no gate: section in the demo sandstack.yaml"
open(p, 'w').write(s)
EOF
(cd "$NOWIN" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm nowin)

# ---- 5. ls --json with 20 registered instances, --version (no containers needed) -----------------
say "5: --version and ls --json with 20 registered instances, $QUICK_RUNS runs each"
registry() {
  node --input-type=module -e '
    const { withRegistry } = await import(process.argv[1]);
    const [, , home, op, prefix, dir] = process.argv;
    await withRegistry({ home }, (reg) => {
      for (let i = 1; i <= 20; i++) {
        const id = `${prefix}-ls${String(i).padStart(2, "0")}`;
        if (op === "add") {
          reg.instances[id] = { id, worktree: dir, projectDir: dir, kind: "local", createdAt: new Date().toISOString(), createdBy: "up",
            leases: [{ service: "backend", containerPort: 8000, protocol: "tcp", hostPort: 29900 + i, scheme: "http", name: "api" }] };
        } else delete reg.instances[id];
      }
    });' "$ROOT/dist/state/registry.js" "$SANDSTACK_HOME" "$1" "$NAME" "$REPO"
}
registry add
n=$($CLI ls --json 2>/dev/null | python3 -c 'import json,sys;d=json.load(sys.stdin);print(len(d.get("instances",d) if isinstance(d,dict) else d))')
[ "$n" = 20 ] || { echo "ls --json lists $n instances, expected 20" >&2; exit 1; }
quiet $CLI --version; quiet ss ls --json   # warm-up (file cache)
for i in $(seq 1 "$QUICK_RUNS"); do
  ok=1; timed $CLI --version >/dev/null 2>&1 || ok=0; record version sandstack "$T" $ok
  ok=1; timed ss ls --json >/dev/null 2>&1 || ok=0; record ls sandstack "$T" $ok
done
registry remove

# ---- the compound runs ----------------------------------------------------------------------------
raw_gate_cycle() { raw_up_wait "$RAW" && raw_compose "$RAW" down -v -t 0; }
# Three sandstack ups in the worktrees, or three raw projects, at once; fails if one fails. Each
# has its own log (appended to the main one after).
parallel_ups() {
  local pids=() rc=0 k p
  for k in 1 2 3; do
    if [ "$1" = sandstack ]; then QLOG="$LOG.p$k" quiet $CLI --cwd "${WORKTREES[$((k - 1))]}" up &
    else QLOG="$LOG.p$k" quiet raw_up_wait "${RAW}p$k" & fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for k in 1 2 3; do cat "$LOG.p$k" >> "$LOG"; rm -f "$LOG.p$k"; done
  return $rc
}
parallel_teardown() {
  local k
  if [ "$1" = sandstack ]; then for k in 0 1 2; do quiet $CLI --cwd "${WORKTREES[$k]}" destroy --keep-worktree --keep-images || true; done
  else for k in 1 2 3; do quiet raw_compose "${RAW}p$k" down -v -t 0 || true; done; fi
}
# The raw crashing copy until red: on v2 `up -d --build --wait` until it returns non-zero; on v1
# (no --wait) `up -d --build` in the background (its own process group) until the backend exited.
raw_crash_red() {
  if [ "$COMPOSE_VARIANT" = v2 ]; then
    ! EXPECT_FAIL=1 quiet raw_crash up -d --build --wait --wait-timeout 180
    return
  fi
  local up_pid deadline=$((SECONDS + 180)) rc=0
  (cd "$CRASH" && exec setsid env DB_PASSWORD=bench-only-password "${COMPOSE_CMD[@]}" -p "${RAW}crash" -f compose.raw.yaml up -d --build) >> "$LOG" 2>&1 &
  up_pid=$!
  until [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=${RAW}crash" --filter label=com.docker.compose.service=backend --filter status=exited)" ]; do
    [ $SECONDS -lt $deadline ] || { echo "the raw crashing backend did not exit within 180 s" >&2; rc=1; break; }
    sleep 0.1
  done
  # Out of the timed part: give up a moment to return, then stop it.
  ( for _ in $(seq 1 50); do kill -0 "$up_pid" 2>/dev/null || exit 0; sleep 0.1; done; kill -- -"$up_pid" 2>/dev/null ) &
  return $rc
}
# up --json of one instance; prints its build stage seconds.
build_stage() {
  local out="$BASE/up-$1.json"
  ss --instance "$1" up --json > "$out" 2>> "$LOG" || { echo "up of $1 failed:" >&2; tail -n 15 "$LOG" | sed 's/^/    /' >&2; return 1; }
  python3 -c 'import json,sys
s=[s for s in json.load(open(sys.argv[1]))["gate"]["stages"] if s["name"]=="build"]
print("%.3f" % (s[0]["durationMs"] / 1000) if s else "nan")' "$out"
}
# The content-addressed images of this home built from the demo source (measure 4 removes them so
# that its first instance builds).
demo_images() { docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "^sandstack/$NAME-(db|backend|worker-ingest|worker-backtest|e2e):" || true; }

# ---- warm-up: every image built once ----------------------------------------------------------
say "warm-up: building the images (sandstack, raw Compose, the crashing copy, three worktrees)"
quiet ss gate --fresh || say "warning: the warm-up gate --fresh failed"
quiet raw_gate_cycle || say "warning: the raw warm-up failed"
EXPECT_FAIL=1 quiet $CLI --cwd "$CRASH" gate --fresh || true
quiet $CLI --cwd "$NOWIN" gate --fresh || say "warning: the warm-up gate --fresh without a stability window failed"
EXPECT_FAIL=1 quiet raw_crash up -d --build || true; quiet raw_crash down -v -t 0 || true
for b in p1 p2 p3; do quiet ss new "$b"; done
quiet $CLI --cwd "${WORKTREES[0]}" up || say "warning: the warm-up up of a worktree failed"
quiet $CLI --cwd "${WORKTREES[0]}" destroy --keep-worktree --keep-images || true

for r in $(seq 1 "$ROUNDS"); do
  # 1. gate --fresh vs raw up --wait + down.
  ok=1; timed quiet ss gate --fresh || ok=0; record gate sandstack "$T" $ok; g=$T
  ok=1; timed quiet raw_gate_cycle || ok=0; record gate raw "$T" $ok; rawg=$T; rawok=$ok
  quiet raw_compose "$RAW" down -v -t 0 || true
  ok=1; timed quiet $CLI --cwd "$NOWIN" gate --fresh || ok=0; record gate0 sandstack "$T" $ok; record gate0 raw "$rawg" $rawok
  say "round $r/$ROUNDS 1: gate --fresh $g s, raw $rawg s; without the stability window $T s"

  # 2. one up vs raw up --wait (teardown untimed).
  ok=1; timed quiet ss --instance "$SINGLE" up || ok=0; record up sandstack "$T" $ok; g=$T
  quiet ss --instance "$SINGLE" destroy --keep-images || true
  ok=1; timed quiet raw_up_wait "$RAW" || ok=0; record up raw "$T" $ok
  quiet raw_compose "$RAW" down -v -t 0 || true
  say "round $r/$ROUNDS 2: up $g s, raw $T s"

  # 3. three in parallel.
  ok=1; timed parallel_ups sandstack || ok=0; record parallel sandstack "$T" $ok; g=$T
  parallel_teardown sandstack
  ok=1; timed parallel_ups raw || ok=0; record parallel raw "$T" $ok
  parallel_teardown raw
  say "round $r/$ROUNDS 3: three ups $g s, three raw projects $T s"

  # 4. build stage: the first instance (its images removed first, so it builds from the warm build
  # cache), then a second instance of the same source while the first still runs.
  imgs=$(demo_images); [ -z "$imgs" ] || quiet docker rmi $imgs || true
  b1=nan; b2=nan; ok=0
  if b1=$(build_stage "$FIRST"); then
    record build-first sandstack "$b1"
    if b2=$(build_stage "$SECOND"); then ok=1; fi
  else record build-first sandstack nan 0; fi
  record build-second sandstack "$b2" $ok
  quiet ss --instance "$SECOND" destroy --keep-images || true
  quiet ss --instance "$FIRST" destroy --keep-images || true
  say "round $r/$ROUNDS 4: build stage: first instance $b1 s, second instance $b2 s"

  # 6. time to red of a crashing backend.
  ok=1; timed eval 'EXPECT_FAIL=1 quiet $CLI --cwd "$CRASH" gate --fresh' && ok=0; record crash sandstack "$T" $ok; g=$T
  [ $ok = 1 ] || say "warning: gate --fresh of the crashing copy exited 0"
  ok=1; timed raw_crash_red || ok=0; record crash raw "$T" $ok
  wait  # the v1 background up
  quiet raw_crash down -v -t 0 || true
  say "round $r/$ROUNDS 6: time to red: gate --fresh $g s, raw $T s"
done

# ---- the table ----------------------------------------------------------------------------------
if [ "$COMPOSE_VARIANT" = v1 ]; then
  RAW_GATE="up -d --build, poll health, down -v -t 0"; RAW_UP="up -d --build, poll health"; RAW_RED="up -d --build until the backend exited"
else
  RAW_GATE="up -d --build --wait + down -v -t 0"; RAW_UP="up -d --build --wait"; RAW_RED="up -d --build --wait until non-zero"
fi
echo "**sandstack $($CLI --version) vs raw Compose**: $ROUNDS round(s), Compose $COMPOSE_VARIANT $COMPOSE_VERSION (${COMPOSE_CMD[*]}: $COMPOSE_PATH), $(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname), nproc $(nproc), Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
echo
python3 - "$RESULTS" "$ROUNDS" "$QUICK_RUNS" "$RAW_GATE" "$RAW_UP" "$RAW_RED" <<'EOF'
import statistics, sys
from collections import defaultdict
path, rounds, quick, raw_gate, raw_up, raw_red = sys.argv[1:]
vals = defaultdict(list)
failed = defaultdict(int)
for line in open(path):
    m, side, v, ok = line.split()
    if ok == '1' and v != 'nan': vals[(m, side)].append(float(v))
    else: failed[(m, side)] += 1
def rounds_of(m, side):
    out = []
    for line in open(path):
        mm, sd, v, ok = line.split()
        if mm == m and sd == side: out.append(float(v) if ok == '1' and v != 'nan' else None)
    return out
def med(m, side):
    v = vals.get((m, side))
    return statistics.median(v) if v else None
def row(label, m, digits=2, raw=True):
    s = med(m, 'sandstack'); r = med(m, 'raw') if raw else None
    # The ratio is the median of the per-round ratios (rounds alternate sandstack and raw Compose).
    # Only rounds where both succeeded count (the results file lists the runs in round order).
    pairs = [(a, b) for a, b in zip(rounds_of(m, 'sandstack'), rounds_of(m, 'raw')) if a is not None and b is not None]
    ratio = f"{statistics.median(a / b for a, b in pairs):.2f}" if raw and pairs and all(b > 0 for _, b in pairs) else '-'
    def fmt(x, side):
        n = failed[(m, side)]
        txt = '-' if x is None else f"{x:.{digits}f}"
        return txt + (f" ({n} failed)" if n else '')
    print(f"| {label} | {fmt(s, 'sandstack')} | {fmt(r, 'raw') if raw else '-'} | {ratio} |")
print("| measure | sandstack (median s) | raw Compose (median s) | ratio |")
print("|---|---:|---:|---:|")
row(f"1. `gate --fresh` vs `{raw_gate}`", 'gate')
row(f"1. `gate --fresh` with `gate.stableSeconds: 0` (no stability window) vs the same raw runs", 'gate0')
row(f"2. one `up` vs `{raw_up}`", 'up')
row(f"3. three `up`s in parallel vs three raw projects (`{raw_up}`)", 'parallel')
row("4. build stage of a second instance of the same source (the first still running)", 'build-second', 3, raw=False)
row("4. build stage of the first instance (reference: no image yet, warm build cache)", 'build-first', 3, raw=False)
row(f"5. `ls --json` with 20 registered instances ({quick} runs; target 0.15)", 'ls', 3, raw=False)
row(f"5. `--version` ({quick} runs; target 0.15)", 'version', 3, raw=False)
row(f"6. time to red, backend exits 1 two seconds after start: `gate --fresh` vs `{raw_red}`", 'crash')
print()
print("Ratio: median of the per-round ratios sandstack/raw. Warm image and build caches; the teardown after `up` is not timed.")
EOF
