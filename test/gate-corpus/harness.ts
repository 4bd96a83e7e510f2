/**
 * Runs one gate-corpus case with one Compose version: a temp git repository named after the case
 * (so the case name is the instance id), `sandstack gate --fresh --json` in it, then a look for
 * anything the run left labelled. Every step records its outcome instead of throwing, so each test
 * reports its own case; checkCase turns a run into a list of mismatches with case.json.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { parseDocument } from 'yaml';
import { CLI as BUILT_CLI, docker, git, removeHomeImages, ROOT, runCli, type CliResult } from '../integration/helpers.js';
import { META_FILE, SUPPORT_DIR, type Case, type CaseMeta } from './meta.js';
import { VERSIONS, type ComposeVersion } from '../conformance/harness.js';

// The Compose versions (v2, and v1 beside it when installed) are the conformance corpus's.
export { VERSIONS, type ComposeVersion };

/** The CLI under test: dist/cli/main.js, or GATE_CORPUS_CLI (e.g. a build of another checkout). */
export const CLI = process.env.GATE_CORPUS_CLI ? path.resolve(process.env.GATE_CORPUS_CLI) : BUILT_CLI;
export const RESULTS_DIR = path.join(ROOT, 'test-results');
/** How long one `gate --fresh` may take before the harness stops it (cases use 10-90 s deadlines). */
export const RUN_TIMEOUT_MS = 300_000;
/** A container event must fail the gate within this long (failure.detectedAfterMs). */
export const EVENT_LATENCY_MS = 2000;

/** The parent of every folder of this test run. */
export interface Workspace {
  root: string;
  /** Throwaway instance ids the gate reported (their images are removed in cleanup if left). */
  gateInstances: Set<string>;
}

export interface CaseRun {
  name: string;
  version: 'v1' | 'v2';
  /** The temp repository (its folder name is the case name). */
  repo: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The gate report (stdout parsed), when stdout was JSON. */
  report?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The throwaway instance id the report names. */
  gateId?: string;
  /** A harness problem (copy failed, the run timed out); the case cannot be judged. */
  error?: string;
  /** The port held for a holdPort case. */
  heldPort?: number;
  /** Labelled resources left after the run (containers, volumes, networks under the repo; images of the throwaway id). */
  leftovers: string[];
  wallMs: number;
}

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** The host environment without sandstack/Compose selectors that would change what runs. */
export function homeFor(ws: Workspace, version: ComposeVersion): string {
  return path.join(ws.root, version.label, '.sandstack-home');
}

export function repoFor(ws: Workspace, version: ComposeVersion, name: string): string {
  return path.join(ws.root, version.label, name, name);
}

export async function sandstack(ws: Workspace, version: ComposeVersion, meta: CaseMeta | undefined, cwd: string, args: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<CliResult> {
  return runCli(homeFor(ws, version), cwd, args, { isolated: true, cli: CLI, env: { ...(meta?.env ?? {}), ...version.env }, timeout: timeoutMs });
}

/** Listens on a free 127.0.0.1 port (a foreign process, as far as sandstack can tell). */
export async function holdFreePort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Anything labelled dev.sandstack.worktree with a worktree under `dir`. */
export async function leftoversUnder(dir: string): Promise<string[]> {
  const filters = { label: ['dev.sandstack.worktree'] };
  const mine = (labels: Record<string, string> | undefined | null) => {
    const w = labels?.['dev.sandstack.worktree'] ?? '';
    return w === dir || w.startsWith(dir + path.sep);
  };
  const [c, v, n] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listVolumes({ filters }), docker.listNetworks({ filters })]);
  return [
    ...c.filter((x) => mine(x.Labels)).map((x) => `container ${x.Names[0]} (${x.State})`),
    ...(v.Volumes ?? []).filter((x) => mine(x.Labels as Record<string, string>)).map((x) => `volume ${x.Name}`),
    ...n.filter((x) => mine(x.Labels)).map((x) => `network ${x.Name}`),
  ];
}

export async function imagesOf(id: string): Promise<string[]> {
  const images = await docker.listImages({ filters: { label: [`dev.sandstack.instance=${id}`] } });
  return images.map((i) => `image ${i.RepoTags?.filter((t) => t !== '<none>:<none>').join(',') || i.Id}`);
}

