import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile, readlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderIsolated, type SharedDataMount } from '../../src/compose/render.js';
import type { ComposeModel } from '../../src/compose/model.js';
import { parseConfig } from '../../src/config/load.js';
import { assertDataPathsExist, dataRootTemplate, declaredDatasets } from '../../src/data/shared.js';
import { countFiles, seedDataRoot, seedLine } from '../../src/data/root.js';
import { SandstackError } from '../../src/errors.js';
import { hostMountRule } from '../../src/policy/rules.js';
import type { InstanceIdentity } from '../../src/identity/identity.js';

const identity: InstanceIdentity = { id: 'feat-a', worktree: '/home/dev/shop-feat-a', kind: 'sandbox' };
const PRICES: SharedDataMount = { name: 'prices', host: '/mnt/datasets/prices', services: ['backend', 'worker'], target: '/datasets/prices', mode: 'ro' };

function render(model: ComposeModel, sharedData: SharedDataMount[]) {
  return renderIsolated({ model, identity, leases: [], allowExternal: { volumes: [], networks: [] }, sharedData });
}

function thrown(fn: () => unknown): SandstackError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    return e as SandstackError;
  }
  throw new Error('expected a SandstackError');
}

async function thrownAsync(p: Promise<unknown>): Promise<SandstackError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    return e as SandstackError;
  }
  throw new Error('expected a SandstackError');
}

