/**
 * Three worktrees of one repository run the demo stack side by side on the real engine: isolated
 * data, distinct 127.0.0.1 ports, their own instance ids; down/up keeps data and ports; destroy
 * leaves nothing labelled and frees the ports.
 */
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiUrl, docker, http, labelled, makeSandbox, type Sandbox } from './helpers.js';

const BRANCHES = ['feat/alpha', 'feat/beta', 'fix/gamma'];
const IDS = ['demo--feat-alpha', 'demo--feat-beta', 'demo--fix-gamma'];

describe('three instances of the demo stack in parallel', () => {
  let sb: Sandbox;
  const worktrees: string[] = [];
  const urls: string[] = [];
  const ups: any[] = [];

  beforeAll(async () => {
    sb = await makeSandbox();
  });
  afterAll(async () => {
    await sb?.cleanup();
  });

  it('new creates a worktree and registers an instance per branch', async () => {
    for (const [i, branch] of BRANCHES.entries()) {
      const r = await sb.run(sb.repo, ['new', branch, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.instance.id).toBe(IDS[i]);
      expect(r.json.instance.worktree).toBe(path.join(sb.base, IDS[i]!));
      expect(r.json.ports).toHaveLength(1);
      worktrees.push(r.json.instance.worktree);
      await access(path.join(r.json.instance.worktree, 'compose.yaml'));
    }
    const hosts = (await sb.run(sb.repo, ['ls', '--json'])).json.instances.flatMap((i: any) => i.ports.map((p: any) => p.host));
    expect(new Set(hosts).size).toBe(3);
  });

  it('new refuses an existing branch and an existing folder', async () => {
    const again = await sb.run(sb.repo, ['new', BRANCHES[0]!, '--json']);
    expect(again.exitCode).toBe(2);
    expect(again.json.error.code).toBe('SANDSTACK_BRANCH_EXISTS');
  });

  it('brings all three up at the same time, all healthy', async () => {
    const results = await Promise.all(worktrees.map((wt) => sb.run(wt, ['up', '--json'])));
    for (const [i, r] of results.entries()) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.instance.id).toBe(IDS[i]);
      const byName = Object.fromEntries(r.json.services.map((s: any) => [s.name, s]));
      expect(Object.keys(byName).sort()).toEqual(['backend', 'db', 'worker-backtest', 'worker-ingest']);
      for (const s of r.json.services) {
        expect(s.state).toBe('running');
        expect(s.health).toBe('healthy');
      }
      ups.push(r.json);
      urls.push(apiUrl(r.json));
    }
  }, 600_000);

  it('publishes distinct ports, bound to 127.0.0.1 only, and no fixed container names', async () => {
    const hostPorts: number[] = [];
    for (const id of IDS) {
      const containers = await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`] } });
      expect(containers.length).toBe(4);
      for (const c of containers) {
        const info = await docker.getContainer(c.Id).inspect();
        expect(info.Name).not.toBe('/ktrdr-backend');
        expect(info.Config.Labels['dev.sandstack.instance']).toBe(id);
        expect(info.Config.Env).toContain(`SANDSTACK_INSTANCE_ID=${id}`);
        const otel = info.Config.Env.find((e) => e.startsWith('OTEL_RESOURCE_ATTRIBUTES='));
        expect(otel).toContain(`sandstack.instance.id=${id}`);
        expect(otel).toContain('deployment.environment=local');
        for (const bindings of Object.values(info.NetworkSettings.Ports ?? {})) {
          for (const b of bindings ?? []) {
            expect(b.HostIp).toBe('127.0.0.1');
            hostPorts.push(Number(b.HostPort));
          }
        }
      }
      const vols = (await docker.listVolumes({ filters: { label: [`dev.sandstack.instance=${id}`] } })).Volumes ?? [];
      expect(vols.map((v) => v.Name)).toEqual([`${id}_pgdata`]);
    }
    expect(hostPorts).toHaveLength(3);
    expect(new Set(hostPorts).size).toBe(3);
  });

  it('answers health on each with its own instance id', async () => {
    for (const [i, url] of urls.entries()) {
      const r = await http(`${url}/api/v1/health`);
      expect(r.status).toBe(200);
      expect(r.body.instance).toBe(IDS[i]);
      const workers = await http(`${url}/api/v1/workers`);
      expect(workers.body.count).toBeGreaterThanOrEqual(2);
    }
  });

  it('keeps data apart: a row written through one backend is invisible through another', async () => {
    const name = `only-in-alpha-${Date.now()}`;
    const created = await http(`${urls[0]}/api/v1/items`, { method: 'POST', body: JSON.stringify({ name }), headers: { 'content-type': 'application/json' } });
    expect(created.status).toBe(201);
    const inA = await http(`${urls[0]}/api/v1/items`);
    expect(inA.body.items.map((x: any) => x.name)).toContain(name);
    for (const url of urls.slice(1)) {
      const other = await http(`${url}/api/v1/items`);
      expect(other.body.items.map((x: any) => x.name)).not.toContain(name);
    }
  });

  it('rebuilds a lost registry from Docker labels, keeping the leases, and says so', async () => {
    const file = path.join(sb.home, 'registry.json');
    const before = JSON.parse(await readFile(file, 'utf8'));
    await rm(file);
    const ls = await sb.run(sb.repo, ['ls', '--json']);
    expect(ls.exitCode, ls.stderr).toBe(0);
    expect(ls.stderr).toMatch(/registry .* was missing; rebuilt 3 instance/);
    const rebuilt = JSON.parse(await readFile(file, 'utf8'));
    for (const id of IDS) {
      expect(rebuilt.instances[id].leases.map((l: any) => l.hostPort)).toEqual(before.instances[id].leases.map((l: any) => l.hostPort));
    }
    // Put the original back (it also knows which worktrees `new` created, which labels do not say).
    await writeFile(file, JSON.stringify(before));
  });

  it('refuses a second up of a running instance', async () => {
    const r = await sb.run(worktrees[1]!, ['up', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_ALREADY_RUNNING');
  });

  it('down then up keeps the data and the port', async () => {
    const down = await sb.run(worktrees[0]!, ['down', '--json']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect((await labelled(IDS[0]!)).containers).toBe(0);
    expect((await labelled(IDS[0]!)).volumes).toBe(1);
    const st = await sb.run(worktrees[0]!, ['status', '--json']);
    expect(st.json.instance.state).toBe('down');
    const up = await sb.run(worktrees[0]!, ['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(apiUrl(up.json)).toBe(urls[0]);
    const items = await http(`${urls[0]}/api/v1/items`);
    expect(items.body.items.some((x: any) => String(x.name).startsWith('only-in-alpha-'))).toBe(true);
  }, 300_000);

  it('status reports services, health and URLs', async () => {
    const r = await sb.run(worktrees[2]!, ['status', '--json']);
    expect(r.exitCode).toBe(0);
    expect(r.json.instance.id).toBe(IDS[2]);
    expect(r.json.instance.state).toBe('running');
    const backend = r.json.services.find((s: any) => s.name === 'backend');
    expect(backend.ports[0]).toMatchObject({ container: 8000, hostIp: '127.0.0.1', url: urls[2] });
  });

  it('destroy leaves zero labelled resources, frees the ports and removes the worktrees', async () => {
    const ports = urls.map((u) => Number(new URL(u).port));
    for (const [i, wt] of worktrees.entries()) {
      const r = await sb.run(wt, ['destroy', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
      expect(r.json.releasedPorts).toEqual([ports[i]]);
      expect(r.json.worktree.removed).toBe(true);
      expect(await labelled(IDS[i]!)).toEqual({ containers: 0, volumes: 0, networks: 0 });
      await expect(access(wt)).rejects.toThrow();
    }
    const ls = await sb.run(sb.repo, ['ls', '--json']);
    expect(ls.json.instances.filter((i: any) => i.worktree.startsWith(sb.base))).toEqual([]);
    // The ports are free again: nothing listens on them.
    for (const port of ports) {
      await expect(http(`http://127.0.0.1:${port}/api/v1/health`)).rejects.toThrow();
    }
  }, 300_000);
});
