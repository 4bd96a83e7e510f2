/**
 * `sandstack lint` on explicit and non-default compose files, and the paths it reports (runs the
 * real Compose CLI's `config` for the merged model; no engine needed).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createContext } from '../../src/lifecycle/context.js';
import { lint } from '../../src/lifecycle/workspace.js';
import { lintTextLines } from '../../src/policy/check.js';
import { toSarif } from '../../src/policy/sarif.js';

let base: string;
let repo: string;
let home: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'sandstack-lintpaths-'));
  repo = path.join(base, 'repo');
  home = path.join(base, 'home');
  await mkdir(repo);
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: repo });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.COMPOSE_FILE;
  delete e.SANDSTACK_INSTANCE;
  return e;
}
const ctxAt = (cwd: string) => createContext({ cwd, home, env: env() });
const put = async (rel: string, text: string) => {
  await mkdir(path.dirname(path.join(repo, rel)), { recursive: true });
  await writeFile(path.join(repo, rel), text);
};

const SANDBOX = 'services:\n  app:\n    image: busybox:1.36\n    container_name: app\n    ports: ["8000:8000"]\n';
const DEV = 'deploy/environments/dev/docker-compose.dev.yml';
const DEV_TEXT = 'services:\n  api:\n    image: busybox:1.36\n    env_file: ./dev.env\n    privileged: true\n';

describe('lint <file> of a non-default file', () => {
  it('lints docker-compose.sandbox.yml alone at the root (no default-named file)', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    const r = await lint(ctxAt(repo), { files: ['docker-compose.sandbox.yml'] });
    expect(r.mergedError).toBeUndefined();
    expect(r.findings.map((f) => f.ruleId).sort()).toEqual(['SS001', 'SS002', 'SS003']);
    expect(r.findings.every((f) => f.file === 'docker-compose.sandbox.yml')).toBe(true);
    expect(r.files).toEqual(['docker-compose.sandbox.yml']);
  });

  it('lint --fix <file> rewrites the file and lints it (no "No compose file" error)', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    const r = await lint(ctxAt(repo), { files: ['docker-compose.sandbox.yml'], fix: true });
    expect(r.fixes?.[0]).toMatchObject({ file: 'docker-compose.sandbox.yml', changed: true });
    expect(await readFile(path.join(repo, 'docker-compose.sandbox.yml'), 'utf8')).not.toContain('container_name');
    expect(r.summary.errors).toBe(0);
    expect(r.mergedError).toBeUndefined();
  });

  it('checks the merged model of the given files together', async () => {
    await put('base.yml', 'services:\n  app:\n    image: busybox:1.36\n');
    // Valid only merged with base.yml (no image of its own).
    await put('more.yml', 'services:\n  app:\n    cap_add: [SYS_ADMIN]\n');
    const r = await lint(ctxAt(repo), { files: ['base.yml', 'more.yml'] });
    expect(r.mergedError).toBeUndefined();
    expect(r.findings.find((f) => f.ruleId === 'SS006')).toMatchObject({ file: 'more.yml' });
  });

  it('reports file paths relative to the current directory, not to the compose file folder', async () => {
    await put(DEV, DEV_TEXT);
    await put('deploy/environments/dev/dev.env', 'MODE=dev\n');
    const r = await lint(ctxAt(repo), { files: [DEV] });
    expect(r.mergedError).toBeUndefined();
    expect(r.findings.find((f) => f.ruleId === 'SS005')?.file).toBe(DEV);
    expect(r.root).toBe(repo);
    // From a subfolder, the same file is ../-relative.
    const sub = path.join(repo, 'deploy');
    const r2 = await lint(ctxAt(sub), { files: ['environments/dev/docker-compose.dev.yml'] });
    expect(r2.findings.find((f) => f.ruleId === 'SS005')?.file).toBe('environments/dev/docker-compose.dev.yml');
    expect(r2.root).toBe(repo);
  });
});

describe('lint of a project whose sandstack.yaml names the files', () => {
  it('deploy/environments/dev/docker-compose.dev.yml from sandstack.yaml at the root: relative paths resolve from its folder', async () => {
    await put(DEV, DEV_TEXT);
    await put('deploy/environments/dev/dev.env', 'MODE=dev\n');
    await put('sandstack.yaml', `version: 1\ncompose:\n  files: [${DEV}]\n`);
    const r = await lint(ctxAt(repo));
    expect(r.mergedError).toBeUndefined();
    expect(r.files).toEqual([DEV]);
    expect(r.findings.find((f) => f.ruleId === 'SS005')?.file).toBe(DEV);
  });

  it('honours COMPOSE_FILE in .env', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    await put('.env', 'COMPOSE_FILE=docker-compose.sandbox.yml\n');
    const r = await lint(ctxAt(repo));
    expect(r.files).toEqual(['docker-compose.sandbox.yml']);
    expect(r.mergedError).toBeUndefined();
  });

  it('compose.yaml + compose.override.yaml: both linted, paths relative to the current directory', async () => {
    await put('compose.yaml', 'services:\n  app:\n    image: busybox:1.36\n');
    await put('compose.override.yaml', 'services:\n  app:\n    privileged: true\n');
    const r = await lint(ctxAt(repo));
    expect(r.files).toEqual(['compose.yaml', 'compose.override.yaml']);
    expect(r.findings.find((f) => f.ruleId === 'SS005')?.file).toBe('compose.override.yaml');
  });
});

describe('lint output', () => {
  it('the text shows why the merged model was not checked', async () => {
    await put('docker-compose.sandbox.yml', 'services:\n  app:\n    image: busybox:1.36\n    depends_on: [missing]\n');
    const r = await lint(ctxAt(repo), { files: ['docker-compose.sandbox.yml'] });
    expect(r.mergedError).toBeDefined();
    const text = lintTextLines(r).join('\n');
    const line = text.split('\n').findIndex((l) => l.startsWith('merged model not checked:'));
    expect(line).toBeGreaterThanOrEqual(0);
    // The reason (Compose's own words) follows, not just "...is invalid:".
    expect(text.split('\n').slice(line).join('\n')).toMatch(/missing/);
  });

  it('SARIF: URIs relative to the repository root, with %SRCROOT% as base', async () => {
    await put(DEV, DEV_TEXT);
    await put('deploy/environments/dev/dev.env', 'MODE=dev\n');
    const sub = path.join(repo, 'deploy');
    const r = await lint(ctxAt(sub), { files: ['environments/dev/docker-compose.dev.yml'] });
    const log = toSarif(r.findings, '0.1.0', { baseDir: r.root, cwd: sub, mergedModelFile: r.files[0] }) as any;
    const run = log.runs[0];
    expect(run.originalUriBaseIds).toEqual({ '%SRCROOT%': { uri: `${pathToFileURL(repo).href}/` } });
    for (const res of run.results) {
      const loc = res.locations[0].physicalLocation.artifactLocation;
      expect(loc).toEqual({ uri: DEV, uriBaseId: '%SRCROOT%' });
    }
  });
});

describe('lint of a project with sandstack.yaml: repository mounts, declared datasets, .env', () => {
  it('accepts ../ mounts inside the repository and a declared dataset, and reports a secret in .env', async () => {
    await mkdir(path.join(repo, 'data'), { recursive: true });
    await put('app/compose.yaml', 'services:\n  api:\n    image: busybox:1.36\n    volumes:\n      - ../data:/data:ro\n      - /mnt/market-data:/datasets:ro\n');
    await put('app/.env', 'API_TOKEN=abcd1234efgh5678\n');
    await put('app/sandstack.yaml', 'data:\n  shared:\n    - name: market\n      host: /mnt/market-data\n      services: [api]\n      target: /datasets\n');
    const r = await lint(ctxAt(path.join(repo, 'app')), {});
    const ids = r.findings.map((f) => `${f.ruleId} ${f.file}`);
    expect(ids.filter((i) => i.startsWith('SS008') || i.startsWith('SS015') || i.startsWith('SS014'))).toEqual([]);
    expect(ids).toContain('SS017 .env');
  });
});
