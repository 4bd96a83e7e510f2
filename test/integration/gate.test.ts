/**
 * The Startability Gate on the real engine: the demo stack passes `gate --fresh` and leaves nothing;
 * broken variants fail in the right stage with the right diagnosis and leave nothing either.
 */
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, docker, expectSandboxClean, makeSandbox, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

async function edit(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, () => to);
  if (next === text) throw new Error(`pattern ${from} not found in ${file}`);
  await writeFile(file, next);
}

const compose = (repo: string) => path.join(repo, 'compose.yaml');
const config = (repo: string) => path.join(repo, 'sandstack.yaml');


async function freshGate(s: Sandbox, env: Record<string, string> = {}) {
  const r = await s.run(s.repo, ['gate', '--fresh', '--json'], { env });
  const report = r.json;
  expect(report, r.stderr).toBeTruthy();
  return { r, report, stage: (name: string) => report.stages.find((x: any) => x.name === name) };
}

describe('gate --fresh', () => {
  it('passes on the demo stack with every stage, saves its report, and leaves nothing', async () => {
    sb = await makeSandbox();
    const { r, report, stage } = await freshGate(sb);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(report.passed).toBe(true);
    expect(report.mode).toBe('fresh');
    expect(report.instance.id).toMatch(/^demo-gate-[0-9a-f]{6}$/);
    expect(report.instance.kind).toBe('sandbox');
    expect(report.stages.map((s: any) => [s.name, s.status])).toEqual([
      ['config', 'passed'],
      ['build', 'passed'],
      ['start', 'passed'],
      ['healthy', 'passed'],
      ['probes', 'passed'],
      ['isolation', 'passed'],
      // The shared observability stack is not running in this test: a warning, not a failure.
      ['observability', 'warning'],
      ['teardown', 'passed'],
    ]);
    for (const s of report.stages) {
      expect(typeof s.durationMs).toBe('number');
      expect(Number.isNaN(Date.parse(s.startedAt))).toBe(false);
    }
    expect(stage('probes').details.probes.map((p: any) => p.name).sort()).toEqual(['api-health', 'db-reachable-from-backend', 'db-ready', 'items-readable', 'workers-registered']);
    expect(stage('isolation').details.published).toHaveLength(1);
    expect(stage('isolation').details.published[0].hostIp).toBe('127.0.0.1');
    // The images are content-addressed: built for this source, labelled for the state home (not
    // the throwaway instance), and kept by the teardown for the next run of the same source.
    const built = stage('build').details.images;
    expect(built.map((i: any) => i.service).sort()).toEqual(['backend', 'db', 'worker-backtest', 'worker-ingest']);
    for (const i of built) expect(i.image).toMatch(new RegExp(`^sandstack/demo-${i.service}:[0-9a-f]{20}$`));
    expect(await docker.listImages({ filters: { label: [`dev.sandstack.instance=${report.instance.id}`] } })).toEqual([]);
    const kept = await docker.listImages({ filters: { label: ['dev.sandstack.content'] } });
    for (const i of built) expect(kept.some((k) => k.RepoTags?.includes(i.image))).toBe(true);
    expect(stage('teardown').details.verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
    const saved = JSON.parse(await readFile(report.reportFile, 'utf8'));
    expect(saved.passed).toBe(true);
    expect(path.dirname(report.reportFile)).toBe(path.join(sb.home, 'reports', 'demo'));
    await expectSandboxClean(sb);
  }, 300_000);

  it('a backend that exits 1 at start fails the start stage at once (an event, not the deadline)', async () => {
    sb = await makeSandbox((repo) => edit(compose(repo), 'command: ["python3", "/app/backend.py"]', 'command: ["sh", "-c", "echo backend boom; exit 1"]'));
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.passed).toBe(false);
    expect(report.failure).toMatchObject({ stage: 'start', code: 'SANDSTACK_SERVICE_FAILED', service: 'backend', exitCode: 1 });
    expect(report.failure.logTail.join('\n')).toContain('backend boom');
    expect(report.stages.find((s: any) => s.name === 'teardown').status).toBe('passed');
    await expectSandboxClean(sb);
  }, 300_000);

  it('a healthcheck that never passes fails the healthy stage with the healthcheck output', async () => {
    sb = await makeSandbox((repo) =>
      edit(compose(repo), /test: \["CMD", "python3", "-c", "import urllib[^\n]*\n      interval: 1s\n      timeout: 3s\n      retries: 30\n      start_period: 30s/, 'test: ["CMD-SHELL", "echo health says no; exit 1"]\n      interval: 1s\n      timeout: 3s\n      retries: 2'),
    );
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'healthy', code: 'SANDSTACK_SERVICE_FAILED', service: 'backend' });
    expect(report.failure.message).toContain('unhealthy');
    expect(report.failure.healthLog.map((h: any) => h.output).join('\n')).toContain('health says no');
    await expectSandboxClean(sb);
  }, 300_000);

  it('an API that answers 500 fails the probes stage, naming the probe and the status', async () => {
    sb = await makeSandbox((repo) => edit(compose(repo), 'DATABASE_HOST: db\n', 'DATABASE_HOST: db\n      DEMO_FAULT: items-500\n'));
    const { r, report, stage } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'probes', code: 'SANDSTACK_PROBE_FAILED' });
    const failed = stage('probes').details.probes.filter((p: any) => !p.passed);
    expect(failed.map((p: any) => p.name)).toEqual(['items-readable']);
    expect(failed[0].observed).toContain('HTTP 500');
    await expectSandboxClean(sb);
  }, 300_000);

  it('a backend that cannot reach its database fails at start with a connection diagnosis', async () => {
    sb = await makeSandbox((repo) => edit(compose(repo), 'DATABASE_HOST: db\n', 'DATABASE_HOST: db-that-does-not-exist\n      MIGRATION_TIMEOUT_SECONDS: "3"\n'));
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'start', service: 'backend' });
    expect(report.failure.logTail.join('\n')).toMatch(/db-that-does-not-exist|could not translate host name/);
    expect(report.failure.hint).toContain('cannot reach a service it depends on');
    await expectSandboxClean(sb);
  }, 300_000);

  it('an invalid compose file fails the config stage (exit 2) and starts nothing', async () => {
    sb = await makeSandbox((repo) => edit(compose(repo), 'build: ./db', 'build: ./db\n    helthcheck: {test: ["CMD", "true"]}'));
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(2);
    expect(report.failure).toMatchObject({ stage: 'config', code: 'SANDSTACK_COMPOSE_INVALID' });
    expect(report.stages.map((s: any) => s.name)).toEqual(['config', 'teardown']);
    await expectSandboxClean(sb);
  }, 300_000);

  it('a missing required variable fails the config stage, naming it and where it is required', async () => {
    sb = await makeSandbox(async (repo) => {
      await edit(compose(repo), 'DATABASE_HOST: db\n', 'DATABASE_HOST: db\n      MARKET_DATA_TOKEN: ${MARKET_DATA_TOKEN:?set the market data token}\n');
      await edit(config(repo), 'version: 1\n', 'version: 1\nenv:\n  required: [RESEARCH_BUCKET]\n');
    });
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(2);
    expect(report.failure).toMatchObject({ stage: 'config', code: 'SANDSTACK_MISSING_ENV' });
    expect(report.failure.message).toContain('RESEARCH_BUCKET (required by sandstack.yaml env.required)');
    expect(report.failure.message).toMatch(/MARKET_DATA_TOKEN \(required by compose\.yaml:\d+: set the market data token\)/);
    await expectSandboxClean(sb);
  }, 300_000);

  it('fewer workers than a probe demands fail the probes stage with the value seen', async () => {
    sb = await makeSandbox((repo) => edit(config(repo), '[{ path: count, gte: 2 }]', '[{ path: count, gte: 3 }]'));
    const { r, report, stage } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'probes' });
    const workers = stage('probes').details.probes.find((p: any) => p.name === 'workers-registered');
    expect(workers.passed).toBe(false);
    expect(workers.observed).toContain('count is 2, expected >= 3');
    await expectSandboxClean(sb);
  }, 300_000);

  it('an image that fails to build fails the build stage, naming the service and the step', async () => {
    sb = await makeSandbox(async (repo) => {
      const dockerfile = path.join(repo, 'db', 'Dockerfile');
      await writeFile(dockerfile, `${await readFile(dockerfile, 'utf8')}\nRUN echo "compiling extensions" && exit 3\n`);
    });
    const containersBefore = new Set((await docker.listContainers({ all: true })).map((c) => c.Id));
    const { r, report } = await freshGate(sb);
    // The failed build step's intermediate container is removed too (--force-rm).
    expect((await docker.listContainers({ all: true })).filter((c) => !containersBefore.has(c.Id)).map((c) => `${c.Names[0]} ${c.Command}`)).toEqual([]);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'build', code: 'SANDSTACK_BUILD_FAILED', service: 'db', exitCode: 3 });
    expect(report.failure.message).toContain('compiling extensions');
    await expectSandboxClean(sb);
  }, 300_000);

  it('a service killed for running out of memory fails at start with an out-of-memory diagnosis', async () => {
    sb = await makeSandbox((repo) =>
      edit(compose(repo), 'command: ["python3", "/app/backend.py"]', 'command: ["bash", "-c", "x=$$(head -c 300000000 /dev/zero | tr \\"\\\\0\\" a)"]\n    mem_limit: 32m\n    memswap_limit: 32m'),
    );
    const { r, report } = await freshGate(sb);
    expect(r.exitCode).toBe(1);
    expect(report.failure).toMatchObject({ stage: 'start', code: 'SANDSTACK_SERVICE_FAILED', service: 'backend', exitCode: 137 });
    expect(report.failure.message).toContain('out of memory');
    expect(report.failure.hint).toContain('memory');
    await expectSandboxClean(sb);
  }, 300_000);

  it('Ctrl-C during gate --fresh still tears everything down (exit 130)', async () => {
    sb = await makeSandbox();
    const child = execa('node', [CLI, 'gate', '--fresh', '--json'], { cwd: sb.repo, env: { SANDSTACK_HOME: sb.home }, reject: false, stdin: 'ignore' });
    for (let i = 0; i < 600; i++) {
      const c = await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.kind=sandbox'] } });
      if (c.some((x) => (x.Labels['dev.sandstack.worktree'] ?? '').startsWith(sb!.base))) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    const report = JSON.parse(String(r.stdout));
    expect(report.passed).toBe(false);
    expect(report.stages.find((s: any) => s.name === 'teardown').status).toBe('passed');
    await expectSandboxClean(sb);
  }, 300_000);
});

