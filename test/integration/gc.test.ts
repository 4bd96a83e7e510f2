/**
 * Crash safety and state that stays true, on the real engine: instances created with --ttl are owned
 * until started (a killed `up --ttl` is reaped; a finished one is handed over), `gc --worktree-gone`,
 * `gc --evidence-older-than`, `gc` and `gc --images` on labelled images, a destroy killed half-way
 * finishes when run again, and `ls` names (and mends) where the registry and Docker disagree.
 */
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { homeLabelValue } from '../../src/identity/identity.js';
import { registryPath } from '../../src/state/paths.js';
import { CLI, docker, expectSandboxClean, labelled, makeSandbox, until, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

type Item = { kind: string; id: string; removed: boolean; hint?: string; subject: string };
const items = (json: { items: Item[] }) => json.items.map((i) => [i.kind, i.id, i.removed]);

async function registry(home: string): Promise<{ instances: Record<string, { owner?: string; ttlMs?: number; services?: string[]; leases: { hostPort: number }[] }> }> {
  return JSON.parse(await readFile(registryPath(home), 'utf8'));
}

/** Builds a tiny image carrying the given labels (FROM the base image setup-system provides). */
async function labelledImage(tag: string | undefined, labels: Record<string, string>): Promise<string> {
  const args = ['build', '-q', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), ...(tag ? ['-t', tag] : []), '-'];
  const r = await execa('docker', args, { input: `FROM debian:bookworm-slim\nRUN echo ${Math.random()} > /marker\n` });
  return r.stdout.trim().split('\n').pop()!;
}

describe('instances created with --ttl: owned until started', () => {
  it('an up --ttl killed mid-start is an orphan; the next up reaps it and starts afresh', async () => {
    sb = await makeSandbox();
    const s = sb;
    const killed = execa('node', [CLI, 'up', '--ttl', '1h', '--json'], { cwd: s.repo, env: { SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    const id = await until(
      'a container of the instance',
      async () => (await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.owner', `dev.sandstack.worktree=${s.repo}`] } }))[0]?.Labels['dev.sandstack.instance'],
      240_000,
    );
    const labels = (await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${id}`] } }))[0]!.Labels;
    expect(labels['dev.sandstack.owner']).toMatch(new RegExp(`^${killed.pid}@`));
    expect(labels['dev.sandstack.ttl']).toBe('3600000');
    killed.kill('SIGKILL');
    await killed;

    const dry = await s.run(s.repo, ['gc', '--dry-run', '--json']);
    expect(items(dry.json)).toContainEqual(['orphan', id, false]);

    const next = await s.run(s.repo, ['up', '--json']);
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.json.notices.join('\n')).toContain(`reaped orphan ${id}`);
    expect(next.json.instance.state).toBe('running');
    await s.run(s.repo, ['destroy', '--json']);
    await expectSandboxClean(s);
  }, 600_000);

  it('a finished up --ttl is handed over: no orphan once its process exits, also after the registry is rebuilt from labels', async () => {
    sb = await makeSandbox();
    const s = sb;
    const up = await s.run(s.repo, ['up', '--ttl', '1h', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const id = up.json.instance.id as string;
    const rec = (await registry(s.home)).instances[id]!;
    expect(rec.owner).toBeUndefined();
    expect(rec.ttlMs).toBe(3_600_000);
    expect(rec.services).toEqual(['backend', 'db', 'worker-backtest', 'worker-ingest']);
    // Its containers still carry the (now dead) owner: the record decides.
    const owners = (await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${id}`] } })).map((c) => c.Labels['dev.sandstack.owner']);
    expect(owners.every((o) => o !== undefined)).toBe(true);
    const dry = await s.run(s.repo, ['gc', '--dry-run', '--json']);
    expect(dry.json.items.filter((i: Item) => i.id === id)).toEqual([]);

    await rm(registryPath(s.home));
    const ls = await s.run(s.repo, ['ls', '--json']);
    expect(ls.json.notices.join('\n')).toContain('missing; rebuilt');
    const listed = ls.json.instances.find((i: { id: string }) => i.id === id);
    expect(listed.expiresInMs).toBeGreaterThan(3_000_000);
    const after = await s.run(s.repo, ['gc', '--dry-run', '--json']);
    expect(after.json.items.filter((i: Item) => i.id === id)).toEqual([]);
    expect((await labelled(id)).containers).toBe(4);
    await s.run(s.repo, ['destroy', '--json']);
    await expectSandboxClean(s);
  }, 600_000);
});

