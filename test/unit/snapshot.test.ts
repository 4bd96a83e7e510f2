import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceMounts, type ComposeModel } from '../../src/compose/model.js';
import { listSnapshots, modelVolumes, readSnapshot, removeSnapshot, type SnapshotManifest } from '../../src/data/snapshot.js';
import { SandstackError } from '../../src/errors.js';

describe('serviceMounts', () => {
  it('reads long syntax (v2 config) and short syntax (v1 config)', () => {
    expect(
      serviceMounts({
        volumes: [
          { type: 'volume', source: 'pgdata', target: '/var/lib/postgresql/data' },
          { type: 'bind', source: '/srv/prices', target: '/data', read_only: true },
          { type: 'tmpfs', target: '/tmp' },
          'cache:/cache:ro',
          './conf:/etc/app:rw',
          '/anon',
        ],
      }),
    ).toEqual([
      { type: 'volume', source: 'pgdata', target: '/var/lib/postgresql/data', readOnly: false },
      { type: 'bind', source: '/srv/prices', target: '/data', readOnly: true },
      { type: 'tmpfs', target: '/tmp', readOnly: false },
      { type: 'volume', source: 'cache', target: '/cache', readOnly: true },
      { type: 'bind', source: './conf', target: '/etc/app', readOnly: false },
      { type: 'volume', target: '/anon', readOnly: false },
    ]);
    expect(serviceMounts({})).toEqual([]);
  });
});

describe('modelVolumes', () => {
  it('lists named volumes (not external) with their engine names and who mounts them where', () => {
    const model = {
      services: {
        db: { volumes: [{ type: 'volume', source: 'pgdata', target: '/var/lib/postgresql/data' }] },
        backup: { volumes: ['pgdata:/backup:ro'] },
        app: { volumes: [{ type: 'volume', source: 'shared', target: '/shared' }] },
      },
      volumes: { pgdata: { name: 'feat-a_pgdata', labels: { 'dev.sandstack.instance': 'feat-a' } }, shared: { external: true, name: 'shared' }, empty: null },
    } as unknown as ComposeModel;
    expect(modelVolumes(model, 'feat-a')).toEqual([
      { key: 'pgdata', name: 'feat-a_pgdata', labels: { 'dev.sandstack.instance': 'feat-a' }, mounts: [{ service: 'db', target: '/var/lib/postgresql/data' }, { service: 'backup', target: '/backup' }] },
      { key: 'empty', name: 'feat-a_empty', labels: {}, mounts: [] },
    ]);
  });
});

describe('readSnapshot and listSnapshots', () => {
  let home: string;
  const manifest = (over: Partial<SnapshotManifest> = {}): SnapshotManifest => ({
    version: 1,
    name: 'rows',
    createdAt: '2026-11-30T10:00:00.000Z',
    durationMs: 1200,
    source: { instance: 'feat-a', worktree: '/w/feat-a', projectDir: '/w/feat-a', commit: 'a'.repeat(40) },
    compose: { file: 'compose.yaml', services: ['db'] },
    volumes: [{ key: 'pgdata', file: 'volumes/pgdata.tar', bytes: 5, sha256: 'b'.repeat(64), mounts: [{ service: 'db', target: '/var/lib/postgresql/data' }] }],
    secrets: ['DB_PASSWORD'],
    stopped: ['db'],
    ...over,
  });
  async function write(name: string, m: unknown, files: Record<string, string> = { 'volumes/pgdata.tar': '12345', 'secrets/DB_PASSWORD': 'pw' }): Promise<string> {
    const dir = path.join(home, 'snapshots', name);
    for (const [f, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
      await writeFile(path.join(dir, f), text);
    }
    await writeFile(path.join(dir, 'manifest.json'), typeof m === 'string' ? m : JSON.stringify(m));
    return dir;
  }
  const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: SandstackError) => `${e.code}: ${e.message}`);

  beforeEach(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'sandstack-snap-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('accepts a complete snapshot', async () => {
    await write('rows', manifest());
    const r = await readSnapshot(home, 'rows');
    expect(r.manifest.volumes[0]!.key).toBe('pgdata');
  });

  it('names what is wrong: missing, not JSON, invalid manifest, missing or truncated archive, missing secret, bad name', async () => {
    expect(await code(readSnapshot(home, 'nope'))).toMatch(/^SANDSTACK_SNAPSHOT_NOT_FOUND: There is no snapshot "nope"/);
    await write('notjson', '{');
    expect(await code(readSnapshot(home, 'notjson'))).toMatch(/^SANDSTACK_SNAPSHOT_INVALID: .*manifest.json is missing or not JSON/);
    await write('badmanifest', { ...manifest(), version: 2 });
    expect(await code(readSnapshot(home, 'badmanifest'))).toMatch(/^SANDSTACK_SNAPSHOT_INVALID: .*manifest is not valid \(version/);
    await write('noarchive', manifest(), { 'secrets/DB_PASSWORD': 'pw' });
    expect(await code(readSnapshot(home, 'noarchive'))).toContain('volumes/pgdata.tar is missing');
    await write('truncated', manifest(), { 'volumes/pgdata.tar': '12', 'secrets/DB_PASSWORD': 'pw' });
    expect(await code(readSnapshot(home, 'truncated'))).toContain('has 2 bytes, the manifest says 5 (truncated or changed)');
    await write('nosecret', manifest(), { 'volumes/pgdata.tar': '12345' });
    expect(await code(readSnapshot(home, 'nosecret'))).toContain('the stored secret DB_PASSWORD is missing');
    expect(await code(readSnapshot(home, '../etc'))).toMatch(/^SANDSTACK_USAGE/);
  });

  it('lists snapshots newest first, unusable ones with their problem, half-written ones not at all; rm removes one', async () => {
    await write('old', manifest({ name: 'old', createdAt: '2026-01-01T00:00:00.000Z' }));
    await write('new', manifest({ name: 'new', createdAt: '2026-06-01T00:00:00.000Z' }));
    await write('broken', '{');
    await write('half.partial-123', manifest());
    const list = await listSnapshots(home);
    expect(list.map((x) => [x.name, x.bytes, x.problem === undefined])).toEqual([
      ['new', 5, true],
      ['old', 5, true],
      ['broken', 0, false],
    ]);
    const r = await removeSnapshot(home, 'old');
    expect(r.bytes).toBe(5);
    expect((await listSnapshots(home)).map((x) => x.name)).toEqual(['new', 'broken']);
    expect(await code(removeSnapshot(home, 'old'))).toMatch(/^SANDSTACK_SNAPSHOT_NOT_FOUND/);
  });
});
