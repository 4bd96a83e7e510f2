/**
 * `sandstack test`: runs the unit test commands declared in sandstack.yaml (on the host or inside a
 * running service) and the E2E services inside the stack (one-off containers that reach services by
 * their Compose names, with the run's artifacts directory mounted), parses JUnit XML, and records
 * everything in `<evidence root>/<instance>/<run-id>/tests.json`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import writeFileAtomic from 'write-file-atomic';
import { runCompose } from '../compose/cli.js';
import { interpolationEnv } from '../compose/render.js';
import type { E2eTestSchema, UnitTestSchema } from '../config/schema.js';
import { execInContainer, instanceContainers } from '../engine/docker.js';
import { SandstackError } from '../errors.js';
import type { Context } from '../lifecycle/context.js';
import { findRecord, renderedProject, resolveInstance, type ResolvedInstance } from '../lifecycle/instance.js';
import type { Lease } from '../state/registry.js';
import { addJUnit, emptySummary } from './junit.js';
import type { JUnitSummary, SuiteRun, TestRunResult } from './model.js';
import type { z } from 'zod';

type UnitTest = z.output<typeof UnitTestSchema>;
type E2eTest = z.output<typeof E2eTestSchema>;

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
}

/** `<evidence root>`: evidence.root from sandstack.yaml (relative to it), else `<state home>/evidence`. */
export function evidenceRoot(ctx: Context, inst: ResolvedInstance): string {
  const configured = inst.loaded.config.evidence.root;
  return configured ? path.resolve(inst.loaded.file ? path.dirname(inst.loaded.file) : inst.projectDir, configured) : path.join(ctx.home, 'evidence');
}

export function runDirFor(root: string, instanceId: string, runId: string): string {
  return path.join(root, instanceId, runId);
}

/** The newest run of an instance (recorded in `<root>/<instance>/LATEST`). */
export async function latestRunDir(root: string, instanceId: string): Promise<string | undefined> {
  try {
    const id = (await readFile(path.join(root, instanceId, 'LATEST'), 'utf8')).trim();
    return id ? runDirFor(root, instanceId, id) : undefined;
  } catch {
    return undefined;
  }
}

export async function markLatest(root: string, instanceId: string, runId: string): Promise<void> {
  await writeFileAtomic(path.join(root, instanceId, 'LATEST'), `${runId}\n`);
}

function parseJUnitTexts(texts: { file: string; xml: string }[]): { summary?: JUnitSummary; problems: string[] } {
  if (texts.length === 0) return { problems: [] };
  const summary = emptySummary();
  const problems: string[] = [];
  for (const t of texts) {
    try {
      addJUnit(summary, t.xml, t.file);
    } catch (e) {
      problems.push(`${t.file}: ${(e as Error).message}`);
    }
  }
  return { summary, problems };
}

async function xmlFilesUnder(dir: string, runDir: string): Promise<{ file: string; xml: string }[]> {
  const out: { file: string; xml: string }[] = [];
  let entries: string[] = [];
  try {
    entries = (await readdir(dir, { recursive: true })) as string[];
  } catch {
    return out;
  }
  for (const e of entries.sort()) {
    if (!e.endsWith('.xml')) continue;
    const abs = path.join(dir, e);
    out.push({ file: path.relative(runDir, abs), xml: await readFile(abs, 'utf8') });
  }
  return out;
}

interface RunEnv {
  ctx: Context;
  inst: ResolvedInstance;
  leases: Lease[];
  runDir: string;
}

