#!/usr/bin/env bash
# Measurement (not a test): how long `gate --fresh` takes to fail when the backend exits 1 at start,
# with the default 180 s deadline. Prints the report's stage times for each run.
# Usage: bash scripts/measure-crash.sh [runs]   (default 3)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS="${1:-3}"
make_bench_repo
trap 'rm -rf "$BASE"' EXIT
sed -i 's|command: \["python3", "/app/backend.py"\]|command: ["sh", "-c", "echo crash on start; exit 1"]|' "$BASE/demo/compose.yaml"
for r in $(seq 1 "$RUNS"); do
  t0=$(now)
  $CLI --cwd "$BASE/demo" gate --fresh --json 2>/dev/null | python3 -c "
import json,sys; r=json.load(sys.stdin)
f=r['failure']; st={s['name']: s['durationMs']/1000 for s in r['stages']}
print(f\"failed in stage {f['stage']} ({f['code']}, exit {f.get('exitCode')}); deadline {r['deadlineSeconds']} s; \" + ', '.join(f'{k} {v:.1f}s' for k,v in st.items()))" || true
  t1=$(now)
  echo "  run $r: wall time of the whole command $(secs "$t0" "$t1") s (includes teardown)"
done
