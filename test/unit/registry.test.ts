import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registryPath } from '../../src/state/paths.js';
import { readRegistrySnapshot, withRegistry, type InstanceRecord } from '../../src/state/registry.js';
import { otherHomes, recordsFromLabels } from '../../src/lifecycle/instance.js';
import { LABELS } from '../../src/identity/identity.js';

function record(id: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    worktree: `/work/${id}`,
    projectDir: `/work/${id}`,
    kind: 'local',
    createdAt: '2025-01-01T00:00:00.000Z',
    createdBy: 'up',
    leases: [],
    ...over,
  };
}

let home: string;
beforeEach(async () => {
  home = path.join(await mkdtemp(path.join(os.tmpdir(), 'sandstack-registry-')), 'home');
});
afterEach(async () => {
  await rm(path.dirname(home), { recursive: true, force: true });
});

async function readJson(): Promise<{ version: number; instances: Record<string, InstanceRecord> }> {
  return JSON.parse(await readFile(registryPath(home), 'utf8'));
}

describe('withRegistry', () => {
  it('creates the home dir and a registry file readable only by the owner', async () => {
    const tx = await withRegistry({ home }, (r) => {
      r.instances.a = record('a');
      return 'done';
    });
    expect(tx).toEqual({ result: 'done', notices: [] });
    const st = await stat(registryPath(home));
    expect(st.mode & 0o777).toBe(0o600);
    expect(await readJson()).toEqual({ version: 1, instances: { a: record('a') } });
  });

  it('does not write a file when nothing changed', async () => {
    await withRegistry({ home }, () => undefined);
    expect(await readdir(home)).not.toContain('registry.json');
  });

  it('starts empty and reads back what was written', async () => {
    await withRegistry({ home }, (r) => {
      expect(r).toEqual({ version: 1, instances: {} });
      r.instances.a = record('a', { leases: [{ service: 'web', containerPort: 80, protocol: 'tcp', hostPort: 20001, scheme: 'http' }] });
    });
    const snap = await readRegistrySnapshot({ home });
    expect(snap.result.instances.a?.leases[0]?.hostPort).toBe(20001);
    expect(snap.notices).toEqual([]);
  });

  it('serialises concurrent transactions with the lock', async () => {
    const N = 10;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        withRegistry({ home }, async (r) => {
          const n = Object.keys(r.instances).length;
          // Yield inside the transaction: without the lock, the others would read the same n.
          await new Promise((resolve) => setTimeout(resolve, 5));
          r.instances[`i${n}`] = record(`i${n}`, { branch: `writer-${i}` });
        }),
      ),
    );
    const reg = await readJson();
    expect(Object.keys(reg.instances).sort()).toEqual(Array.from({ length: N }, (_, i) => `i${i}`).sort());
    expect(new Set(Object.values(reg.instances).map((r) => r.branch)).size).toBe(N);
  });

  it('throws SANDSTACK_REGISTRY_LOCKED when the lock is not released in time', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const first = withRegistry({ home }, async () => {
      entered();
      await held;
    });
    await inside;
    await expect(withRegistry({ home, lockWaitMs: 200 }, () => undefined)).rejects.toMatchObject({ code: 'SANDSTACK_REGISTRY_LOCKED' });
    release();
    await first;
    // Released: the next transaction gets the lock.
    await expect(withRegistry({ home, lockWaitMs: 200 }, () => 'ok')).resolves.toMatchObject({ result: 'ok' });
  });

  it('releases the lock when the callback throws', async () => {
    await expect(
      withRegistry({ home }, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(withRegistry({ home, lockWaitMs: 200 }, () => 1)).resolves.toMatchObject({ result: 1 });
  });

  it('refuses to write an invalid registry', async () => {
    await expect(
      withRegistry({ home }, (r) => {
        (r.instances as Record<string, unknown>).bad = { id: 'bad' };
      }),
    ).rejects.toThrow();
    expect(await readdir(home)).not.toContain('registry.json');
  });

  it('moves a corrupt file aside and rebuilds it with reconcile', async () => {
    await withRegistry({ home }, () => undefined); // creates home
    await writeFile(registryPath(home), '{"version": 1, "instances": {');
    let calls = 0;
    const tx = await withRegistry(
      {
        home,
        reconcile: async () => {
          calls++;
          return [record('from-docker', { createdBy: 'reconciled' })];
        },
      },
      (r) => Object.keys(r.instances),
    );
    expect(calls).toBe(1);
    expect(tx.result).toEqual(['from-docker']);
    const files = await readdir(home);
    const aside = files.filter((f) => f.startsWith('registry.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(path.join(home, aside[0]!), 'utf8')).toBe('{"version": 1, "instances": {');
    expect(tx.notices.join('\n')).toContain('corrupt');
    expect(tx.notices.join('\n')).toContain(aside[0]);
    expect(tx.notices.join('\n')).toMatch(/Rebuilt 1 instance/);
    // The rebuilt registry was written.
    expect(Object.keys((await readJson()).instances)).toEqual(['from-docker']);
  });

  it('moves aside a file of the wrong shape too', async () => {
    await withRegistry({ home }, () => undefined);
    await writeFile(registryPath(home), JSON.stringify({ version: 2, instances: [] }));
    const tx = await withRegistry({ home }, (r) => r);
    expect(tx.result).toEqual({ version: 1, instances: {} });
    expect((await readdir(home)).some((f) => f.startsWith('registry.json.corrupt-'))).toBe(true);
    expect(tx.notices[0]).toMatch(/corrupt \(.*version/);
    expect(await readJson()).toEqual({ version: 1, instances: {} });
  });

  it('rebuilds a missing registry from reconcile and says so', async () => {
    const tx = await withRegistry({ home, reconcile: async () => [record('x'), record('y')] }, (r) => Object.keys(r.instances).sort());
    expect(tx.result).toEqual(['x', 'y']);
    expect(tx.notices).toHaveLength(1);
    expect(tx.notices[0]).toMatch(/missing; rebuilt 2 instance/);
    expect(tx.notices[0]).toContain('x, y');
    expect(Object.keys((await readJson()).instances).sort()).toEqual(['x', 'y']);
  });

  it('says nothing when the registry is missing and Docker has no instances', async () => {
    const tx = await withRegistry({ home, reconcile: async () => [] }, () => 0);
    expect(tx.notices).toEqual([]);
  });

  it('does not call reconcile when the file is valid', async () => {
    await withRegistry({ home }, (r) => {
      r.instances.a = record('a');
    });
    let called = false;
    const tx = await withRegistry({ home, reconcile: async () => ((called = true), []) }, (r) => Object.keys(r.instances));
    expect(called).toBe(false);
    expect(tx).toEqual({ result: ['a'], notices: [] });
  });
});

describe('rebuilding from Docker labels with several state homes on one engine', () => {
  it('adopts only instances of its own state home and names what it skipped', async () => {
    const tx = await withRegistry(
      { home, reconcile: async () => ({ records: [record('mine')], skipped: [{ id: 'theirs', reason: 'other-home' as const }, { id: 'old', reason: 'no-home-label' as const, worktree: '/w/old' }] }) },
      (r) => Object.keys(r.instances),
    );
    expect(tx.result).toEqual(['mine']);
    expect(tx.notices.join('\n')).toMatch(/rebuilt 1 instance\(s\) from Docker labels: mine/);
    expect(tx.notices.join('\n')).toMatch(/skipped 1 instance\(s\) of another state home: theirs/);
    expect(tx.notices.join('\n')).toMatch(/skipped 1 instance\(s\) created without a state-home label: old \(\/w\/old\)/);
    expect(tx.notices.join('\n')).toMatch(/sandstack destroy --instance/);
  });

  it('says what it skipped even when it adopted nothing', async () => {
    const tx = await withRegistry({ home, reconcile: async () => ({ records: [], skipped: [{ id: 'theirs', reason: 'other-home' as const }] }) }, () => 0);
    expect(tx.notices).toEqual([expect.stringMatching(/skipped 1 instance\(s\) of another state home: theirs/)]);
  });
});

describe('recordsFromLabels', () => {
  const labels = (id: string, h?: string, extra: Record<string, string> = {}) => ({
    [LABELS.instance]: id,
    [LABELS.worktree]: `/w/${id}`,
    [LABELS.kind]: 'sandbox',
    ...(h ? { [LABELS.home]: h } : {}),
    ...extra,
  });

  it('keeps instances labelled with this home, skips other homes and unlabelled ones', () => {
    const r = recordsFromLabels(
      {
        containers: [
          { id: 'c1', name: 'mine-app-1', labels: labels('mine', 'h1', { [LABELS.leases]: 'app:80/tcp=21000' }) },
          { id: 'c2', name: 'theirs-app-1', labels: labels('theirs', 'h2') },
          { id: 'c3', name: 'old-app-1', labels: labels('old') },
        ],
        volumes: [{ name: 'mine_data', labels: labels('mine', 'h1') }, { name: 'theirs_data', labels: labels('theirs', 'h2') }],
        networks: [],
      },
      'h1',
    );
    expect(r.records.map((x) => x.id)).toEqual(['mine']);
    expect(r.records[0]!.leases).toEqual([expect.objectContaining({ service: 'app', containerPort: 80, hostPort: 21000 })]);
    expect(r.records[0]!.kind).toBe('sandbox');
    expect(r.skipped).toEqual([
      { id: 'theirs', reason: 'other-home', worktree: '/w/theirs' },
      { id: 'old', reason: 'no-home-label', worktree: '/w/old' },
    ]);
  });
});

describe('recordsFromLabels: owner and ttl', () => {
  const c = (id: string, labels: Record<string, string>) => ({ id, name: id, labels: { [LABELS.instance]: 'x', [LABELS.home]: 'h1', [LABELS.worktree]: '/w/x', ...labels } });

  it('a throwaway keeps its owner from the label', () => {
    const r = recordsFromLabels({ containers: [c('c1', { [LABELS.owner]: '12@34@boot' })], volumes: [], networks: [] }, 'h1');
    expect(r.records[0]!.owner).toBe('12@34@boot');
    expect(r.records[0]!.ttlMs).toBeUndefined();
  });

  it('an instance created with a ttl keeps its ttl and is taken as handed over (no owner), whatever the order of its resources', () => {
    for (const order of [
      [c('c1', { [LABELS.owner]: '12@34@boot', [LABELS.ttl]: '3600000' }), c('c2', { [LABELS.owner]: '12@34@boot' })],
      [c('c2', { [LABELS.owner]: '12@34@boot' }), c('c1', { [LABELS.owner]: '12@34@boot', [LABELS.ttl]: '3600000' })],
    ]) {
      const r = recordsFromLabels({ containers: order, volumes: [], networks: [] }, 'h1');
      expect(r.records[0]!.ttlMs).toBe(3_600_000);
      expect(r.records[0]!.owner).toBeUndefined();
    }
  });

  it('ignores a ttl label that is not a positive whole number', () => {
    const r = recordsFromLabels({ containers: [c('c1', { [LABELS.ttl]: 'soon', [LABELS.owner]: '1@2@b' })], volumes: [], networks: [] }, 'h1');
    expect(r.records[0]!.ttlMs).toBeUndefined();
    expect(r.records[0]!.owner).toBe('1@2@b');
  });
});

describe('otherHomes', () => {
  it('names the other state homes labelled on an instance, ignoring unlabelled resources', () => {
    const r = (labels: Record<string, string>) => ({ id: 'x', name: 'x', labels });
    const found = { containers: [r({ [LABELS.home]: 'h2' }), r({})], volumes: [{ name: 'v', labels: { [LABELS.home]: 'h1' } }], networks: [r({ [LABELS.home]: 'h2' })] };
    expect(otherHomes(found, 'h1')).toEqual(['h2']);
    expect(otherHomes(found, 'h2')).toEqual(['h1']);
    expect(otherHomes({ containers: [r({})], volumes: [], networks: [] }, 'h1')).toEqual([]);
  });
});