async function runUnit(env: RunEnv, t: UnitTest): Promise<SuiteRun> {
  const { ctx, inst, runDir } = env;
  const startedAt = new Date();
  const artifacts = path.join(runDir, 'unit', t.name);
  await mkdir(artifacts, { recursive: true });
  const log = path.join('unit', t.name, 'output.log');
  let exitCode: number;
  let output: string;
  let junitTexts: { file: string; xml: string }[] = [];
  ctx.onProgress({ type: 'step', message: `unit ${t.name}${t.service ? ` (in ${t.service})` : ' (host)'}: ${t.run}` });
  if (t.service) {
    const c = (await instanceContainers(ctx.engine.docker, inst.identity.id)).find((x) => x.service === t.service && x.state === 'running');
    if (!c) {
      throw new SandstackError('SANDSTACK_NOT_RUNNING', `Unit test ${t.name} runs in service ${t.service}, which is not running in ${inst.identity.id}.`, { hint: 'Start the instance with `sandstack up`.' });
    }
    try {
      const r = await execInContainer(ctx.engine.docker, c.id, ['sh', '-c', t.run], t.timeoutSeconds * 1000);
      exitCode = r.exitCode;
      output = r.output;
    } catch (e) {
      exitCode = 124;
      output = `sandstack: ${(e as Error).message}`;
    }
    if (t.junit) {
      const cat = await execInContainer(ctx.engine.docker, c.id, ['cat', t.junit], 30_000).catch(() => undefined);
      if (cat && cat.exitCode === 0) {
        const file = path.join('unit', t.name, path.basename(t.junit));
        await writeFile(path.join(runDir, file), cat.output);
        junitTexts = [{ file, xml: cat.output }];
      } else {
        output += `\nsandstack: the JUnit file ${t.junit} was not found in ${t.service}`;
      }
    }
  } else {
    const r = await execa('sh', ['-c', t.run], {
      cwd: inst.projectDir,
      env: { ...ctx.env, ...interpolationEnv(inst.identity, env.leases, inst.paths.dataRoot), SANDSTACK_ARTIFACTS_DIR: artifacts },
      reject: false,
      all: true,
      timeout: t.timeoutSeconds * 1000,
      stdin: 'ignore',
      cancelSignal: ctx.signal,
    });
    exitCode = r.timedOut ? 124 : (r.exitCode ?? 1);
    output = String(r.all ?? '') + (r.timedOut ? `\nsandstack: timed out after ${t.timeoutSeconds} s` : '');
    if (t.junit) junitTexts = await xmlFilesUnder(artifacts, runDir).then((all) => all.filter((x) => path.resolve(runDir, x.file) === path.resolve(artifacts, t.junit!)));
  }
  await writeFile(path.join(runDir, log), output.endsWith('\n') || output === '' ? output : `${output}\n`);
  const { summary, problems } = parseJUnitTexts(junitTexts);
  if (problems.length) await writeFile(path.join(runDir, log), `\nsandstack: ${problems.join('\nsandstack: ')}\n`, { flag: 'a' });
  return finish({ kind: 'unit', name: t.name, where: t.service ?? 'host', command: t.run, exitCode, startedAt, log, junit: summary });
}

async function runE2e(env: RunEnv, t: E2eTest): Promise<SuiteRun> {
  const { ctx, inst, runDir } = env;
  const startedAt = new Date();
  const rp = await renderedProject(ctx, inst, env.leases);
  if (!rp) throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} has not been started.`, { hint: 'Start it with `sandstack up`.' });
  if (!rp.model.services[t.service]) {
    throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `tests.e2e names service "${t.service}", which the compose project does not define.`, { hint: `Services: ${Object.keys(rp.model.services).join(', ')}.` });
  }
  const artifacts = path.join(runDir, 'e2e', t.service);
  await mkdir(artifacts, { recursive: true });
  const log = path.join('e2e', t.service, 'output.log');
  ctx.onProgress({ type: 'step', message: `e2e ${t.service}: one-off container in ${inst.identity.id}, artifacts at ${t.artifactsPath}` });
  const lines: string[] = [];
  let exitCode: number;
  try {
    const r = await runCompose(rp.project, ['run', '--rm', '-T', '-v', `${artifacts}:${t.artifactsPath}`, '-e', `ARTIFACTS_DIR=${t.artifactsPath}`, t.service], {
      signal: ctx.signal,
      timeoutMs: t.timeoutSeconds * 1000,
      onLine: (line) => {
        lines.push(line);
        ctx.onProgress({ type: 'log', source: t.service, line });
      },
    });
    exitCode = r.exitCode;
  } catch (e) {
    if (!(e instanceof SandstackError) || e.code !== 'SANDSTACK_TIMEOUT') throw e;
    exitCode = 124;
    lines.push(`sandstack: ${e.message.split('\n')[0]}`);
  } finally {
    // A killed `run` can leave its one-off container behind: remove it (only this instance's).
    const left = await ctx.engine.docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${inst.identity.id}`, `com.docker.compose.service=${t.service}`, 'com.docker.compose.oneoff=True'] } });
    await Promise.all(left.map((c) => ctx.engine.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  }
  await writeFile(path.join(runDir, log), `${lines.join('\n')}\n`);
  const { summary, problems } = parseJUnitTexts(await xmlFilesUnder(artifacts, runDir));
  if (problems.length) await writeFile(path.join(runDir, log), `\nsandstack: ${problems.join('\nsandstack: ')}\n`, { flag: 'a' });
  return finish({ kind: 'e2e', name: t.service, where: t.service, command: `compose run ${t.service}`, exitCode, startedAt, log, junit: summary });
}