/** Copies the case, runs `gate --fresh --json` on it, and looks for leftovers. Never throws. */
export async function runCase(ws: Workspace, version: ComposeVersion, c: Case): Promise<CaseRun> {
  const t0 = Date.now();
  const repo = repoFor(ws, version, c.name);
  const run: CaseRun = { name: c.name, version: version.label, repo, exitCode: -1, stdout: '', stderr: '', leftovers: [], wallMs: 0 };
  let held: { port: number; close: () => Promise<void> } | undefined;
  try {
    const meta = c.meta!;
    await mkdir(path.dirname(repo), { recursive: true });
    await cp(c.dir, repo, { recursive: true, filter: (src) => path.basename(src) !== META_FILE });
    await cp(SUPPORT_DIR, path.join(repo, 'support'), { recursive: true });
    if (meta.holdPort) {
      held = await holdFreePort();
      run.heldPort = held.port;
      const file = path.join(repo, 'sandstack.yaml');
      const doc = parseDocument(await readFile(file, 'utf8'));
      doc.setIn(['ports', 'range'], doc.createNode({ from: held.port, to: held.port }, { flow: true }));
      await writeFile(file, doc.toString());
    }
    await git(repo, ['init', '-q', '-b', 'main']);
    await git(repo, ['add', '-A']);
    await execa('git', ['commit', '-qm', `${c.name} as written`], { cwd: repo, env: GIT_ENV });

    const r = await sandstack(ws, version, meta, repo, ['gate', '--fresh', '--json']);
    run.exitCode = r.exitCode;
    run.stdout = r.stdout;
    run.stderr = r.stderr;
    if (r.timedOut) run.error = `gate --fresh did not finish within ${RUN_TIMEOUT_MS / 1000} s (stopped)`;
    if (r.json && typeof r.json === 'object') run.report = r.json;
    const id = run.report?.instance?.id;
    if (typeof id === 'string' && id.includes('-gate-')) {
      run.gateId = id;
      ws.gateInstances.add(id);
    }
  } catch (e) {
    run.error = `harness error: ${(e as Error).stack ?? String(e)}`;
  } finally {
    await held?.close();
  }
  try {
    run.leftovers = [...(await leftoversUnder(path.dirname(repo))), ...(run.gateId ? await imagesOf(run.gateId) : [])];
  } catch (e) {
    run.leftovers = [`(could not list labelled resources: ${(e as Error).message})`];
  }
  run.wallMs = Date.now() - t0;
  return run;
}

const tail = (s: string, n = 20) => s.split(/\r?\n/).filter(Boolean).slice(-n).join('\n');

