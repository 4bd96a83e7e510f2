#!/usr/bin/env bash
# The whole test suite: set up what is missing (Docker engine, Compose v2 and v1, base image,
# Chromium, npm deps), build, then run the tests (vitest) against the real engine in two legs:
#   leg 1, Compose v2: every test, with sandstack's own Compose detection (v2 preferred);
#   leg 2, Compose v1: lifecycle, failures, render, the conformance corpus (test/conformance) and the
#          gate corpus (test/gate-corpus) again with SANDSTACK_COMPOSE=/opt/sandstack/bin/docker-compose-v1 (Compose
#          1.29.2 beside v2, see scripts/setup-system.sh --with-compose-v1). The gate's behaviour on v1
#          is covered by the gate corpus (24 broken and working stacks) and the conformance corpus's
#          gate subset; test/integration/gate.test.ts runs on v2 only, which keeps CI under 45 minutes.
# Usage:
#   bash scripts/test.sh                  both legs (what CI runs, through .ci/run)
#   bash scripts/test.sh --no-v1          leg 1 only
#   bash scripts/test.sh --v1-only        leg 2 only
#   bash scripts/test.sh test/unit ...    leg 1 only, with these vitest arguments (with --v1-only:
#                                         leg 2 with them)
# Each leg prints its duration and its `N passed, N failed, N skipped`; the last line is the sum of
# both legs. Exits non-zero when either leg failed. Both legs together stay within
# SANDSTACK_TEST_BUDGET_MIN minutes (default 60, well inside CI's 90; leg 1 leaves 20 of them to leg 2): a leg that
# overruns is stopped and counted as failed.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_V2=1
RUN_V1=1
V1_ONLY=0
args=()
for a in "$@"; do
  case "$a" in
    --no-v1) RUN_V1=0 ;;
    --v1-only) V1_ONLY=1 ;;
    *) args+=("$a") ;;
  esac
done
if [ "$V1_ONLY" -eq 1 ]; then RUN_V2=0; RUN_V1=1; elif [ "${#args[@]}" -gt 0 ]; then RUN_V1=0; fi

V1_COMPOSE=/opt/sandstack/bin/docker-compose-v1
setup=(--with-chromium --with-ssh)
[ "$RUN_V1" -eq 0 ] || setup+=(--with-compose-v1)
bash scripts/setup-system.sh "${setup[@]}"
bash scripts/ensure-node-deps.sh
mkdir -p test-results
rm -f test-results/vitest.log test-results/vitest-v1.log

budget_end=$((SECONDS + ${SANDSTACK_TEST_BUDGET_MIN:-60} * 60))
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
PASSED=0
FAILED=0
SKIPPED=0
RESULTS=()

# run_leg NAME LOG SECONDS [VAR=value...] -- VITEST-ARGS...
run_leg() {
  local name=$1 log=$2 limit=$3 envs=() t0=$SECONDS rc summary p f s took note=""
  shift 3
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  [ "$limit" -ge 60 ] || limit=60
  printf '\n=== %s (%s; at most %s)\n' "$name" "${envs[*]:-default Compose detection}" "$(duration "$limit")"
  set +e
  # --foreground: vitest stays in this terminal's process group, so Ctrl-C reaches it directly.
  env "${envs[@]}" timeout --foreground -k 30 "$limit" node_modules/.bin/vitest run "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  took=$((SECONDS - t0))
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
  if [ -n "$summary" ]; then
    read -r p f s <<<"$(sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/' <<<"$summary")"
    s=${s:-0}
  else
    p=0; f=0; s=0
  fi
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    note=" (stopped: did not finish within $(duration "$limit"))"; f=$((f + 1))
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    note=" (vitest exited $rc without a failed test; see $log)"; f=1
  fi
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
  RESULTS+=("$name: $p passed, $f failed, $s skipped in $(duration "$took")$note")
  printf '%s\n' "${RESULTS[-1]}"
}

if [ "$RUN_V2" -eq 1 ]; then
  reserve=0
  [ "$RUN_V1" -eq 0 ] || reserve=1200
  # The conformance and gate corpora run each Compose version in its own leg.
  run_leg "leg 1, Compose v2, ${args[*]:-whole suite}" test-results/vitest.log $((budget_end - SECONDS - reserve)) CONFORMANCE_VERSIONS=v2 GATE_CORPUS_VERSIONS=v2 -- "${args[@]}"
fi

if [ "$RUN_V1" -eq 1 ]; then
  v1_args=("${args[@]}")
  if [ "${#v1_args[@]}" -eq 0 ]; then
    # Only paths that exist: vitest fails when a run matches no test file at all.
    for p in test/integration/lifecycle.test.ts test/integration/failures.test.ts test/unit/render.test.ts; do
      [ -e "$p" ] && v1_args+=("$p")
    done
    for d in test/conformance test/gate-corpus; do
      if [ -d "$d" ] && find "$d" -name '*.test.ts' | grep -q .; then v1_args+=("$d"); fi
    done
  fi
  if [ "${#v1_args[@]}" -eq 0 ]; then
    RESULTS+=("leg 2, Compose v1: no test files to run")
    printf '%s\n' "${RESULTS[-1]}"
  elif [ ! -x "$V1_COMPOSE" ]; then
    FAILED=$((FAILED + 1))
    RESULTS+=("leg 2, Compose v1: $V1_COMPOSE is missing (scripts/setup-system.sh --with-compose-v1 provides it)")
    printf '%s\n' "${RESULTS[-1]}"
  else
    run_leg "leg 2, Compose v1, ${v1_args[*]}" test-results/vitest-v1.log $((budget_end - SECONDS)) SANDSTACK_COMPOSE="$V1_COMPOSE" CONFORMANCE_VERSIONS=v1 GATE_CORPUS_VERSIONS=v1 -- "${v1_args[@]}"
  fi
fi

printf '\n'
# The failed tests again, last, where a log cut to its tail still shows them.
for log in test-results/vitest.log test-results/vitest-v1.log; do
  [ -f "$log" ] && grep -E '^FAILED ' "$log" | sed "s|^|$(basename "$log" .log): |" || true
done
printf '%s\n' "${RESULTS[@]}"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
