#!/usr/bin/env bash
# Benchmark (not a test): time to a healthy demo instance holding a database of at least $MB MB of
# rows, (a) from scratch: `up` (the backend runs its migrations) then the seed script, against
# (b) seeded: `up --from <snapshot>` of an instance that holds those rows. Also reports the time of
# `snapshot save`. Everything it creates is destroyed at the end.
# Usage: bash scripts/bench-seed.sh [mb]   (default 200)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
MB="${1:-200}"
make_bench_repo
cleanup() {
  for id in bench-scratch bench-seeded; do $CLI --cwd "$BASE/demo" destroy --instance "$id" >/dev/null 2>&1 || true; done
  rm -rf "$BASE"
}
trap cleanup EXIT
cd "$BASE/demo"
echo "warming the image cache..." >&2
$CLI gate --fresh >/dev/null 2>&1

t0=$(now)
$CLI up --instance bench-scratch >/dev/null 2>&1
t1=$(now)
$CLI shell --instance bench-scratch backend -- python3 /app/seed.py --mb "$MB" >&2
t2=$(now)
scratch=$(secs "$t0" "$t2")
echo "from scratch: up (migrations) $(secs "$t0" "$t1") s + seed script $(secs "$t1" "$t2") s = $scratch s" >&2

t0=$(now)
$CLI snapshot save "bench-$MB" --force --instance bench-scratch >/dev/null
t1=$(now)
save=$(secs "$t0" "$t1")

t0=$(now)
$CLI up --from "bench-$MB" --instance bench-seeded >/dev/null 2>&1
t1=$(now)
seeded=$(secs "$t0" "$t1")
count() { $CLI shell --instance "$1" db -- psql -U ktrdr -d ktrdr -tAc "select count(*) from prices" 2>/dev/null | tr -d '[:space:]'; }
a=$(count bench-scratch); b=$(count bench-seeded)
[ "$a" = "$b" ] || { echo "row counts differ: $a vs $b" >&2; exit 1; }
size=$($CLI snapshot ls --json | python3 -c "import json,sys; s=[x for x in json.load(sys.stdin)['snapshots'] if x['name']=='bench-$MB'][0]; print(f\"{s['bytes']/1e6:.0f}\")")
$CLI snapshot rm "bench-$MB" >/dev/null

echo "demo stack, database of $a rows (snapshot $size MB), one run:"
echo "  to a healthy instance from scratch (up with migrations, then the seed script): $scratch s"
echo "  to a healthy instance seeded from the snapshot (up --from):                    $seeded s"
echo "  ratio seeded/scratch: $(python3 -c "print(f'{$seeded/$scratch:.2f}')")"
echo "  snapshot save (checkpoint, stop db, copy, start db):                           $save s"
