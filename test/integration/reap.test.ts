/**
 * Owner tracking on the real engine: a `gate --fresh` killed with SIGKILL in the middle of its start
 * takes its Compose process with it, and the next `gate --fresh` reaps what it left (containers,
 * networks, images, leases) without anyone running a clean-up by hand.
 */
import { rm } from 'node:fs/promises';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { composeProcessesOf } from '../../src/lifecycle/reap.js';
import { CLI, docker, expectSandboxClean, labelled, makeSandbox, until, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

describe('orphans of killed runs', () => {
  it('a gate --fresh killed mid-start leaves no compose process, and the next gate --fresh reaps its instance', async () => {
    sb = await makeSandbox();
    const s = sb;
    const killed = execa('node', [CLI, 'gate', '--fresh', '--json'], { cwd: s.repo, env: { SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    // Wait until its throwaway instance has a container (the start stage is running), then SIGKILL it.
    const id = await until(
      'a container of the throwaway instance',
      async () => {
        const list = await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.owner', `dev.sandstack.worktree=${s.repo}`] } });
        return list[0]?.Labels['dev.sandstack.instance'];
      },
      240_000,
    );
    const owner = (await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${id}`] } }))[0]!.Labels['dev.sandstack.owner']!;
    expect(owner).toMatch(new RegExp(`^${killed.pid}@\\d+@[0-9a-f-]+$`));
    killed.kill('SIGKILL');
    const r = await killed;
    expect(r.signal).toBe('SIGKILL');
    // Compose dies with its owner (the parent-death signal), not at the next run.
    await until('compose to die with its owner', async () => ((await composeProcessesOf(id)).length === 0 ? true : undefined), 5_000);
    const left = await labelled(id);
    expect(left.containers + left.networks).toBeGreaterThan(0);

    const next = await s.run(s.repo, ['gate', '--fresh', '--json']);
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.json.reaped.map((x: { id: string }) => x.id)).toEqual([id]);
    expect(next.json.reaped[0].why).toContain(`sandstack process ${killed.pid}`);
    expect(next.stderr).toContain(`reaped orphan ${id}`);
    expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect(await docker.listImages({ filters: { label: [`dev.sandstack.instance=${id}`] } })).toEqual([]);
    const ls = await s.run(s.repo, ['ls', '--json']);
    expect(ls.json.instances.map((i: { id: string }) => i.id)).not.toContain(id);
    await expectSandboxClean(s);
  }, 600_000);

  it('an instance whose owner still runs is never reaped', async () => {
    sb = await makeSandbox();
    const s = sb;
    const first = execa('node', [CLI, 'gate', '--fresh', '--json'], { cwd: s.repo, env: { SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    const id = await until(
      'a container of the first throwaway instance',
      async () => (await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.owner', `dev.sandstack.worktree=${s.repo}`] } }))[0]?.Labels['dev.sandstack.instance'],
      240_000,
    );
    // A second run starts meanwhile: it must leave the first one alone.
    const [a, b] = await Promise.all([first, s.run(s.repo, ['gate', '--fresh', '--json'])]);
    expect(b.json.reaped ?? []).toEqual([]);
    expect(a.exitCode, String(a.stderr)).toBe(0);
    expect(JSON.parse(String(a.stdout)).instance.id).toBe(id);
    expect(b.exitCode, b.stderr).toBe(0);
    await expectSandboxClean(s);
  }, 600_000);

  it('gc: lists an orphan with --dry-run and removes it without; stale records, gone worktrees and foreign resources', async () => {
    sb = await makeSandbox();
    const s = sb;
    // A worktree made by `new` and deleted by hand (first: `new` itself reaps orphans) (nothing of it in Docker): a stale record.
    const created = await s.run(s.repo, ['new', 'feat/gone', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    await rm(created.json.instance.worktree, { recursive: true, force: true });
    // An orphan: a gate --fresh killed mid-start.
    const killed = execa('node', [CLI, 'gate', '--fresh', '--json'], { cwd: s.repo, env: { SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    const orphan = await until(
      'a container of the throwaway instance',
      async () => (await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.owner', `dev.sandstack.worktree=${s.repo}`] } }))[0]?.Labels['dev.sandstack.instance'],
      240_000,
    );
    killed.kill('SIGKILL');
    await killed;
    // A volume labelled by another sandstack (no home label of ours): never touched.
    const foreign = `sandstack-gc-foreign-${process.pid}`;
    await docker.createVolume({ Name: foreign, Labels: { 'dev.sandstack.instance': 'someone-else', 'dev.sandstack.worktree': `${s.base}/elsewhere` } });
    try {
      const dry = await s.run(s.repo, ['gc', '--dry-run', '--json']);
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect(dry.json.dryRun).toBe(true);
      const kinds = dry.json.items.map((i: { kind: string; id: string; removed: boolean }) => [i.kind, i.id, i.removed]);
      expect(kinds).toEqual(expect.arrayContaining([['orphan', orphan, false], ['stale-record', created.json.instance.id, false]]));
      expect((await labelled(orphan)).containers).toBeGreaterThan(0);

      const real = await s.run(s.repo, ['gc', '--json']);
      expect(real.exitCode, real.stderr).toBe(0);
      expect(real.json.items.filter((i: { removed: boolean }) => i.removed).map((i: { kind: string }) => i.kind).sort()).toEqual(expect.arrayContaining(['orphan', 'stale-record']));
      expect(await labelled(orphan)).toEqual({ containers: 0, volumes: 0, networks: 0 });
      const ls = await s.run(s.repo, ['ls', '--json']);
      expect(ls.json.instances.map((i: { id: string }) => i.id)).not.toContain(created.json.instance.id);
      expect((await docker.getVolume(foreign).inspect()).Name).toBe(foreign);

      const again = await s.run(s.repo, ['gc', '--json']);
      expect(again.json.items.filter((i: { kind: string }) => i.kind !== 'evidence')).toEqual([]);
    } finally {
      await docker.getVolume(foreign).remove().catch(() => undefined);
    }
    await expectSandboxClean(s);
  }, 600_000);

  it('up --ttl: ls shows the expiry; once past it, gc removes the instance (and lists it first with --dry-run)', async () => {
    sb = await makeSandbox();
    const s = sb;
    const up = await s.run(s.repo, ['up', '--ttl', '1s', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const id = up.json.instance.id as string;
    expect(Date.parse(up.json.instance.expiresAt)).toBeGreaterThan(Date.now() - 120_000);
    const ls = await s.run(s.repo, ['ls', '--json']);
    const listed = ls.json.instances.find((i: { id: string }) => i.id === id);
    expect(listed.expiresAt).toBe(up.json.instance.expiresAt);
    expect(listed.expiresInMs).toBe(0);
    expect((await s.run(s.repo, ['ls'])).stdout).toContain('expired');

    const dry = await s.run(s.repo, ['gc', '--dry-run', '--json']);
    expect(dry.json.items.map((i: { kind: string; id: string; removed: boolean }) => [i.kind, i.id, i.removed])).toContainEqual(['expired', id, false]);
    expect((await labelled(id)).containers).toBeGreaterThan(0);
    const real = await s.run(s.repo, ['gc', '--json']);
    expect(real.json.items.map((i: { kind: string; id: string; removed: boolean }) => [i.kind, i.id, i.removed])).toContainEqual(['expired', id, true]);
    expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    await expectSandboxClean(s);
  }, 600_000);

  it('up --ttl refuses what is not a duration (exit 2)', async () => {
    sb = await makeSandbox();
    const r = await sb.run(sb.repo, ['up', '--ttl', 'soon', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_USAGE');
  }, 60_000);
});
