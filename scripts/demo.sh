#!/usr/bin/env bash
# The main job on the embedded demo stack: set up what is missing, bring up an isolated instance,
# show its services and URLs, call its API, then tear it down completely (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/ensure-node-deps.sh

ID="${SANDSTACK_DEMO_INSTANCE:-sandstack-demo}"
sandstack() { node dist/cli/main.js --cwd examples/demo-stack --instance "$ID" "$@"; }
teardown() {
  echo
  echo "== sandstack destroy (remove everything, verify nothing is left)"
  sandstack destroy || true
}
trap teardown EXIT

echo "== sandstack up (render the isolated model, build, start, wait for health)"
sandstack up
echo
echo "== sandstack ports"
sandstack ports
url=$(sandstack ports --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).ports.find(p=>p.url).url))')
echo
echo "== GET $url/api/v1/health"
curl -fsS "$url/api/v1/health"; echo
echo "== POST $url/api/v1/items"
curl -fsS -X POST -H 'content-type: application/json' -d '{"name":"first-signal"}' "$url/api/v1/items"; echo
echo "== GET $url/api/v1/workers"
curl -fsS "$url/api/v1/workers"; echo
echo
echo "== sandstack render (the isolated model; first lines)"
sandstack render | head -n 25
echo "..."