describe('renderIsolated: data.shared', () => {
  it('adds each dataset as a long-syntax bind mount to each of its services, read-only unless rw, and reports it', () => {
    const model: ComposeModel = {
      services: {
        backend: { image: 'b', volumes: [{ type: 'volume', source: 'cache', target: '/cache' }] } as never,
        worker: { image: 'w' },
        db: { image: 'd' },
      },
      volumes: { cache: {} },
    };
    const models: SharedDataMount = { name: 'models', host: '/srv/models', services: ['worker'], target: '/models/', mode: 'rw' };
    const { model: out, report } = render(model, [PRICES, models]);
    const vols = (s: string) => (out.services[s] as { volumes?: unknown[] }).volumes;
    expect(vols('backend')).toEqual([
      { type: 'volume', source: 'cache', target: '/cache' },
      { type: 'bind', source: '/mnt/datasets/prices', target: '/datasets/prices', read_only: true },
    ]);
    expect(vols('worker')).toEqual([
      { type: 'bind', source: '/mnt/datasets/prices', target: '/datasets/prices', read_only: true },
      { type: 'bind', source: '/srv/models', target: '/models' },
    ]);
    expect(vols('db')).toBeUndefined();
    expect(report.sharedData).toEqual([
      { dataset: 'prices', service: 'backend', source: '/mnt/datasets/prices', target: '/datasets/prices', readOnly: true, action: 'added' },
      { dataset: 'prices', service: 'worker', source: '/mnt/datasets/prices', target: '/datasets/prices', readOnly: true, action: 'added' },
      { dataset: 'models', service: 'worker', source: '/srv/models', target: '/models', readOnly: false, action: 'added' },
    ]);
    // The input model is not changed.
    expect((model.services.worker as { volumes?: unknown }).volumes).toBeUndefined();
  });

  it('keeps a mount of the same host path at the same target, and makes it read-only when the dataset is ro', () => {
    const model: ComposeModel = {
      services: {
        backend: { image: 'b', volumes: [{ type: 'bind', source: '/mnt/datasets/prices/', target: '/datasets/prices', bind: { create_host_path: true } }] } as never,
        worker: { image: 'w', volumes: [{ type: 'bind', source: '/mnt/datasets/prices', target: '/datasets/prices', read_only: true }] } as never,
      },
    };
    const { model: out, report } = render(model, [PRICES]);
    expect((out.services.backend as { volumes: unknown[] }).volumes).toEqual([
      { type: 'bind', source: '/mnt/datasets/prices/', target: '/datasets/prices', bind: { create_host_path: true }, read_only: true },
    ]);
    expect((out.services.worker as { volumes: unknown[] }).volumes).toHaveLength(1);
    expect(report.sharedData.map((d) => [d.service, d.action, d.readOnly])).toEqual([
      ['backend', 'made-read-only', true],
      ['worker', 'present', true],
    ]);
  });

  it("handles Compose v1's short syntax: made read-only in place, added as short syntax for format 2.x", () => {
    const model: ComposeModel = {
      version: '2.4',
      services: {
        backend: { image: 'b', volumes: ['/mnt/datasets/prices:/datasets/prices:rw', 'pgdata:/var/lib/pg:rw'] } as never,
        worker: { image: 'w' },
      },
    };
    const { model: out, report } = render(model, [PRICES]);
    expect((out.services.backend as { volumes: unknown[] }).volumes).toEqual(['/mnt/datasets/prices:/datasets/prices:ro', 'pgdata:/var/lib/pg:rw']);
    expect((out.services.worker as { volumes: unknown[] }).volumes).toEqual(['/mnt/datasets/prices:/datasets/prices:ro']);
    expect(report.sharedData.map((d) => d.action)).toEqual(['made-read-only', 'added']);
  });

  it('refuses another mount at the dataset target, and an unknown service', () => {
    const volumeThere: ComposeModel = { services: { backend: { image: 'b', volumes: [{ type: 'volume', source: 'x', target: '/datasets/prices' }] } as never, worker: { image: 'w' } } };
    const e = thrown(() => render(volumeThere, [PRICES]));
    expect(e.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(e.message).toBe('Service backend mounts the volume x at /datasets/prices, where data.shared puts the dataset prices (/mnt/datasets/prices).');
    const otherHost: ComposeModel = { services: { backend: { image: 'b', volumes: ['/srv/other:/datasets/prices:ro'] } as never, worker: { image: 'w' } } };
    expect(thrown(() => render(otherHost, [PRICES])).message).toContain('mounts the host path /srv/other at /datasets/prices');
    const unknown = thrown(() => render({ services: { backend: { image: 'b' } } }, [PRICES]));
    expect(unknown.code).toBe('SANDSTACK_UNKNOWN_SERVICE');
    expect(unknown.message).toContain('gives the dataset prices to service "worker"');
  });

  it('adds nothing without datasets', () => {
    const { model: out, report } = render({ services: { backend: { image: 'b' } } }, []);
    expect((out.services.backend as { volumes?: unknown }).volumes).toBeUndefined();
    expect(report.sharedData).toEqual([]);
  });
});

describe('data paths', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-data-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves data.shared hosts and data.root.template against the folder of sandstack.yaml', () => {
    const config = parseConfig('data:\n  shared:\n    - { name: p, host: ../prices, services: [b], target: /p/ }\n  root:\n    template: seed/data\n', '/w/repo/sandstack.yaml');
    expect(declaredDatasets(config, '/w/repo')).toEqual([{ name: 'p', host: '/w/prices', services: ['b'], target: '/p', mode: 'ro' }]);
    expect(dataRootTemplate(config, '/w/repo')).toBe('/w/repo/seed/data');
    expect(dataRootTemplate(parseConfig('', '/w/repo/sandstack.yaml'), '/w/repo')).toBeUndefined();
  });

  it('a missing dataset host or template is a config error naming it; existing ones pass', async () => {
    await mkdir(path.join(dir, 'prices'));
    await writeFile(path.join(dir, 'file.csv'), 'x');
    const ok = [
      { name: 'p', host: path.join(dir, 'prices'), services: ['b'], target: '/p', mode: 'ro' as const },
      { name: 'f', host: path.join(dir, 'file.csv'), services: ['b'], target: '/f.csv', mode: 'ro' as const },
    ];
    await expect(assertDataPathsExist(ok, path.join(dir, 'prices'), '/w/sandstack.yaml')).resolves.toBeUndefined();
    const missing = await thrownAsync(assertDataPathsExist([...ok, { name: 'gone', host: path.join(dir, 'nope'), services: ['b'], target: '/g', mode: 'ro' }], undefined, '/w/sandstack.yaml'));
    expect(missing.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(missing.message).toBe(`The shared dataset gone in /w/sandstack.yaml names the host path ${path.join(dir, 'nope')}, which does not exist.`);
    expect(missing.details).toEqual({ dataset: 'gone', host: path.join(dir, 'nope') });
    const template = await thrownAsync(assertDataPathsExist(ok, path.join(dir, 'no-template'), '/w/sandstack.yaml'));
    expect(template.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(template.message).toBe(`data.root.template in /w/sandstack.yaml names ${path.join(dir, 'no-template')}, which does not exist.`);
    const notDir = await thrownAsync(assertDataPathsExist([], path.join(dir, 'file.csv')));
    expect(notDir.message).toContain('is not a folder');
  });

  it('schema: data.root needs a template without ~ or ${VAR}; unknown keys are errors', () => {
    expect(parseConfig('data:\n  root: { template: ./t }\n', '/w/sandstack.yaml').data.root).toEqual({ template: './t' });
    expect(() => parseConfig('data:\n  root: { template: ~/t }\n', '/w/sandstack.yaml')).toThrow(/data\.root\.template/);
    expect(() => parseConfig('data:\n  root: { template: "${T}" }\n', '/w/sandstack.yaml')).toThrow(/data\.root\.template/);
    expect(() => parseConfig('data:\n  root: {}\n', '/w/sandstack.yaml')).toThrow(/data\.root\.template/);
    expect(() => parseConfig('data:\n  root: { template: t, copy: true }\n', '/w/sandstack.yaml')).toThrow(/copy/);
  });
});

