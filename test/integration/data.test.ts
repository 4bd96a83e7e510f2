/**
 * Data by design on the real engine: a shared dataset declared read-only is mounted by rendering,
 * readable and not writable in the container; the data root is seeded from data.root.template; an
 * undeclared host folder outside the project is reported by lint (SS015, a warning, so it does not
 * block the start) and fails the gate's isolation stage, which reads Docker's own mount list; allowed
 * under policy.allow with a reason, the same mount passes. Everything is removed afterwards.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { docker, expectSandboxClean, makeSandbox, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
const hostDirs: string[] = [];
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
  for (const d of hostDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A host folder outside any project (removed after the test). */
async function hostFolder(prefix: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  hostDirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

/** Sets keys of the repository's sandstack.yaml (comments kept). */
async function editConfig(repo: string, set: (doc: ReturnType<typeof parseDocument>) => void): Promise<void> {
  const file = path.join(repo, 'sandstack.yaml');
  const doc = parseDocument(await readFile(file, 'utf8'));
  set(doc);
  await writeFile(file, doc.toString());
}

/** Adds a bind mount to the demo's backend service in compose.yaml. */
async function mountIntoBackend(repo: string, source: string, target: string): Promise<void> {
  const file = path.join(repo, 'compose.yaml');
  const text = await readFile(file, 'utf8');
  const anchor = '    command: ["python3", "/app/backend.py"]\n';
  if (!text.includes(anchor)) throw new Error('the backend command line of the demo compose.yaml changed');
  await writeFile(file, text.replace(anchor, `${anchor}    volumes:\n      - ${source}:${target}\n`));
}

const stageOf = (report: any, name: string) => report.stages.find((s: any) => s.name === name);

/** Runs the CLI in the sandbox's repository as instance `id` (an id of its own: `demo` may be taken on a shared engine). */
function runAs(s: Sandbox, id: string, args: string[]) {
  return s.run(s.repo, args, { env: { SANDSTACK_INSTANCE: id } });
}
const ID = (name: string) => `data-${name}-${process.pid}`;

describe('data: shared datasets and per-instance data roots', () => {
  it('mounts a declared dataset read-only (readable, not writable), seeds the data root from its template, and shows both', async () => {
    const prices = await hostFolder('sandstack-prices-', { 'prices.csv': 'symbol,close\nAAPL,189.5\n' });
    sb = await makeSandbox(async (repo) => {
      await mkdir(path.join(repo, 'data-template', 'cache'), { recursive: true });
      await writeFile(path.join(repo, 'data-template', 'seed.txt'), 'seeded from the template\n');
      await writeFile(path.join(repo, 'data-template', 'cache', 'warm.bin'), Buffer.alloc(64 * 1024, 1));
      await editConfig(repo, (doc) => {
        doc.setIn(['data', 'shared'], [{ name: 'prices', host: prices, services: ['backend'], target: '/datasets/prices' }]);
        doc.setIn(['data', 'root'], { template: 'data-template' });
      });
    });
    const s = sb;
    const id = ID('ro');
    const run = (args: string[]) => runAs(s, id, args);
    const up = await run(['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.json.instance.id).toBe(id);
    // Rendering added the mount; the config stage seeded the data root; the isolation stage saw both in Docker's mount list.
    expect(up.json.render.sharedData).toEqual([{ dataset: 'prices', service: 'backend', source: prices, target: '/datasets/prices', readOnly: true, action: 'added' }]);
    const config = stageOf(up.json.gate, 'config');
    expect(config.details.dataRoot).toMatchObject({ template: path.join(s.repo, 'data-template'), files: 2, bytes: 64 * 1024 + 25 });
    expect(['reflink', 'copy']).toContain(config.details.dataRoot.method);
    expect(up.json.notices.join('\n')).toMatch(/data root seeded from data-template \(2 files, 0\.06 MB, (reflink|copy)\)/);
    const iso = stageOf(up.json.gate, 'isolation');
    expect(iso.status).toBe('passed');
    expect(iso.details.mounts.filter((m: any) => m.kind === 'dataset')).toEqual([
      expect.objectContaining({ service: 'backend', source: prices, target: '/datasets/prices', readOnly: true, dataset: 'prices' }),
    ]);

    // Docker's own view of the container: a read-only bind of the host folder.
    const [backend] = await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`, 'com.docker.compose.service=backend'] } });
    const info = await docker.getContainer(backend!.Id).inspect();
    expect(info.Mounts.find((m) => m.Destination === '/datasets/prices')).toMatchObject({ Type: 'bind', Source: prices, RW: false });

    // Readable, not writable.
    const read = await run(['shell', 'backend', '--', 'cat', '/datasets/prices/prices.csv']);
    expect(read.exitCode, read.stderr).toBe(0);
    expect(read.stdout).toContain('AAPL,189.5');
    const write = await run(['shell', 'backend', '--', 'touch', '/datasets/prices/x']);
    expect(write.exitCode).not.toBe(0);
    expect(`${write.stdout}\n${write.stderr}`).toMatch(/Read-only file system/i);
    expect(await readdir(prices)).toEqual(['prices.csv']);

    // The data root holds the template's files, as the instance's own copy.
    const dataRoot = path.join(s.home, 'instances', id, 'data');
    expect(await readFile(path.join(dataRoot, 'seed.txt'), 'utf8')).toBe('seeded from the template\n');
    expect((await stat(path.join(dataRoot, 'cache', 'warm.bin'))).size).toBe(64 * 1024);

    // status lists what the instance sees.
    const st = await run(['status', '--json']);
    expect(st.exitCode, st.stderr).toBe(0);
    expect(st.json.data).toEqual({
      shared: [{ name: 'prices', host: prices, target: '/datasets/prices', services: ['backend'], mode: 'ro', mountedIn: ['backend'] }],
      root: { path: dataRoot, template: path.join(s.repo, 'data-template'), exists: true },
    });
    const text = await run(['status']);
    expect(text.stdout).toContain(`shared prices: ${prices} -> /datasets/prices (ro) for backend; mounted in backend`);

    // The running gate agrees; sandstack df counts the data root in the instance folder.
    const gate = await run(['gate', '--json']);
    expect(gate.exitCode, gate.stderr).toBe(0);
    const df = await run(['df', '--json']);
    expect(df.exitCode, df.stderr).toBe(0);
    const mine = df.json.instances.find((i: any) => i.id === id);
    expect(mine.stateDir.size).toBeGreaterThanOrEqual(64 * 1024 + 25);

    // destroy removes the data root with the state folder; the shared dataset stays as it was.
    const destroyed = await run(['destroy', '--json']);
    expect(destroyed.exitCode, destroyed.stderr).toBe(0);
    await expect(stat(path.join(s.home, 'instances', id))).rejects.toThrow();
    expect(await readFile(path.join(prices, 'prices.csv'), 'utf8')).toContain('AAPL');
    await expectSandboxClean(s);
  }, 600_000);

  it('refuses a dataset whose host path does not exist, before anything starts', async () => {
    const gone = path.join(os.tmpdir(), `sandstack-gone-${process.pid}-${Date.now()}`);
    sb = await makeSandbox((repo) => editConfig(repo, (doc) => doc.setIn(['data', 'shared'], [{ name: 'ohlc', host: gone, services: ['backend'], target: '/data/ohlc' }])));
    const r = await runAs(sb, ID('gone'), ['up', '--json']);
    expect(r.exitCode).toBe(2);
    expect(`${r.stdout}${r.stderr}`).toContain('SANDSTACK_CONFIG_INVALID');
    expect(`${r.stdout}${r.stderr}`).toContain(`The shared dataset ohlc in ${path.join(sb.repo, 'sandstack.yaml')} names the host path ${gone}, which does not exist.`);
    await expectSandboxClean(sb);
  }, 120_000);

  it('an undeclared host folder outside the project: lint reports SS015, the isolation stage of gate --fresh fails; allowed under policy.allow it passes', async () => {
    const scratch = await hostFolder('sandstack-scratch-', { 'note.txt': 'not declared\n' });
    sb = await makeSandbox((repo) => mountIntoBackend(repo, scratch, '/scratch'));
    const s = sb;
    const run = (args: string[]) => runAs(s, ID('undeclared'), args);

    // lint: a warning (host-path-mount), so it does not block up or the gate at the config stage.
    const lint = await run(['lint', '--format', 'json']);
    const finding = lint.json.findings.find((f: any) => f.ruleId === 'SS015' && f.service === 'backend');
    expect(finding, lint.stdout).toMatchObject({ severity: 'warning', subject: scratch });

    // The isolation stage reads Docker's mount list and fails on it.
    const failed = await run(['gate', '--fresh', '--json']);
    expect(failed.exitCode, failed.stderr).toBe(1);
    const report = failed.json;
    expect(report.passed).toBe(false);
    expect(report.failure.stage).toBe('isolation');
    expect(report.failure.code).toBe('SANDSTACK_ISOLATION_FAILED');
    expect(report.failure.message).toContain(`bind-mounts the host path ${scratch} at /scratch, outside the project and the instance's state folder, not declared under data.shared (lint SS015`);
    expect(stageOf(report, 'config').status).toBe('passed');
    expect(stageOf(report, 'teardown').status).toBe('passed');
    await expectSandboxClean(s);

    // Allowed deliberately (the rule lint gives it, for that service, with a reason): the same mount passes.
    await editConfig(s.repo, (doc) => doc.setIn(['policy', 'allow'], [{ rule: 'SS015', service: 'backend', reason: 'scratch space the test provides on purpose' }]));
    const allowed = await run(['gate', '--fresh', '--json']);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    const iso = stageOf(allowed.json, 'isolation');
    expect(iso.status).toBe('passed');
    expect(iso.details.mounts.find((m: any) => m.source === scratch)).toMatchObject({ kind: 'allowed', ruleId: 'SS015', reason: 'scratch space the test provides on purpose' });
    await expectSandboxClean(s);
  }, 900_000);
});
