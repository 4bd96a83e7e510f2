import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aggregateDiskUsage, budgetStatus, dirSize, instanceIdsOf, parseDockerDf, sumImages, type DirDisk } from '../../src/lifecycle/df.js';

const HOME = '/var/lib/ss-home';
const H = 'aaaaaaaaaaaa'; // this home's label value
const OTHER = 'bbbbbbbbbbbb';
const labels = (instance: string | undefined, home: string | undefined, extra: Record<string, string> = {}) => ({
  ...(instance ? { 'dev.sandstack.instance': instance, 'dev.sandstack.managed': 'true', 'dev.sandstack.kind': 'local', 'dev.sandstack.worktree': `/src/${instance}` } : {}),
  ...(home ? { 'dev.sandstack.home': home } : {}),
  'com.docker.compose.project': instance ?? 'x',
  ...extra,
});

const container = (id: string, instance: string | undefined, home: string | undefined, sizeRw?: number) => ({
  Id: id,
  Names: [`/${instance}-svc-${id}`],
  Image: `${instance}-svc`,
  ImageID: `sha256:img-${id}`,
  Command: '/bin/sh -c run',
  Created: 1796009963,
  Ports: [],
  ...(sizeRw === undefined ? {} : { SizeRw: sizeRw }),
  SizeRootFs: 999_999_999,
  Labels: labels(instance, home),
  State: 'running',
  Status: 'Up 2 minutes',
  HostConfig: { NetworkMode: 'bridge' },
  NetworkSettings: { Networks: {} },
  Mounts: [],
});

const volume = (name: string, instance: string | undefined, home: string | undefined, size: number | null) => ({
  CreatedAt: '2026-11-30T10:00:00Z',
  Driver: 'local',
  Labels: labels(instance, home),
  Mountpoint: `/var/lib/docker/volumes/${name}/_data`,
  Name: name,
  Options: null,
  Scope: 'local',
  ...(size === null ? {} : { UsageData: { RefCount: 1, Size: size } }),
});

const image = (id: string, tags: string[] | null, lbls: Record<string, string> | null, size: number, sharedSize = -1) => ({
  Containers: 1,
  Created: 1796009963,
  Id: `sha256:${id}`,
  Labels: lbls,
  ParentId: '',
  RepoDigests: null,
  RepoTags: tags,
  SharedSize: sharedSize,
  Size: size,
});

/** Shaped like Docker 26's GET /system/df answer. */
const DF = {
  LayersSize: 5_000_000_000,
  Images: [
    image('a1', ['alpha-backend:latest', 'alpha-worker:latest'], labels('alpha', H), 300, 100),
    image('a1', ['alpha-backend:latest', 'alpha-worker:latest'], labels('alpha', H), 300, 100), // listed twice
    image('a2', ['<none>:<none>'], labels('alpha', H), 50, 40), // a superseded build
    image('a3', null, labels('alpha', H), 20), // untagged, shared size not computed
    image('b1', ['beta-backend:latest'], labels('beta', H), 400, 100),
    image('g1', ['gone-backend:latest'], labels('gone', H), 70, 10), // its instance no longer exists
    image('n1', ['tool:latest'], labels(undefined, H), 5, 0), // home label, no instance label
    image('f1', ['foreign:latest'], labels('alpha', OTHER), 1000, 0), // another state home
    image('o1', ['sandstack-prometheus:2.42.0'], { 'dev.sandstack.obs': 'sandstack-obs-1', 'dev.sandstack.managed': 'true' }, 530, 199),
    image('d1', ['debian:bookworm-slim'], null, 75, 75),
  ],
  Containers: [
    container('c1', 'alpha', H, 1000),
    container('c2', 'alpha', H, 24),
    container('c2', 'alpha', H, 24), // listed twice
    container('c3', 'alpha', H), // SizeRw omitted: 0
    container('c4', 'beta', H, 5),
    container('c5', 'alpha', OTHER, 777), // another state home
    container('c6', 'legacy', undefined, 888), // no home label
    container('c7', undefined, undefined, 1), // not sandstack's
  ],
  Volumes: [
    volume('alpha_db', 'alpha', H, 40_000),
    volume('alpha_cache', 'alpha', H, -1), // the engine could not tell
    volume('alpha_cache', 'alpha', H, -1), // listed twice
    volume('gamma_db', 'gamma', H, 123), // an instance with only a volume left
    volume('beta_plugin', 'beta', H, null), // no UsageData
    volume('other_db', 'delta', OTHER, 55),
    volume('anon', undefined, undefined, 9),
  ],
  BuildCache: [
    { ID: 'r1', Parents: null, Type: 'regular', Description: 'mount / from exec /bin/sh -c apt-get install', InUse: false, Shared: true, Size: 1000, CreatedAt: '2026-11-30T04:03:26Z', LastUsedAt: '2026-11-30T09:28:12Z', UsageCount: 3 },
    { ID: 'r2', Parents: ['r1'], Type: 'regular', Description: 'pip install', InUse: false, Shared: false, Size: 300, CreatedAt: '2026-11-30T04:03:26Z', LastUsedAt: null, UsageCount: 1 },
    { ID: 'r3', Parents: null, Type: 'source.local', Description: 'local source for context', InUse: true, Shared: false, Size: 50, CreatedAt: '2026-11-30T04:03:26Z', LastUsedAt: null, UsageCount: 21 },
    { ID: 'r4', Parents: null, Type: 'internal', Description: 'exec cache', InUse: false, Shared: false, Size: 7, CreatedAt: '2026-11-30T04:03:26Z', LastUsedAt: null, UsageCount: 1 },
  ],
};

