/**
 * The fault soak (scripts/soak.ts) in its short form: at least 30 cycles of up / gate --fresh /
 * verify / new+up killed with SIGKILL at random moments (or left to finish), then gc; nothing with
 * the soak's labels, no lease and no compose process may remain. SOAK_CYCLES sets the length.
 */
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../integration/helpers.js';

const CYCLES = Math.max(30, Number(process.env.SOAK_CYCLES ?? 30) || 30);

describe('fault soak', () => {
  it(`${CYCLES} cycles of killed and finished runs leave nothing behind`, async () => {
    const r = await execa(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'scripts/soak.ts'), String(CYCLES)], { cwd: ROOT, reject: false, stdin: 'ignore', all: true });
    const out = String(r.all);
    console.log(out.split('\n').filter((l) => l.startsWith('soak')).join('\n'));
    expect(r.exitCode, out.slice(-4000)).toBe(0);
    const summary = out.split('\n').find((l) => l.startsWith('soak summary:'));
    expect(summary, out.slice(-4000)).toMatch(new RegExp(`^soak summary: ${CYCLES} cycles .* left behind: nothing$`));
    expect(summary).toMatch(/ (\d+) sandstack processes killed with SIGKILL/);
    expect(Number(/ (\d+) sandstack processes killed/.exec(summary!)![1])).toBeGreaterThan(0);
  }, 3_600_000);
});
