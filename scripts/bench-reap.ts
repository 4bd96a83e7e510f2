/**
 * Benchmark (not a test): the orphan sweep that up, gate --fresh, verify and new run first, when
 * there is nothing to reap. Prints the median and max over N runs in a fresh state home.
 * Usage: npx tsx scripts/bench-reap.ts [runs]   (default 20)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createContext } from '../src/lifecycle/context.js';
import { reapOrphans } from '../src/lifecycle/reap.js';

const runs = Number(process.argv[2] ?? 20);
const home = await mkdtemp(path.join(os.tmpdir(), 'sandstack-bench-reap-'));
try {
  const ctx = createContext({ home });
  await reapOrphans(ctx); // warm: the registry file and the Docker connection
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await reapOrphans(ctx);
    times.push(performance.now() - t0);
    if (r.reaped.length) console.error(`run ${i}: reaped ${r.reaped.length}`);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  console.log(`orphan sweep with nothing to reap, ${runs} runs: median ${median.toFixed(1)} ms, max ${times[times.length - 1]!.toFixed(1)} ms (bound: 100 ms)`);
} finally {
  await rm(home, { recursive: true, force: true });
}
