#!/usr/bin/env bash
# Installs the npm dependencies (npm ci) when node_modules is missing or older than the lock file,
# then builds sandstack (tsc → dist/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "sandstack: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
echo "sandstack: building (tsc)" >&2
npm run --silent build >&2
