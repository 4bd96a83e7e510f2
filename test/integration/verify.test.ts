/**
 * The pre-PR loop on the real engine: `verify` passes on the demo stack and leaves nothing; a failing
 * E2E test fails it and is named in summary.md; a planted secret appears in no file of the bundle;
 * `test`, `evidence` and `escalate` on their own.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pathToFileURL } from 'node:url';
import { ARTIFACTS, launchChromium } from './browser.js';
import { docker, expectSandboxClean, makeSandbox, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

async function edit(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} not found in ${file}`);
  await writeFile(file, text.replace(from, () => to));
}

async function filesUnder(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true, withFileTypes: true })) as import('node:fs').Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}


describe('verify', () => {
  it('passes end to end on the demo stack, prints summary.md last, redacts a planted secret, leaves nothing', async () => {
    const secret = `sk-live-${randomBytes(12).toString('hex')}`;
    sb = await makeSandbox(async (repo) => {
      // The backend gets the token and prints it at start; the e2e run prints it too.
      await edit(path.join(repo, 'compose.yaml'), 'DATABASE_HOST: db\n', 'DATABASE_HOST: db\n      MARKET_API_TOKEN: ${DEMO_MARKET_API_TOKEN}\n');
      await edit(path.join(repo, 'compose.yaml'), 'command: ["python3", "/app/backend.py"]', 'command: ["sh", "-c", "echo connecting with token $$MARKET_API_TOKEN; exec python3 /app/backend.py"]');
      // Host variables reach Compose only when allowed.
      await edit(path.join(repo, 'sandstack.yaml'), 'version: 1\n', 'version: 1\nenv:\n  allow: [DEMO_MARKET_API_TOKEN]\n');
    });
    const r = await sb.run(sb.repo, ['verify'], { env: { DEMO_MARKET_API_TOKEN: secret } });
    expect(r.exitCode, r.stderr).toBe(0);
    const lastLine = r.stdout.trim().split('\n').pop()!;
    expect(lastLine).toMatch(/summary\.md$/);
    const dir = path.dirname(lastLine);
    expect(path.dirname(path.dirname(dir))).toBe(path.join(sb.home, 'evidence'));

    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.result).toEqual({ gatePassed: true, testsPassed: true, passed: true });
    expect(manifest.instance.id).toBe('demo');
    expect(manifest.instance.runInstance).toMatch(/^demo-gate-/);
    expect(manifest.git.commit).toMatch(/^[0-9a-f]{40}$/);
    // The Compose that ran, as sandstack itself reports it (v2 in leg 1, v1 in leg 2).
    const versions = (await sb.run(sb.repo, ['--version', '--verbose', '--json'])).json;
    expect(manifest.versions.compose).toBe(`${versions.compose.command.join(' ')} ${versions.compose.version}`);
    expect(manifest.versions.docker).toBe(versions.engine.version);
    expect(manifest.redaction.secretsRedacted).toBeGreaterThan(0);
    const files = manifest.files.map((f: any) => f.path);
    for (const f of ['gate-report.json', 'tests.json', 'teardown.json', 'services.json', 'images.json', 'ports.json', 'compose.rendered.yaml', 'logs/backend.log', 'logs/db.log', 'e2e/e2e/junit-e2e.xml']) {
      expect(files).toContain(f);
    }
    const teardown = JSON.parse(await readFile(path.join(dir, 'teardown.json'), 'utf8'));
    expect(teardown.remaining).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect(teardown.removed.containers.length).toBeGreaterThanOrEqual(4);
    const gate = JSON.parse(await readFile(path.join(dir, 'gate-report.json'), 'utf8'));
    expect(gate.stages.map((s: any) => s.name)).toEqual(['config', 'build', 'start', 'healthy', 'probes', 'isolation', 'observability', 'teardown']);
    const tests = JSON.parse(await readFile(path.join(dir, 'tests.json'), 'utf8'));
    expect(tests.totals).toMatchObject({ suites: 2, failed: 0 });
    // Every test the demo defines ran and passed: the unit tests in the backend, the e2e suite in its container.
    const defined = async (file: string) => ((await readFile(path.join(sb.repo, 'app', file), 'utf8')).match(/^\s*def test_/gm) ?? []).length;
    expect(tests.totals.passed).toBe((await defined('test_units.py')) + (await defined('e2e.py')));

    const summary = await readFile(path.join(dir, 'summary.md'), 'utf8');
    expect(summary).toContain('PASSED');
    expect(summary).toContain('[gate-report.json](gate-report.json)');

    // The real report.html draws its timeline in a browser: one bar per gate stage and test suite.
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(pathToFileURL(path.join(dir, 'report.html')).href, { waitUntil: 'load' });
      expect(await page.locator('svg#timeline').isVisible()).toBe(true);
      const bars = page.locator('svg#timeline rect.bar');
      expect(await bars.count()).toBe(gate.stages.length + tests.suites.length);
      for (let i = 0; i < (await bars.count()); i++) expect((await bars.nth(i).boundingBox())?.width ?? 0).toBeGreaterThan(0);
      await page.screenshot({ path: path.join(ARTIFACTS, 'verify-report.png'), fullPage: true });
    } finally {
      await browser.close();
    }

    // The secret reached the logs and the rendered model, and no file of the bundle holds it.
    const backendLog = await readFile(path.join(dir, 'logs', 'backend.log'), 'utf8');
    expect(backendLog).toContain('connecting with token [REDACTED:');
    for (const f of await filesUnder(dir)) {
      const text = (await readFile(f)).toString('latin1');
      expect(text.includes(secret), `${f} contains the secret`).toBe(false);
    }
    await expectSandboxClean(sb);
  }, 600_000);

  it('fails when one E2E test fails, naming that test in summary.md, and leaves nothing', async () => {
    sb = await makeSandbox((repo) => edit(path.join(repo, 'compose.yaml'), '      BASE_URL: http://backend:8000\n', '      BASE_URL: http://backend:8000\n      E2E_MIN_WORKERS: "3"\n      E2E_WORKERS_TIMEOUT: "2"\n'));
    const r = await sb.run(sb.repo, ['verify', '--json']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.json.passed).toBe(false);
    expect(r.json.gate.passed).toBe(true);
    expect(r.json.tests.passed).toBe(false);
    expect(r.json.problems.map((p: any) => p.code)).toEqual(['SANDSTACK_TESTS_FAILED']);
    const e2e = r.json.tests.suites.find((s: any) => s.kind === 'e2e');
    expect(e2e.junit.failures.map((f: any) => f.name)).toEqual(['test_workers_registered']);
    const summary = await readFile(r.json.evidence.summary, 'utf8');
    expect(summary).toContain('FAILED');
    expect(summary).toContain('test_workers_registered');
    expect(summary).toContain('expected at least 3 workers');
    await expectSandboxClean(sb);
  }, 600_000);
});

describe('test, evidence and escalate on a running instance', () => {
  it('runs the declared tests, writes the bundle, and attaches it to an escalation', async () => {
    sb = await makeSandbox();
    const up = await sb.run(sb.repo, ['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const t = await sb.run(sb.repo, ['test', '--json']);
    expect(t.exitCode, t.stderr).toBe(0);
    expect(t.json.suites.map((s: any) => [s.kind, s.name, s.where, s.passed])).toEqual([
      ['unit', 'backend-unit', 'backend', true],
      ['e2e', 'e2e', 'e2e', true],
    ]);
    // The one-off E2E container is gone.
    const oneoff = await docker.listContainers({ all: true, filters: { label: ['com.docker.compose.oneoff=True', 'dev.sandstack.instance=demo'] } });
    expect(oneoff).toEqual([]);

    const ev = await sb.run(sb.repo, ['evidence', '--json']);
    expect(ev.exitCode, ev.stderr).toBe(0);
    expect(ev.json.dir).toBe(t.json.dir);
    expect(ev.json.manifest.result.passed).toBe(true);
    const html = await readFile(ev.json.report, 'utf8');
    expect(html).toContain('<svg id="timeline"');

    const incomplete = await sb.run(sb.repo, ['escalate', '--blocked', 'x', '--json']);
    expect(incomplete.exitCode).toBe(2);
    expect(incomplete.json.error.message).toContain('whyItMatters');

    const esc = await sb.run(sb.repo, [
      'escalate', '--json',
      '--blocked', 'The backtest worker needs the 40 GB market dataset mounted from the host',
      '--why', 'Without it the E2E backtest path cannot run in the sandbox',
      '--option', 'mount /mnt/market read-only', '--option', 'generate a 10 MB synthetic fixture',
      '--recommend', 'generate the fixture', '--need', 'approval to drop the host mount',
    ]);
    expect(esc.exitCode, esc.stderr).toBe(0);
    expect(esc.json.packet.attachedEvidence.dir).toBe(t.json.dir);
    const md = await readFile(esc.json.markdown, 'utf8');
    for (const heading of ['What is unclear or blocked', 'Why it matters', 'Options considered', 'Recommended path', 'Decision or input needed', 'Evidence gathered so far']) {
      expect(md).toContain(heading);
    }
    expect(md).toContain('2. generate a 10 MB synthetic fixture');
    expect(md).toContain(path.join(t.json.dir, 'summary.md'));

    expect((await sb.run(sb.repo, ['destroy', '--json'])).exitCode).toBe(0);
    await expectSandboxClean(sb);
  }, 600_000);

  it('refuses to run when no tests are declared (exit 2)', async () => {
    sb = await makeSandbox(async (repo) => {
      const file = path.join(repo, 'sandstack.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace(/tests:\n(  .*\n|    .*\n)+/, ''));
    });
    const r = await sb.run(sb.repo, ['test', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_NO_TESTS');
  });
});
