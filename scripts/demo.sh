#!/usr/bin/env bash
# The main job on the embedded demo stack: set up what is missing, bring up an isolated instance,
# show its services and URLs, call its API, then tear it down completely (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/ensure-node-deps.sh

ID="${SANDSTACK_DEMO_INSTANCE:-sandstack-demo}"
sandstack() { node dist/cli/main.js --cwd examples/demo-stack --instance "$ID" "$@"; }
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=new Function("r","return "+process.argv[1])(JSON.parse(s));console.log(v===undefined?"":v)})' "$1"; }

# The shared observability stack is left as it was found: stopped by the demo only if the demo
# started it, and its volumes removed only if the demo created them.
obs_before=$(sandstack obs status --json | json 'r.state + " " + (r.volumes.length ? "has-volumes" : "new")')
teardown() {
  echo
  echo "== sandstack destroy (remove everything, verify nothing is left)"
  sandstack destroy || true
  case "$obs_before" in
    "stopped new") echo "== sandstack obs down --volumes (the demo started it)"; sandstack obs down --volumes || true ;;
    stopped*) echo "== sandstack obs down (the demo started it; its volumes existed before and are kept)"; sandstack obs down || true ;;
  esac
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
echo "== sandstack obs up (shared Prometheus, Grafana, Jaeger: starts what is available, names what is not)"
sandstack obs up
echo
echo "== sandstack status (with links already filtered to this instance)"
sandstack status
prom=$(sandstack obs status --json | json 'r.ports.prometheus')
echo
echo "== Prometheus: up{instance_id=\"$ID\"} (waiting for the first scrape)"
for _ in $(seq 1 40); do
  out=$(curl -fsS "http://127.0.0.1:$prom/api/v1/query" --data-urlencode "query=up{instance_id=\"$ID\"}")
  [ "$(echo "$out" | json 'r.data.result.length')" -ge 3 ] && break
  sleep 0.5
done
echo "$out" | json 'r.data.result.map(x => `  ${x.metric.service} (${x.metric.environment}) up=${x.value[1]}`).join("\n")'
echo
echo "== sandstack render (the isolated model; first lines)"
sandstack render | head -n 25
echo "..."