describe('gc', () => {
  it('--worktree-gone: lists an instance whose worktree was deleted, and removes it only when asked (a local one only when named)', async () => {
    sb = await makeSandbox();
    const s = sb;
    const created = await s.run(s.repo, ['new', 'feat/gone', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    const wt = created.json.instance.worktree as string;
    const up = await s.run(wt, ['up', '--no-gate', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const id = up.json.instance.id as string;
    const kind = up.json.instance.kind as string;
    await rm(wt, { recursive: true, force: true });

    const dry = await s.run(s.repo, ['gc', '--dry-run', '--json']);
    const item = dry.json.items.find((i: Item) => i.id === id);
    expect(item).toMatchObject({ kind: 'worktree-gone', removed: false });
    expect(item.hint).toContain('--worktree-gone');
    const plain = await s.run(s.repo, ['gc', '--json']);
    expect(plain.json.items.find((i: Item) => i.id === id)).toMatchObject({ kind: 'worktree-gone', removed: false });
    expect((await labelled(id)).containers).toBeGreaterThan(0);

    const gone = await s.run(s.repo, ['gc', '--worktree-gone', '--json', ...(kind === 'local' ? ['--instance', id] : [])]);
    expect(gone.exitCode, gone.stderr).toBe(0);
    expect(items(gone.json)).toContainEqual(['worktree-gone', id, true]);
    expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect((await s.run(s.repo, ['ls', '--json'])).json.instances.map((i: { id: string }) => i.id)).not.toContain(id);
    await expectSandboxClean(s);
  }, 600_000);

  it('--evidence-older-than removes evidence of instances that no longer exist only when old enough', async () => {
    sb = await makeSandbox();
    const s = sb;
    const old = path.join(s.home, 'evidence', 'gone-old');
    const recent = path.join(s.home, 'evidence', 'gone-recent');
    for (const dir of [old, recent]) {
      await mkdir(path.join(dir, '2026-01-01T00-00-00Z'), { recursive: true });
      await writeFile(path.join(dir, '2026-01-01T00-00-00Z', 'summary.md'), '# evidence\n');
    }
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
    await utimes(old, tenDaysAgo, tenDaysAgo);

    const plain = await s.run(s.repo, ['gc', '--json']);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(items(plain.json)).toEqual(expect.arrayContaining([['evidence', 'gone-old', false], ['evidence', 'gone-recent', false]]));
    expect(plain.json.items.find((i: Item) => i.id === 'gone-old').hint).toContain('--evidence-older-than');

    const bad = await s.run(s.repo, ['gc', '--evidence-older-than', 'a while']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('is not a duration');

    const r = await s.run(s.repo, ['gc', '--evidence-older-than', '7d', '--json']);
    expect(items(r.json)).toEqual(expect.arrayContaining([['evidence', 'gone-old', true], ['evidence', 'gone-recent', false]]));
    await expect(readFile(path.join(recent, '2026-01-01T00-00-00Z', 'summary.md'), 'utf8')).resolves.toContain('evidence');
    await expect(readFile(path.join(old, '2026-01-01T00-00-00Z', 'summary.md'), 'utf8')).rejects.toThrow();
  }, 120_000);

  it('removes images built for instances that are gone; --images removes untagged ones no container uses; never an image without its labels', async () => {
    sb = await makeSandbox();
    const s = sb;
    const home = homeLabelValue(s.home);
    const tag = `sandstack-gc-test/gone:${process.pid}`;
    const foreignTag = `sandstack-gc-test/foreign:${process.pid}`;
    const goneImage = await labelledImage(tag, { 'dev.sandstack.instance': 'gone-instance', 'dev.sandstack.home': home });
    const dangling = await labelledImage(undefined, { 'dev.sandstack.home': home });
    const foreign = await labelledImage(foreignTag, { 'dev.sandstack.instance': 'gone-instance', 'dev.sandstack.home': 'another-home' });
    try {
      const dry = await s.run(s.repo, ['gc', '--dry-run', '--images', '--json']);
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect(items(dry.json)).toEqual(expect.arrayContaining([['image', 'gone-instance', false], ['image', '-', false]]));
      expect(dry.json.items.find((i: Item) => i.kind === 'image' && i.id === 'gone-instance').subject).toBe(tag);

      const plain = await s.run(s.repo, ['gc', '--json']);
      expect(items(plain.json)).toContainEqual(['image', 'gone-instance', true]);
      await expect(docker.getImage(goneImage).inspect()).rejects.toMatchObject({ statusCode: 404 });
      // Without --images the untagged one stays.
      expect((await docker.getImage(dangling).inspect()).Id).toBe(dangling);

      const images = await s.run(s.repo, ['gc', '--images', '--json']);
      expect(items(images.json)).toContainEqual(['image', '-', true]);
      await expect(docker.getImage(dangling).inspect()).rejects.toMatchObject({ statusCode: 404 });
      // Another state home's image: untouched.
      expect((await docker.getImage(foreign).inspect()).Id).toBe(foreign);
    } finally {
      for (const img of [goneImage, dangling, foreign]) await docker.getImage(img).remove({ force: true }).catch(() => undefined);
    }
  }, 300_000);
});

describe('state that stays true', () => {
  it('a destroy killed half-way finishes when run again', async () => {
    sb = await makeSandbox();
    const s = sb;
    const up = await s.run(s.repo, ['up', '--no-gate', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const id = up.json.instance.id as string;
    const before = await labelled(id);
    const killed = execa('node', [CLI, 'destroy', '--json'], { cwd: s.repo, env: { SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    // Kill it once it has removed something, before it has finished.
    await until(
      'destroy to remove something',
      async () => {
        const now = await labelled(id);
        return now.containers + now.volumes + now.networks < before.containers + before.volumes + before.networks ? true : undefined;
      },
      60_000,
      20,
    ).catch(() => undefined);
    killed.kill('SIGKILL');
    await killed;

    const again = await s.run(s.repo, ['destroy', '--json']);
    // Killed too late (all gone, record released) is also a finished destroy: then there is nothing to do.
    if (again.exitCode !== 0) expect(again.json?.error?.code ?? again.stderr).toContain('SANDSTACK_INSTANCE_NOT_FOUND');
    else expect(again.json.verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect((await registry(s.home)).instances[id]).toBeUndefined();
    await expectSandboxClean(s);
  }, 600_000);

  it('ls never shows an instance as running when a service is gone, names the drift, and adopts an instance Docker has and the registry lacks', async () => {
    sb = await makeSandbox();
    const s = sb;
    const up = await s.run(s.repo, ['up', '--no-gate', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const id = up.json.instance.id as string;
    const lease = (await registry(s.home)).instances[id]!.leases[0]!.hostPort;
    let ls = await s.run(s.repo, ['ls', '--json']);
    expect(ls.json.instances.find((i: { id: string }) => i.id === id)).toMatchObject({ state: 'running', drift: [] });

    // A container removed behind sandstack's back.
    const worker = (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`, 'com.docker.compose.service=worker-ingest'] } }))[0]!;
    await docker.getContainer(worker.Id).remove({ force: true });
    ls = await s.run(s.repo, ['ls', '--json']);
    const listed = ls.json.instances.find((i: { id: string }) => i.id === id);
    expect(listed.state).toBe('partial');
    expect(listed.drift).toEqual(['no container for worker-ingest (removed outside sandstack?)']);
    expect((await s.run(s.repo, ['ls'])).stdout).toContain(`drift ${id}: no container for worker-ingest`);
    const st = await s.run(s.repo, ['status', '--json']);
    expect(st.json.instance.state).toBe('partial');

    // The registry loses its record while Docker still runs it: ls adopts it (its port stays reserved) and says so.
    const reg = await registry(s.home);
    delete reg.instances[id];
    await writeFile(registryPath(s.home), JSON.stringify(reg, null, 2));
    ls = await s.run(s.repo, ['ls', '--json']);
    expect(ls.json.notices.join('\n')).toContain(`${id} was in Docker but not in the registry: adopted from its labels (ports ${lease} reserved)`);
    expect(ls.json.instances.find((i: { id: string }) => i.id === id).registered).toBe(true);
    expect((await registry(s.home)).instances[id]!.leases.map((l) => l.hostPort)).toEqual([lease]);
    const quiet = await s.run(s.repo, ['ls', '--json']);
    expect(quiet.json.notices).toEqual([]);

    // The next up brings the missing service back: running again.
    await s.run(s.repo, ['down']);
    const again = await s.run(s.repo, ['up', '--no-gate', '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.services.find((x: { name: string }) => x.name === 'backend').ports[0].host).toBe(lease);
    ls = await s.run(s.repo, ['ls', '--json']);
    expect(ls.json.instances.find((i: { id: string }) => i.id === id)).toMatchObject({ state: 'running', drift: [] });
    await s.run(s.repo, ['destroy', '--json']);
    await expectSandboxClean(s);
  }, 600_000);
});
