/**
 * Gate corpus: small broken (and healthy but unusual) Compose stacks (test/gate-corpus/cases/<name>/),
 * each standing for a real-world pattern, run through `sandstack gate --fresh --json` on the real
 * engine with every Compose version available. Each case's case.json says what the gate must
 * report: the verdict, and for a failure its stage, code, service, reason, exit code, message and
 * hint, and whether a container event caused it (then within 2 s). Every run must tear down cleanly
 * and leave nothing labelled. A markdown table per version goes to test-results/gate-corpus-<v>.md.
 *
 * Knobs: GATE_CORPUS_VERSIONS (default "v2,v1"), GATE_CORPUS_ONLY=<case,case>,
 * GATE_CORPUS_CONCURRENCY (default 3: cases of one version run at once), GATE_CORPUS_CLI (the
 * sandstack CLI to run; default dist/cli/main.js).
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCase, cleanupWorkspace, resultsTable, runCase, VERSIONS, writeResults, type CaseRun, type ComposeVersion, type Workspace } from './harness.js';
import { loadCases, type Case } from './meta.js';

const ALL = loadCases();
const ONLY = (process.env.GATE_CORPUS_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const SELECTED = ONLY.length ? ALL.filter((c) => ONLY.includes(c.name)) : ALL;
const WANTED_VERSIONS = (process.env.GATE_CORPUS_VERSIONS ?? 'v2,v1').split(',').map((s) => s.trim()).filter(Boolean);
const CONCURRENCY = Math.max(1, Number(process.env.GATE_CORPUS_CONCURRENCY ?? 3) || 3);
/** An `it` awaits its own case, which may wait in the pool behind others. */
const CASE_TIMEOUT = 1_800_000;
const MIN_FAILING_KINDS = 17;
const MIN_PASSING = 5;

let ws: Workspace | undefined;
const workspace = async (): Promise<Workspace> => (ws ??= { root: await mkdtemp(path.join(os.tmpdir(), 'sandstack-gatecorpus-')), gateInstances: new Set() });

const pending = new Map<string, Promise<CaseRun>>();
const key = (v: ComposeVersion, c: Case) => `${v.label}/${c.name}`;

afterAll(async () => {
  if (ws) await cleanupWorkspace(ws);
}, 600_000);

describe('corpus', () => {
  it.each(ALL.map((c) => [c.name, c] as const))('%s: case.json is valid and the case is complete', (_n, c) => {
    if (c.error) throw new Error(`[${c.name}] ${c.error}`);
  });

  it(`has at least ${MIN_FAILING_KINDS} failing kinds (one per case) and ${MIN_PASSING} passing cases`, () => {
    const failing = ALL.filter((c) => c.meta && !c.meta.expect.passed);
    const kinds = new Map<string, string[]>();
    for (const c of failing) kinds.set(c.meta!.kind, [...(kinds.get(c.meta!.kind) ?? []), c.name]);
    const shared = [...kinds.entries()].filter(([, names]) => names.length > 1);
    expect(shared.map(([k, names]) => `${k}: ${names.join(', ')}`), 'failure kinds must be distinct per failing case').toEqual([]);
    expect(kinds.size).toBeGreaterThanOrEqual(MIN_FAILING_KINDS);
    expect(ALL.filter((c) => c.meta?.expect.passed).length).toBeGreaterThanOrEqual(MIN_PASSING);
  });
});

describe.each(VERSIONS)('gate --fresh, compose $label', (v) => {
  if (!WANTED_VERSIONS.includes(v.label)) {
    it.skip(`compose ${v.label}: not selected by GATE_CORPUS_VERSIONS`, () => undefined);
    return;
  }
  if (!v.available) {
    it.skip(`compose ${v.label}: ${v.unavailableReason} (skipped)`, () => undefined);
    return;
  }
  const applicable = SELECTED.filter((c) => c.meta && c.meta.compose[v.label]);
  const notApplicable = SELECTED.filter((c) => c.meta && !c.meta.compose[v.label]);

  beforeAll(async () => {
    const w = await workspace();
    const limit = pLimit(CONCURRENCY);
    for (const c of applicable) {
      const run = limit(() => runCase(w, v, c));
      run.catch(() => undefined);
      pending.set(key(v, c), run);
    }
  });

  afterAll(async () => {
    const rows = [];
    for (const c of applicable) {
      const run = await pending.get(key(v, c))?.catch(() => undefined);
      rows.push({ c, run, problems: run ? checkCase(c.meta!, run) : ['never ran'] });
    }
    if (rows.length === 0) return;
    const table = resultsTable(v.label, rows);
    const file = await writeResults(v.label, table, rows);
    console.log(`${table}\n(written to ${file}; each run's report in ${file.replace(/\.md$/, '/')})`);
  }, CASE_TIMEOUT);

  for (const c of notApplicable) {
    it.skip(`${c.name}: not applicable to compose ${v.label} (${c.meta!.v1Reason ?? 'v2 excluded'})`, () => undefined);
  }

  it.each(applicable.map((c) => ({ name: c.name, c })))('$name', async ({ c }) => {
    const run = await pending.get(key(v, c));
    if (!run) throw new Error(`[${c.name} / compose ${v.label}] was never started`);
    const e = c.meta!.expect;
    const want = e.passed ? 'passes' : `fails in ${e.stage} with ${e.code}${e.reason ? ` (${e.reason})` : ''}`;
    const problems = checkCase(c.meta!, run);
    if (problems.length) throw new Error(`[${c.name} / compose ${v.label}] expected: gate ${want} (${c.meta!.kind})\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }, CASE_TIMEOUT);
});