function stateDir(id: string, size: number): DirDisk {
  return { path: `${HOME}/instances/${id}`, exists: true, size, files: 3, unreadable: 0 };
}

function aggregate(registered: string[] = ['alpha', 'beta', 'idle']) {
  return aggregateDiskUsage({
    df: parseDockerDf(DF),
    home: HOME,
    homeLabel: H,
    registered,
    stateDirs: new Map([
      ['alpha', stateDir('alpha', 2_000)],
      ['beta', stateDir('beta', 10)],
      ['idle', stateDir('idle', 1)],
    ]),
  });
}

describe('aggregateDiskUsage', () => {
  it('lists the registered instances and those found by labels of this home only', () => {
    expect(instanceIdsOf(parseDockerDf(DF), H, ['idle', 'beta'])).toEqual(['alpha', 'beta', 'gamma', 'idle']);
    const r = aggregate();
    expect(r.instances.map((i) => [i.id, i.registered])).toEqual([
      ['alpha', true],
      ['beta', true],
      ['gamma', false],
      ['idle', true],
    ]);
  });

  it('sums writable layers, volumes and images per instance, each resource once', () => {
    const alpha = aggregate().instances.find((i) => i.id === 'alpha')!;
    expect(alpha.containers).toEqual({ count: 3, size: 1024 });
    expect(alpha.volumes).toEqual({ count: 2, size: 40_000, unknown: ['alpha_cache'] });
    expect(alpha.images.count).toBe(3);
    expect(alpha.images.size).toBe(370);
    expect(alpha.images.sharedSize).toBe(140); // a3's unknown (-1) shared size is not counted
    expect(alpha.images.uniqueSize).toBe(230); // 200 + 10 + 20 (a3 wholly its own)
    expect(alpha.images.disk).toBe(230 + 100); // the largest shared part once
    expect(alpha.images.untagged).toEqual({ count: 2, size: 70 });
    expect(alpha.images.list.map((i) => [i.id, i.tags, i.untagged, i.sharedSize])).toEqual([
      ['sha256:a1', ['alpha-backend:latest', 'alpha-worker:latest'], false, 100],
      ['sha256:a2', [], true, 40],
      ['sha256:a3', [], true, undefined],
    ]);
    expect(alpha.stateDir.size).toBe(2_000);
    expect(alpha.total).toBe(1024 + 40_000 + 330 + 2_000);
  });

  it('counts a volume without usage data as unknown, and instances with nothing as zero', () => {
    const r = aggregate();
    const beta = r.instances.find((i) => i.id === 'beta')!;
    expect(beta.volumes).toEqual({ count: 1, size: 0, unknown: ['beta_plugin'] });
    expect(beta.total).toBe(5 + 400 + 10); // 300 unique + 100 shared
    const gamma = r.instances.find((i) => i.id === 'gamma')!;
    expect(gamma.volumes).toEqual({ count: 1, size: 123, unknown: [] });
    expect(gamma.stateDir).toEqual({ path: `${HOME}/instances/gamma`, exists: false, size: 0, files: 0, unreadable: 0 });
    expect(r.instances.find((i) => i.id === 'idle')!.total).toBe(1);
    expect(r.notices.join('\n')).toContain('could not tell the size of 2 volume(s) (alpha_cache, beta_plugin');
  });

  it('puts home images without an instance, or of a gone instance, on the unattributed line', () => {
    const r = aggregate();
    expect(r.unattributed.instances).toEqual(['gone']);
    expect(r.unattributed.images.list.map((i) => [i.id, i.instance])).toEqual([
      ['sha256:g1', 'gone'],
      ['sha256:n1', undefined],
    ]);
    expect(r.unattributed.images.size).toBe(75);
    expect(r.unattributed.total).toBe(60 + 5 + 10); // unique 60 + 5, shared 10 once
    // Registered again, its images are its own.
    expect(aggregate(['alpha', 'beta', 'idle', 'gone']).instances.find((i) => i.id === 'gone')!.images.size).toBe(70);
  });

  it('counts a shared content-addressed image once, for the first instance whose containers use it; unused, it is unattributed', () => {
    const shared = image('s1', ['sandstack/demo-backend:abc'], { 'dev.sandstack.home': H, 'dev.sandstack.content': 'abc' }, 600, 0);
    const unused = image('s2', ['sandstack/demo-db:def'], { 'dev.sandstack.home': H, 'dev.sandstack.content': 'def' }, 90, 0);
    const users = [{ ...container('k1', 'beta', H, 1), ImageID: 'sha256:s1' }, { ...container('k2', 'alpha', H, 1), ImageID: 'sha256:s1' }];
    const r = aggregateDiskUsage({ df: parseDockerDf({ ...DF, Images: [...DF.Images, shared, unused], Containers: [...DF.Containers, ...users] }), home: HOME, homeLabel: H, registered: ['alpha', 'beta'] });
    const ids = (id: string) => r.instances.find((i) => i.id === id)!.images.list.map((i) => i.id);
    expect(ids('alpha')).toContain('sha256:s1');
    expect(ids('beta')).not.toContain('sha256:s1');
    expect(r.unattributed.images.list.map((i) => i.id)).toContain('sha256:s2');
    expect(r.unattributed.images.list.map((i) => i.id)).not.toContain('sha256:s1');
  });

  it('totals everything of this home and nothing else; the build cache is the engine-wide figure', () => {
    const r = aggregate();
    expect(r.total.containers).toEqual({ count: 4, size: 1029 });
    expect(r.total.volumes).toEqual({ count: 4, size: 40_123, unknown: 2 });
    // Home-wide, the shared layers count once for all images: unique 595 + the largest shared 100.
    expect(r.total.images).toEqual({ count: 6, size: 845, sharedSize: 250, uniqueSize: 595, disk: 695, untagged: { count: 2, size: 70 } });
    expect(r.total.stateDirs).toBe(2_011);
    expect(r.total.size).toBe(1029 + 40_123 + 695 + 2_011);
    // The rows count shared layers once per instance; the total once for the home.
    expect(r.total.size).toBeLessThanOrEqual(r.instances.reduce((n, i) => n + i.total, 0) + r.unattributed.total);
    expect(r.buildCache).toMatchObject({ scope: 'engine', size: 357, inUse: 50, reclaimable: 307, shared: 1000, records: 4, untaggedImages: { scope: 'home', count: 2, size: 70 } });
    expect(r.buildCache.note).toContain('carry no labels');
  });

  it('handles an engine with nothing (null lists)', () => {
    const r = aggregateDiskUsage({ df: parseDockerDf({ LayersSize: 0, Images: null, Containers: null, Volumes: null, BuildCache: null }), home: HOME, homeLabel: H, registered: [] });
    expect(r.instances).toEqual([]);
    expect(r.total.size).toBe(0);
    expect(r.buildCache).toMatchObject({ size: 0, reclaimable: 0, records: 0 });
    expect(r.total.snapshots).toEqual({ count: 0, size: 0 });
  });

  it('counts snapshots in the total', () => {
    const r = aggregateDiskUsage({ df: parseDockerDf({ LayersSize: 0, Images: null, Containers: null, Volumes: null, BuildCache: null }), home: HOME, homeLabel: H, registered: [], snapshots: { count: 2, size: 5_000 } });
    expect(r.total.snapshots).toEqual({ count: 2, size: 5_000 });
    expect(r.total.size).toBe(5_000);
  });

  it('rejects an answer of another shape', () => {
    expect(() => parseDockerDf({ Images: [{ Id: 1 }] })).toThrow(/unexpected shape/);
  });
});

