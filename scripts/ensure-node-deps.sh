#!/usr/bin/env bash
# Installs the npm dependencies (npm ci) when node_modules is missing or older than the lock file,
# then builds sandstack (tsc → dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci wants lock entries for every platform's optional packages (esbuild, rollup), which the
  # registry mirror on these machines does not list; npm install still honours the locked versions.
  echo "sandstack: npm ci" >&2
  if ! npm ci --no-audit --no-fund >&2 2>/tmp/sandstack-npm-ci.log; then
    echo "sandstack: npm ci refused the lock file (see /tmp/sandstack-npm-ci.log); running npm install instead" >&2
    npm install --no-audit --no-fund >&2
  fi
fi
echo "sandstack: building (tsc, then the CLI bundle with esbuild)" >&2
npm run --silent build >&2