function finish(r: Omit<SuiteRun, 'passed' | 'durationMs' | 'startedAt'> & { startedAt: Date }): SuiteRun {
  const passed = r.exitCode === 0 && (r.junit === undefined || r.junit.failed === 0);
  return { ...r, startedAt: r.startedAt.toISOString(), durationMs: Date.now() - r.startedAt.getTime(), passed };
}

export interface RunTestsOptions {
  inst?: ResolvedInstance;
  /** Files the run under this instance id (verify: the worktree's id, not the throwaway one). */
  evidenceInstanceId?: string;
  runId?: string;
}

export async function runTests(ctx: Context, opts: RunTestsOptions = {}): Promise<TestRunResult> {
  const inst = opts.inst ?? (await resolveInstance(ctx));
  const tests = inst.loaded.config.tests;
  if (tests.unit.length + tests.e2e.length === 0) {
    throw new SandstackError('SANDSTACK_NO_TESTS', 'sandstack.yaml declares no tests (tests.unit, tests.e2e): a run that tests nothing is not a pass.', {
      hint: 'Declare unit test commands under tests.unit and E2E services under tests.e2e.',
    });
  }
  const { record } = await findRecord(ctx, inst.identity.id);
  if (!record) {
    throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} is not registered (never started).`, { hint: 'Start it with `sandstack up`.' });
  }
  inst.projectDir = record.projectDir;
  const running = (await instanceContainers(ctx.engine.docker, inst.identity.id)).some((c) => c.state === 'running');
  if (!running) throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} is not running.`, { hint: 'Start it with `sandstack up`.' });

  const root = evidenceRoot(ctx, inst);
  const evidenceId = opts.evidenceInstanceId ?? inst.identity.id;
  const runId = opts.runId ?? newRunId();
  const runDir = runDirFor(root, evidenceId, runId);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const env: RunEnv = { ctx, inst, leases: record.leases, runDir };
  const suites: SuiteRun[] = [];
  for (const t of tests.unit) suites.push(await runUnit(env, t));
  for (const t of tests.e2e) suites.push(await runE2e(env, t));
  const totals = { suites: suites.length, tests: 0, passed: 0, failed: 0, skipped: 0 };
  for (const s of suites) {
    if (s.junit) {
      totals.tests += s.junit.tests;
      totals.passed += s.junit.passed;
      totals.failed += s.junit.failed;
      totals.skipped += s.junit.skipped;
    } else {
      // A command without JUnit output counts as one test.
      totals.tests++;
      if (s.passed) totals.passed++;
      else totals.failed++;
    }
  }
  const result: TestRunResult = { runId, instance: evidenceId, dir: runDir, startedAt, durationMs: Date.now() - t0, passed: suites.every((s) => s.passed), totals, suites };
  await writeFileAtomic(path.join(runDir, 'tests.json'), `${JSON.stringify(result, null, 2)}\n`);
  await markLatest(root, evidenceId, runId);
  return result;
}