describe('seedDataRoot', () => {
  let dir: string;
  let template: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-seed-'));
    template = path.join(dir, 'template');
    await mkdir(path.join(template, 'db', 'pg'), { recursive: true });
    await writeFile(path.join(template, 'README'), 'hello\n');
    await writeFile(path.join(template, 'db', 'pg', 'rows.bin'), Buffer.alloc(300_000, 7));
    await writeFile(path.join(template, 'run.sh'), '#!/bin/sh\n');
    await chmod(path.join(template, 'run.sh'), 0o750);
    await chmod(path.join(template, 'db', 'pg'), 0o700);
    await symlink('db/pg/rows.bin', path.join(template, 'rows'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the template into a new data root (files, modes, relative links kept), once', async () => {
    const root = path.join(dir, 'instances', 'a', 'data');
    const r = await seedDataRoot(template, root);
    expect(r).toMatchObject({ template, dataRoot: root, files: 3, bytes: 300_000 + 6 + 10 });
    expect(['reflink', 'copy']).toContain(r!.method);
    expect((await readdir(root)).sort()).toEqual(['README', 'db', 'rows', 'run.sh']);
    expect(await readFile(path.join(root, 'README'), 'utf8')).toBe('hello\n');
    expect((await stat(path.join(root, 'run.sh'))).mode & 0o777).toBe(0o750);
    expect((await stat(path.join(root, 'db', 'pg'))).mode & 0o777).toBe(0o700);
    expect(await readlink(path.join(root, 'rows'))).toBe('db/pg/rows.bin');
    expect(await countFiles(root)).toEqual({ files: 3, bytes: 300_016 });
    // No staging folder is left beside it.
    expect(await readdir(path.dirname(root))).toEqual(['data']);
    // Written files are the instance's own: the template does not change.
    await writeFile(path.join(root, 'README'), 'changed\n');
    expect(await readFile(path.join(template, 'README'), 'utf8')).toBe('hello\n');
    // Seeded once: an existing data root is left as it is.
    expect(await seedDataRoot(template, root)).toBeUndefined();
    expect(await readFile(path.join(root, 'README'), 'utf8')).toBe('changed\n');
    expect(seedLine(r!, './template')).toMatch(/^data root seeded from \.\/template \(3 files, 0\.3 MB, (reflink|copy)\)$/);
  });

  it('seeds an empty template as an empty data root', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const root = path.join(dir, 'instances', 'b', 'data');
    const r = await seedDataRoot(empty, root);
    expect(r).toMatchObject({ files: 0, bytes: 0, method: 'copy' });
    expect(await readdir(root)).toEqual([]);
  });
});

describe('hostMountRule (the isolation stage classifies host mounts as lint does)', () => {
  const opts = { projectDir: '/work/shop', homeDir: '/home/dev', repoRoot: '/work/shop', ownPaths: ['/home/dev/.local/share/sandstack'] };
  it('names SS004 for the Docker socket, SS014 for system paths and credentials, SS008 for broad paths, SS015 otherwise', () => {
    expect(hostMountRule('/var/run/docker.sock', true, opts)?.ruleId).toBe('SS004');
    expect(hostMountRule('/etc/passwd', true, opts)?.ruleId).toBe('SS014');
    expect(hostMountRule('/home/dev/.ssh', true, opts)?.ruleId).toBe('SS014');
    expect(hostMountRule('/etc/localtime', true, opts)?.ruleId).toBe('SS015');
    expect(hostMountRule('/mnt', true, opts)?.ruleId).toBe('SS008');
    expect(hostMountRule('/work', true, opts)?.ruleId).toBe('SS008');
    expect(hostMountRule('/tmp/scratch', false, opts)?.ruleId).toBe('SS015');
  });
  it('has no rule for paths inside the project or the state home', () => {
    expect(hostMountRule('/work/shop/data', false, opts)).toBeUndefined();
    expect(hostMountRule('/home/dev/.local/share/sandstack/instances/x/data', false, opts)).toBeUndefined();
  });
});
