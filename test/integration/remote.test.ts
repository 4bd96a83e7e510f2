/**
 * Remote engines over SSH, on real engines and real sshd: two test hosts (network namespaces with
 * their own dockerd and sshd, see remote-hosts.ts) and a third address with no sshd.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, type Sandbox } from './helpers.js';
import { startRemoteHosts, stopMasters, type RemoteHosts } from './remote-hosts.js';

let hosts: RemoteHosts;
let s: Sandbox;
let userConfig: string;
const ENGINES = ['r1', 'r2', 'down'];

beforeAll(async () => {
  hosts = await startRemoteHosts(3, { images: ['debian:bookworm-slim'] });
  s = await makeSandbox();
  // host 2 has no sshd: an engine nothing answers for.
  await hosts.hosts[2]!.stopSsh();
  userConfig = path.join(s.base, 'user-config.yaml');
  const [h1, h2, h3] = hosts.hosts;
  await writeFile(
    userConfig,
    [
      'engines:',
      `  r1: { url: "${h1!.url}", capacity: 2, root: "${h1!.root}" }`,
      `  r2: { url: "${h2!.url}", root: "${h2!.root}" }`,
      `  down: { url: "${h3!.url}", root: "${h3!.root}" }`,
      'pool: [local, r1, r2]',
      '',
    ].join('\n'),
  );
}, 180_000);

afterAll(async () => {
  await s?.cleanup();
  if (s) await stopMasters(s.home, ENGINES);
  await hosts?.teardown();
}, 180_000);

const env = () => ({ ...hosts.env, SANDSTACK_USER_CONFIG: userConfig });

describe('sandstack engines', () => {
  it('lists every engine with reachability, versions, instances and the pool; an engine without sshd says why', async () => {
    const r = await s.run(s.repo, ['engines', '--json'], { env: env() });
    expect(r.exitCode, r.stderr).toBe(0);
    const by = Object.fromEntries(r.json.engines.map((e: { name: string }) => [e.name, e]));
    expect(Object.keys(by)).toEqual(['local', 'r1', 'r2', 'down']);
    for (const name of ['local', 'r1', 'r2']) {
      expect(by[name].reachable, name).toBe(true);
      expect(by[name].dockerVersion, name).toMatch(/^\d+\.\d+/);
      expect(by[name].instances).toBe(0);
    }
    expect(by.r1.capacity).toBe(2);
    expect(by.r1.inPool && by.r2.inPool && by.local.inPool).toBe(true);
    expect(by.down.inPool).toBe(false);
    expect(by.down.reachable).toBe(false);
    expect(by.down.error).toMatch(/Engine "down" \(ssh:\/\/root@10\.213\.\d+\.2\) is not reachable: nothing accepts SSH connections there/);
    expect(r.json.pool).toEqual(['local', 'r1', 'r2']);

    const text = await s.run(s.repo, ['engines'], { env: env() });
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^ENGINE\s+ENDPOINT\s+REACHABLE/);
    expect(text.stdout).toMatch(/^r1\s+ssh:\/\/root@\S+\s+yes\s+\d+\.\S+ \(API [\d.]+\)\s+0\/2/m);
    expect(text.stdout).toMatch(/^down\s+ssh:\/\/root@\S+\s+no/m);
  });

  it('an unknown engine name is exit 2 naming the known ones; an unreachable one is exit 3 naming the engine', async () => {
    const unknown = await s.run(s.repo, ['--engine', 'nope', 'up', '--json'], { env: env() });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.json.error.code).toBe('SANDSTACK_ENGINE_UNKNOWN');
    expect(unknown.json.error.message).toContain('Engine "nope" (from --engine) is not known');
    expect(unknown.json.error.hint).toContain('local, r1, r2, down');

    const down = await s.run(s.repo, ['up', '--json'], { env: { ...env(), SANDSTACK_ENGINE: 'down' } });
    expect(down.exitCode).toBe(3);
    expect(down.json.error.code).toBe('SANDSTACK_ENGINE_UNREACHABLE');
    expect(down.json.error.message).toContain('Engine "down"');
    // Nothing half-made locally: no registry record, no instance folder.
    const ls = await s.run(s.repo, ['ls', '--json'], { env: env() });
    expect(ls.json.instances).toEqual([]);
  });

  it('a refused SSH key is exit 3 saying so', async () => {
    const h2 = hosts.hosts[1]!;
    const keys = path.join(h2.dir, 'authorized_keys');
    const { readFile } = await import('node:fs/promises');
    const kept = await readFile(keys, 'utf8');
    await writeFile(keys, '');
    try {
      await stopMasters(s.home, ['r2']);
      const r = await s.run(s.repo, ['--engine', 'r2', 'up', '--json'], { env: env() });
      expect(r.exitCode).toBe(3);
      expect(r.json.error.message).toMatch(/Engine "r2" \(ssh:\/\/root@[\d.]+\) is not reachable: the SSH key was refused/);
      expect(r.json.error.hint).toContain('docker version');
    } finally {
      await writeFile(keys, kept, { mode: 0o600 });
    }
  });
});