/** Every way a run differs from what case.json expects (empty when it matches). */
export function checkCase(meta: CaseMeta, run: CaseRun): string[] {
  const problems: string[] = [];
  const e = meta.expect;
  if (run.error) problems.push(run.error);
  const report = run.report;
  if (!report || typeof report.passed !== 'boolean' || !Array.isArray(report.stages)) {
    problems.push(`no gate report on stdout (exit ${run.exitCode}): ${run.stdout.slice(0, 600)}\n${tail(run.stderr)}`);
    if (run.leftovers.length) problems.push(`left behind:\n${run.leftovers.map((x) => `  - ${x}`).join('\n')}`);
    return problems;
  }
  if (e.passed && run.exitCode !== 0) problems.push(`exit code ${run.exitCode}, expected 0`);
  if (!e.passed && run.exitCode === 0) problems.push('exit code 0, expected non-zero');
  if (report.passed !== e.passed) problems.push(`report.passed is ${report.passed}, expected ${e.passed}`);
  const f = report.failure;
  if (e.passed) {
    if (f) problems.push(`unexpected failure: ${f.stage}/${f.code}: ${f.message}`);
  } else if (!f) {
    problems.push('report.failure is missing');
  } else {
    const same = (what: string, got: unknown, want: unknown) => {
      if (want !== undefined && got !== want) problems.push(`failure.${what} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    };
    same('stage', f.stage, e.stage);
    same('code', f.code, e.code);
    same('service', f.service, e.service);
    same('reason', f.reason, e.reason);
    same('exitCode', f.exitCode, e.exitCode);
    for (const s of e.messageIncludes ?? []) if (!String(f.message ?? '').includes(s)) problems.push(`failure.message does not include ${JSON.stringify(s)}: ${JSON.stringify(f.message)}`);
    for (const s of e.hintIncludes ?? []) if (!String(f.hint ?? '').includes(s)) problems.push(`failure.hint does not include ${JSON.stringify(s)}: ${JSON.stringify(f.hint)}`);
    if (e.eventCaused) {
      if (typeof f.detectedAfterMs !== 'number') problems.push(`failure.detectedAfterMs is ${JSON.stringify(f.detectedAfterMs)}, expected a number (a container event caused the failure)`);
      else if (f.detectedAfterMs >= EVENT_LATENCY_MS) problems.push(`failure.detectedAfterMs is ${f.detectedAfterMs}, expected < ${EVENT_LATENCY_MS}`);
    }
  }
  const teardown = (report.stages as { name: string; status: string; details?: unknown }[]).find((s) => s.name === 'teardown');
  if (!teardown) problems.push('no teardown stage in the report');
  else if (teardown.status !== 'passed' && teardown.status !== 'warning') problems.push(`teardown stage ${teardown.status}: ${JSON.stringify(teardown.details).slice(0, 500)}`);
  if (run.leftovers.length) problems.push(`left behind:\n${run.leftovers.map((x) => `  - ${x}`).join('\n')}`);
  if (problems.length) {
    const stages = (report.stages as { name: string; status: string }[]).map((s) => `${s.name}=${s.status}`).join(' ');
    problems.push(`(stages: ${stages}; failure: ${f ? JSON.stringify({ ...f, logTail: f.logTail?.slice(-5) }).slice(0, 1500) : 'none'})`);
  }
  return problems;
}

const seconds = (ms: unknown) => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : '-');

/** The markdown table of one Compose version's runs. */
export function resultsTable(version: string, rows: { c: Case; run: CaseRun | undefined; problems: string[] }[]): string {
  const cell = (s: unknown) => String(s).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const lines = [
    `# gate corpus, compose ${version}`,
    '',
    `${rows.filter((r) => r.problems.length === 0).length} of ${rows.length} cases as expected; CLI ${CLI.startsWith(ROOT + path.sep) ? path.relative(ROOT, CLI) : CLI}; ${new Date().toISOString()}`,
    '',
    '| case | kind | expected stage | actual stage | verdict | code | time to red | gate duration | as expected |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { c, run, problems } of rows) {
    const e = c.meta?.expect;
    const report = run?.report;
    const f = report?.failure;
    const verdict = report && typeof report.passed === 'boolean' ? (report.passed ? 'passed' : 'failed') : `no report (exit ${run?.exitCode ?? '?'})`;
    const red = typeof f?.detectedAfterMs === 'number' ? `${f.detectedAfterMs} ms` : '-';
    lines.push(
      `| ${[c.name, c.meta?.kind ?? '?', e ? (e.passed ? '- (passes)' : e.stage) : '?', f?.stage ?? '-', verdict, f?.code ?? '-', red, seconds(report?.durationMs), problems.length ? 'no' : 'yes'].map(cell).join(' | ')} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes test-results/gate-corpus-<version>.md (the table) and, per case,
 * test-results/gate-corpus-<version>/<case>.json (exit code, report, stderr tail, problems).
 */
export async function writeResults(version: string, table: string, rows: { c: Case; run: CaseRun | undefined; problems: string[] }[]): Promise<string> {
  const dir = path.join(RESULTS_DIR, `gate-corpus-${version}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const { c, run, problems } of rows) {
    const record = { case: c.name, kind: c.meta?.kind, expect: c.meta?.expect, problems, exitCode: run?.exitCode, error: run?.error, wallMs: run?.wallMs, heldPort: run?.heldPort, leftovers: run?.leftovers, report: run?.report ?? null, stdout: run?.report ? undefined : run?.stdout, stderrTail: tail(run?.stderr ?? '', 60).split('\n') };
    await writeFile(path.join(dir, `${c.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  }
  const file = path.join(RESULTS_DIR, `gate-corpus-${version}.md`);
  await writeFile(file, table);
  return file;
}

/**
 * Destroys every instance whose worktree lies under the workspace (by label, with the home and
 * Compose version of its folder), force-removes whatever still carries such a label, removes the
 * images of the throwaway ids, and deletes the workspace.
 */
export async function cleanupWorkspace(ws: Workspace): Promise<void> {
  const filters = { label: ['dev.sandstack.worktree'] };
  const under = (labels: Record<string, string> | undefined | null) => (labels?.['dev.sandstack.worktree'] ?? '').startsWith(ws.root + path.sep);
  const ids = new Map<string, string>(); // instance id -> worktree
  const remember = (l: Record<string, string> | undefined | null) => {
    if (under(l) && l?.['dev.sandstack.instance']) ids.set(l['dev.sandstack.instance'], l['dev.sandstack.worktree']!);
  };
  try {
    for (const c of await docker.listContainers({ all: true, filters })) remember(c.Labels);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) remember(v.Labels as Record<string, string>);
    for (const n of await docker.listNetworks({ filters })) remember(n.Labels);
    for (const [id, worktree] of ids) {
      const version = worktree.startsWith(path.join(ws.root, 'v1') + path.sep) ? VERSIONS[1]! : VERSIONS[0]!;
      const cwd = existsSync(worktree) ? worktree : ws.root;
      await sandstack(ws, version, undefined, cwd, ['destroy', '--instance', id, '--json'], 120_000).catch(() => undefined);
    }
    // Whatever destroy could not remove.
    for (const c of await docker.listContainers({ all: true, filters })) if (under(c.Labels)) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
    for (const n of await docker.listNetworks({ filters })) if (under(n.Labels)) await docker.getNetwork(n.Id).remove().catch(() => undefined);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) if (under(v.Labels as Record<string, string>)) await docker.getVolume(v.Name).remove({ force: true }).catch(() => undefined);
    for (const id of [...ws.gateInstances, ...ids.keys()]) {
      for (const img of await docker.listImages({ filters: { label: [`dev.sandstack.instance=${id}`] } }).catch(() => [])) {
        await docker.getImage(img.Id).remove({ force: true }).catch(() => undefined);
      }
    }
    for (const version of VERSIONS) await removeHomeImages(homeFor(ws, version));
  } finally {
    await rm(ws.root, { recursive: true, force: true });
  }
}
