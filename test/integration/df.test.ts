/**
 * `sandstack df` on the real engine: the demo stack's containers, volumes, images and state folder
 * are attributed to its instance, the build cache is reported as the engine's, and a disk budget in
 * the user config makes `up` warn (exit 0); an invalid user config fails `df` naming the file, and `up` starts with a notice that the budget was not checked.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, makeSandbox, type Sandbox } from './helpers.js';

const ID = 'df-demo';

describe('sandstack df and the disk budget', () => {
  let sb: Sandbox;
  let noUserConfig: Record<string, string>;

  beforeAll(async () => {
    sb = await makeSandbox();
    // No user config unless a test writes one (the machine's own must not count).
    noUserConfig = { SANDSTACK_USER_CONFIG: path.join(sb.base, 'no-user-config.yaml') };
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', ID], { env: noUserConfig });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.notices.join('\n')).not.toContain('budget');
  }, 600_000);
  afterAll(async () => {
    await sb?.cleanup();
  });

  it('df --json attributes the containers, volumes, images and state dir to the instance', async () => {
    const r = await sb.run(sb.repo, ['df', '--json'], { env: noUserConfig });
    expect(r.exitCode, r.stderr).toBe(0);
    const inst = r.json.instances.find((i: { id: string }) => i.id === ID);
    expect(inst, JSON.stringify(r.json.instances)).toBeDefined();
    expect(inst.registered).toBe(true);

    const filters = { label: [`dev.sandstack.instance=${ID}`] };
    const containers = await docker.listContainers({ all: true, filters });
    expect(inst.containers.count).toBe(containers.length);
    expect(inst.containers.count).toBe(4);
    expect(inst.containers.size).toBeGreaterThan(0);
    const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
    expect(volumes.length).toBeGreaterThan(0);
    expect(inst.volumes.count).toBe(volumes.length);
    expect(inst.volumes.unknown).toEqual([]);
    expect(inst.volumes.size).toBeGreaterThan(0); // the database's files

    // The demo's images are content-addressed (shared, labelled for the home): they count for the
    // instance whose containers use them.
    const used = new Set(containers.map((c) => c.ImageID));
    const images = (await docker.listImages({ filters: { label: ['dev.sandstack.content'] } })).filter((i) => used.has(i.Id));
    expect(inst.images.count).toBe(new Set(images.map((i) => i.Id)).size);
    expect(inst.images.count).toBeGreaterThan(0);
    expect(inst.images.size).toBeGreaterThan(0);
    expect(inst.images.list.flatMap((i: { tags: string[] }) => i.tags).sort()).toEqual(images.flatMap((i) => i.RepoTags ?? []).filter((t) => t !== '<none>:<none>').sort());

    expect(inst.stateDir.exists).toBe(true);
    expect(inst.stateDir.path).toBe(path.join(sb.home, 'instances', ID));
    expect(inst.stateDir.size).toBeGreaterThan(0); // at least the rendered model
    expect(inst.images.disk).toBeLessThanOrEqual(inst.images.size);
    expect(inst.total).toBe(inst.containers.size + inst.volumes.size + inst.images.disk + inst.stateDir.size);
    expect(r.json.total.size).toBeGreaterThanOrEqual(inst.total);
    expect(r.json.buildCache.scope).toBe('engine');
    expect(r.json.buildCache.records).toBeGreaterThanOrEqual(0);
    expect(r.json.budget).toMatchObject({ exceeded: false });
    expect(r.json.budget.budgetBytes).toBeUndefined();
  });

  it('df prints a table with the instance, the total and the engine-wide build cache', async () => {
    const r = await sb.run(sb.repo, ['df'], { env: noUserConfig });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/INSTANCE\s+CONTAINERS\s+VOLUMES\s+IMAGES\s+STATE DIR\s+TOTAL/);
    expect(r.stdout).toContain(ID);
    expect(r.stdout).toMatch(/^total: /m);
    expect(r.stdout).toContain('build cache (engine-wide');
    expect(r.stdout).not.toContain('budget');

    const one = await sb.run(sb.repo, ['df', '--json', '--instance', ID], { env: noUserConfig });
    expect(one.exitCode, one.stderr).toBe(0);
    expect(one.json.instances.map((i: { id: string }) => i.id)).toEqual([ID]);
    const none = await sb.run(sb.repo, ['df', '--json', '--instance', 'no-such-instance'], { env: noUserConfig });
    expect(none.exitCode).toBe(2);
    expect(none.json.error.code).toBe('SANDSTACK_INSTANCE_NOT_FOUND');
  });

  it('with budget.disk exceeded, up warns naming the budget and still exits 0; df shows the budget line', async () => {
    const file = path.join(sb.base, 'user-config.yaml');
    await writeFile(file, 'budget:\n  disk: 1KB\n');
    const env = { SANDSTACK_USER_CONFIG: file };
    const down = await sb.run(sb.repo, ['down', '--instance', ID, '--json'], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    const up = await sb.run(sb.repo, ['up', '--json', '--instance', ID, '--no-build'], { env });
    expect(up.exitCode, up.stderr).toBe(0);
    const notice = up.json.notices.find((n: string) => n.includes('disk budget exceeded'));
    expect(notice, JSON.stringify(up.json.notices)).toBeDefined();
    expect(notice).toContain('budget of 1 KB');
    expect(notice).toContain(file);
    expect(up.stderr).toContain('notice: disk budget exceeded');

    const df = await sb.run(sb.repo, ['df'], { env });
    expect(df.exitCode, df.stderr).toBe(0);
    expect(df.stdout).toMatch(/^budget 1 KB: over budget by .+ \(.+ used, \d+%\)$/m);
    const json = await sb.run(sb.repo, ['df', '--json'], { env });
    expect(json.json.budget).toMatchObject({ budgetBytes: 1024, exceeded: true, file });
    expect(json.json.budget.usedBytes).toBe(json.json.total.size);

    await writeFile(file, 'budget:\n  disk: 1PB\n');
    const under = await sb.run(sb.repo, ['df'], { env });
    expect(under.stdout).toMatch(/^budget 1 PB: .+ used \(0%\)$/m);
  }, 600_000);

  it('an invalid user config fails df with the config exit code, naming the file; up still starts', async () => {
    const file = path.join(sb.base, 'bad-user-config.yaml');
    await writeFile(file, 'budget:\n  disk: plenty\n  inodes: 5\n');
    const env = { SANDSTACK_USER_CONFIG: file };
    const df = await sb.run(sb.repo, ['df', '--json'], { env });
    expect(df.exitCode).toBe(2);
    expect(df.json.error.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(df.json.error.message).toContain(`${file}:2:9: budget.disk`);
    expect(df.json.error.message).toContain(`${file}:3:3: budget.inodes: unknown key "inodes"`);
    expect(df.stderr).toContain(file);

    const down = await sb.run(sb.repo, ['down', '--instance', ID, '--json'], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    const up = await sb.run(sb.repo, ['up', '--json', '--instance', ID, '--no-build'], { env });
    expect(up.exitCode, up.stderr).toBe(0);
    // The broken user config turns the budget off, and up says so.
    expect(up.json.notices.join('\n')).toContain(`disk budget not checked: ${file} is invalid`);
  }, 600_000);
});