describe('sumImages', () => {
  it('counts layers shared between images once, as the largest shared part', () => {
    // Four images of the demo stack on one base: three with no layer of their own, one with 315 MB.
    const MB = 1_000_000;
    const list = [
      { id: 'backend', tags: ['x-backend:latest'], size: 245 * MB, sharedSize: 245 * MB, untagged: false },
      { id: 'worker-a', tags: ['x-worker-a:latest'], size: 245 * MB, sharedSize: 245 * MB, untagged: false },
      { id: 'worker-b', tags: ['x-worker-b:latest'], size: 245 * MB, sharedSize: 245 * MB, untagged: false },
      { id: 'db', tags: ['x-db:latest'], size: 514 * MB, sharedSize: 199 * MB, untagged: false },
    ];
    const s = sumImages(list);
    expect(s.size).toBe(1249 * MB);
    expect(s.uniqueSize).toBe(315 * MB);
    expect(s.disk).toBe(560 * MB);
    expect(sumImages([])).toMatchObject({ count: 0, size: 0, disk: 0 });
  });
});

describe('budgetStatus', () => {
  const user = (disk?: number) => ({ config: disk === undefined ? {} : { budget: { disk } }, file: '/u/config.yaml', exists: true });
  it('says nothing without a budget', () => {
    expect(budgetStatus(user(), { total: { size: 5 } } as never)).toEqual({ budgetBytes: undefined, exceeded: false, file: '/u/config.yaml' });
  });
  it('compares the total with the budget and names it when exceeded', () => {
    const under = budgetStatus(user(1000), { total: { size: 250 } } as never);
    expect(under).toMatchObject({ budgetBytes: 1000, usedBytes: 250, exceeded: false, percent: 25 });
    expect(under.notice).toBeUndefined();
    const over = budgetStatus(user(1024), { total: { size: 3072 } } as never);
    expect(over).toMatchObject({ exceeded: true, percent: 300 });
    expect(over.notice).toContain('over the budget of 1 KB');
    expect(over.notice).toContain('2 KB over');
    expect(over.notice).toContain('budget.disk in /u/config.yaml');
  });
});

describe('dirSize', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('sums file sizes under a folder, hard links once, not following symlinks', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-df-'));
    await mkdir(path.join(dir, 'data', 'pg'), { recursive: true });
    await writeFile(path.join(dir, 'compose.rendered.yaml'), 'x'.repeat(100));
    await writeFile(path.join(dir, 'data', 'pg', 'base'), 'y'.repeat(1000));
    await link(path.join(dir, 'data', 'pg', 'base'), path.join(dir, 'data', 'hardlink'));
    await symlink('/usr', path.join(dir, 'data', 'usr-link'));
    const r = await dirSize(dir);
    expect(r.exists).toBe(true);
    expect(r.files).toBe(3); // two files and the symlink itself
    expect(r.size).toBe(100 + 1000 + '/usr'.length);
    expect(r.unreadable).toBe(0);
    expect(await dirSize(path.join(dir, 'missing'))).toEqual({ path: path.join(dir, 'missing'), exists: false, size: 0, files: 0, unreadable: 0 });
  });
});