describe('gate on a running instance and up', () => {
  it('up runs the gate; gate checks the running instance; a foreign process on a leased port fails the start stage', async () => {
    sb = await makeSandbox();
    const created = await sb.run(sb.repo, ['new', 'feat/gated', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    const dir = created.json.instance.projectDir;
    const port = created.json.ports[0].host as number;

    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const blocked = await sb.run(dir, ['up', '--json']);
      expect(blocked.exitCode).toBe(1);
      expect(blocked.json.error.code).toBe('SANDSTACK_PORT_IN_USE');
      expect(blocked.json.error.details.gate.failure.stage).toBe('start');
      expect(blocked.json.error.message).toContain(`process ${process.pid}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }

    const up = await sb.run(dir, ['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.json.gate.passed).toBe(true);
    expect(up.json.gate.stages.map((s: any) => s.name)).toEqual(['config', 'build', 'start', 'healthy', 'probes', 'isolation', 'observability']);

    const check = await sb.run(dir, ['gate', '--json']);
    expect(check.exitCode, check.stderr).toBe(0);
    expect(check.json.mode).toBe('check');
    expect(check.json.stages.map((s: any) => [s.name, s.status])).toEqual([
      ['config', 'passed'],
      ['build', 'skipped'],
      ['start', 'skipped'],
      ['healthy', 'passed'],
      ['probes', 'passed'],
      ['isolation', 'passed'],
      ['observability', 'warning'],
    ]);

    // Stop the database behind the gate's back: the check fails in the healthy stage.
    const db = (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${created.json.instance.id}`, 'com.docker.compose.service=db'] } }))[0]!;
    await docker.getContainer(db.Id).kill();
    const broken = await sb.run(dir, ['gate', '--json']);
    expect(broken.exitCode).toBe(1);
    expect(broken.json.failure).toMatchObject({ stage: 'healthy', service: 'db' });

    const destroyed = await sb.run(dir, ['destroy', '--json']);
    expect(destroyed.exitCode, destroyed.stderr).toBe(0);
    await expectSandboxClean(sb);
  }, 300_000);
});
