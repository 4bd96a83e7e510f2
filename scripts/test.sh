#!/usr/bin/env bash
# The whole test suite: set up what is missing (Docker engine, Compose, base image, npm deps), build,
# then run unit and integration tests (vitest) against the real engine. Extra args go to vitest,
# e.g. `bash scripts/test.sh test/unit`. The last line is `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh --with-chromium
bash scripts/ensure-node-deps.sh
mkdir -p test-results
log=test-results/vitest.log
set +e
npx vitest run "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed (the test runner produced no summary; see $log)"
  exit 1
fi
echo "$summary"
exit "$rc"
