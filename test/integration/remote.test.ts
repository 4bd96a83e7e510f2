/**
 * Remote engines over SSH, on real engines and real sshd: two test hosts (network namespaces with
 * their own dockerd and sshd, see remote-hosts.ts) and a third address with no sshd.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiUrl, http, labelled, makeSandbox, type Sandbox } from './helpers.js';
import { killMaster, startRemoteHosts, stopMasters, type RemoteHost, type RemoteHosts } from './remote-hosts.js';

let hosts: RemoteHosts;
let s: Sandbox;
let userConfig: string;
const ENGINES = ['r1', 'r2', 'down'];

beforeAll(async () => {
  hosts = await startRemoteHosts(3, { images: ['debian:bookworm-slim'] });
  // The backend bind-mounts a project file (on a remote engine: its synced copy).
  s = await makeSandbox(async (repo) => {
    const file = path.join(repo, 'compose.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('    command: ["python3", "/app/backend.py"]\n', '    command: ["python3", "/app/backend.py"]\n    volumes:\n      - ./README.md:/srv/copy/README.md:ro\n'));
  });
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

/** Labelled resources of this sandbox's state home on a test host's engine. */
async function onHost(h: RemoteHost, home: string): Promise<{ containers: string[]; volumes: string[]; networks: string[] }> {
  const { homeLabelValue } = await import('../../src/identity/identity.js');
  const filters = { label: [`dev.sandstack.home=${homeLabelValue(home)}`] };
  const [c, v, n] = await Promise.all([h.docker.listContainers({ all: true, filters }), h.docker.listVolumes({ filters }), h.docker.listNetworks({ filters })]);
  return { containers: c.map((x) => x.Names[0]!), volumes: (v.Volumes ?? []).map((x) => x.Name), networks: n.map((x) => x.Name) };
}

/** Files and folders under a test host's sandstack root (what sync left there). */
async function syncedUnder(h: RemoteHost): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(h.root, { recursive: true }).catch(() => []);
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(3000) });
    return true;
  } catch {
    return false;
  }
}

let demoImages: string[] = [];
/**
 * Copies the demo images into the remote engines lacking one (destroy removes an instance's last-used images
 * there, and here): saved once to a file, loaded from it each time.
 */
async function loadDemoImages(): Promise<void> {
  const { execa } = await import('execa');
  const { existsSync } = await import('node:fs');
  const archive = path.join(s.base, 'demo-images.tar');
  if (!existsSync(archive)) await execa('docker', ['save', '-o', archive, ...demoImages]);
  await Promise.all(
    hosts.hosts.slice(0, 2).map(async (h) => {
      const has = await Promise.all(demoImages.map((t) => h.docker.getImage(t).inspect().then(() => true, () => false)));
      if (!has.every(Boolean)) await execa('docker', ['-H', `unix://${h.socket}`, 'load', '-q', '-i', archive]);
      // The e2e service builds from the backend's context (./app): its content address is the
      // backend's hash, so the image a build there would make is the backend's under the e2e name.
      for (const tag of demoImages.filter((t) => t.startsWith('sandstack/demo-backend:'))) {
        await execa('docker', ['-H', `unix://${h.socket}`, 'tag', tag, tag.replace('sandstack/demo-backend:', 'sandstack/demo-e2e:')]);
      }
    }),
  );
}

describe('instances on remote engines', () => {
  beforeAll(async () => {
    // The demo images, built here once (a namespace reaches no registry and no Debian mirror) and
    // copied into each remote engine, where the build stage finds them by content address.
    const local = await s.run(s.repo, ['--engine', 'local', 'up', '--instance', 'p-local', '--no-gate', '--json'], { env: env() });
    expect(local.exitCode, local.stderr).toBe(0);
    const { homeLabelValue } = await import('../../src/identity/identity.js');
    const { docker } = await import('./helpers.js');
    demoImages = (await docker.listImages({ filters: { label: [`dev.sandstack.home=${homeLabelValue(s.home)}`] } })).flatMap((i) => i.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    expect(demoImages.length).toBeGreaterThan(0);
    await loadDemoImages();
    const down = await s.run(s.repo, ['destroy', '--instance', 'p-local', '--keep-images', '--json'], { env: env() });
    expect(down.exitCode, down.stderr).toBe(0);
  }, 600_000);

  it('up on a named remote engine: answers at its local URL with its id, files synced there, status and ls name the engine, its engine\'s shared Prometheus scrapes it; shell, logs and egress: none hold there; its snapshot seeds an instance on r2; destroy and obs down leave nothing', async () => {
    const h1 = hosts.hosts[0]!;
    // r1's own shared stack: Prometheus's image is copied from this machine's engine (the namespace
    // reaches no Debian mirror); Grafana's and Jaeger's are on neither engine (--no-pull).
    const obs = await s.run(s.repo, ['obs', 'up', '--engine', 'r1', '--no-pull', '--json'], { env: env() });
    expect(obs.exitCode, obs.stderr).toBe(0);
    expect([obs.json.engine, obs.json.started]).toEqual(['r1', ['prometheus']]);
    expect(obs.stderr).toContain('copying sandstack-prometheus:');
    expect(obs.json.missing.map((m: { reason: string }) => m.reason)).toEqual(['not on engine r1 (--no-pull)', 'not on engine r1 (--no-pull)']);
    const obsContainers = async () => (await h1.docker.listContainers({ all: true, filters: { label: [`dev.sandstack.obs=${obs.json.project}`] } })).map((c) => c.Names[0]);
    expect(await obsContainers()).toEqual([`/${obs.json.project}-prometheus-1`]);
    const { docker } = await import('./helpers.js');
    expect(await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.obs=${obs.json.project}`] } })).toEqual([]);
    const prom = `http://127.0.0.1:${obs.json.ports.prometheus}`;
    expect((await http(`${prom}/-/ready`)).status).toBe(200);

    // The port a1's lease would start from is taken on r1's host by something else: the lease skips it.
    const { rangeOffset } = await import('../../src/ports/leases.js');
    const { execa } = await import('execa');
    const busyPort = 20000 + rangeOffset('a1', { from: 20000, to: 29999 });
    const squatter = execa('nsenter', [`--net=/run/netns/${h1.ns}`, 'python3', '-c', `import socket,time;s=socket.socket();s.bind(("127.0.0.1",${busyPort}));s.listen();print("up",flush=True);time.sleep(600)`], { reject: false });
    await new Promise((resolve) => squatter.stdout!.once('data', resolve));
    const up = await s.run(s.repo, ['--engine', 'r1', 'up', '--instance', 'a1', '--json'], { env: env() }).finally(() => squatter.kill());
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.json.instance.engine).toBe('r1');
    const lease = (await s.run(s.repo, ['ports', '--instance', 'a1', '--json'], { env: env() })).json;
    expect(JSON.stringify(lease)).toMatch(/"enginePort":\d+/);
    expect(JSON.stringify(lease)).not.toContain(`"enginePort":${busyPort}`);
    expect(up.json.gate.stages.find((x: { name: string }) => x.name === 'observability').details.joined).toEqual(['prometheus']);
    // r1's Prometheus, reached through its forward, scrapes a1's three metrics services on r1.
    const { until } = await import('./helpers.js');
    await until('a1 scraped on r1', async () => {
      const r = await http(`${prom}/api/v1/query?query=${encodeURIComponent('up{instance_id="a1"} == 1')}`);
      return r.status === 200 && r.body.data.result.length === 3 ? true : undefined;
    });
    const url = apiUrl(up.json);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await http(`${url}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(health.body.instance).toBe('a1');
    // It runs on r1's engine, not here.
    expect((await onHost(h1, s.home)).containers.sort()).toEqual(['/a1-backend-1', '/a1-db-1', '/a1-worker-backtest-1', '/a1-worker-ingest-1']);
    expect(await labelled('a1')).toEqual({ containers: 0, volumes: 0, networks: 0 });
    // The backend bind-mounts a project file: it is the synced copy on r1's host.
    const backend = (await h1.docker.listContainers({ filters: { label: ['com.docker.compose.service=backend', 'dev.sandstack.instance=a1'] } }))[0]!;
    const mount = (await h1.docker.getContainer(backend.Id).inspect()).Mounts.find((m) => m.Destination === '/srv/copy/README.md')!;
    expect(mount.Source.startsWith(`${h1.root}/`), mount.Source).toBe(true);
    expect(mount.Source.endsWith('/src/README.md')).toBe(true);
    expect(await readFile(mount.Source, 'utf8')).toBe(await readFile(path.join(s.repo, 'README.md'), 'utf8'));
    // The published port is on r1's loopback; the local URL is its forward.
    expect(backend.Ports.find((p) => p.PrivatePort === 8000)?.IP).toBe('127.0.0.1');

    const status = await s.run(s.repo, ['status', '--instance', 'a1'], { env: env() });
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^engine r1 \(ssh:\/\/root@[\d.]+\); ports are forwarded to this machine$/m);
    const ls = await s.run(s.repo, ['ls', '--json'], { env: env() });
    const a1 = ls.json.instances.find((i: { id: string }) => i.id === 'a1');
    expect([a1.engine, a1.state, a1.containers]).toEqual(['r1', 'running', { running: 4, total: 4 }]);

    // An edited project file reaches the engine with sync; a lost connection's forwards come back with it.
    await writeFile(path.join(s.repo, 'README.md'), 'edited after up\n');
    await killMaster(s.home, 'r1');
    expect(await answers(url)).toBe(false);
    const sync = await s.run(s.repo, ['sync', '--instance', 'a1', '--json'], { env: env() });
    expect(sync.exitCode, sync.stderr).toBe(0);
    expect(sync.json).toMatchObject({ instance: 'a1', engine: 'r1' });
    expect(sync.json.synced).toContain(s.repo);
    expect(await readFile(mount.Source, 'utf8')).toBe('edited after up\n');
    expect((await http(`${url}/api/v1/health`)).body.instance).toBe('a1');

    // shell and logs reach the containers on r1 (logs -f keeps streaming until stopped).
    const sh = await s.run(s.repo, ['shell', '--instance', 'a1', 'backend', '--', 'cat', '/srv/copy/README.md'], { env: env() });
    expect([sh.exitCode, sh.stdout.trim()]).toEqual([0, 'edited after up']);
    // egress: none holds on r1: worker-backtest reaches its peer, not r1's host; worker-ingest reaches both.
    const connect = (service: string, host: string, port: number) =>
      s.run(s.repo, ['shell', '--instance', 'a1', service, '--', 'python3', '-c', `import socket;socket.create_connection(("${host}",${port}),3)`], { env: env() });
    expect((await connect('worker-backtest', 'backend', 8000)).exitCode).toBe(0);
    expect((await connect('worker-backtest', h1.addr, 22)).exitCode).not.toBe(0);
    expect((await connect('worker-ingest', h1.addr, 22)).exitCode).toBe(0);
    const logs = await s.run(s.repo, ['logs', '--instance', 'a1', 'backend', '--tail', '20'], { env: env() });
    expect(logs.exitCode, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/GET \/api\/v1\/health/);
    const { CLI } = await import('./helpers.js');
    const follow = execa('node', [CLI, 'logs', '-f', '--instance', 'a1', 'backend', '--tail', '0'], { cwd: s.repo, env: { ...env(), SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    let streamed = '';
    follow.stdout!.on('data', (b: Buffer) => (streamed += b.toString()));
    await until(
      'logs -f streams a new request',
      async () => {
        if (streamed.includes('followed=1')) return true;
        await http(`${url}/api/v1/health?followed=1`);
        return undefined;
      },
      30_000,
      500,
    );
    follow.kill('SIGINT');
    await follow;

    // A snapshot of a1 (on r1) is kept here and seeds an instance on r2 that sees a1's row.
    expect((await http(`${url}/api/v1/items`, { method: 'POST', body: JSON.stringify({ name: 'written-on-r1' }) })).status).toBe(201);
    const snap = await s.run(s.repo, ['snapshot', 'save', 'from-r1', '--instance', 'a1', '--json'], { env: env() });
    expect(snap.exitCode, snap.stderr).toBe(0);
    expect(snap.json.snapshot.volumes.length).toBeGreaterThan(0);
    const seeded = await s.run(s.repo, ['--engine', 'r2', 'up', '--instance', 'a2', '--from', 'from-r1', '--json'], { env: env() });
    expect(seeded.exitCode, seeded.stderr).toBe(0);
    expect(seeded.json.instance.engine).toBe('r2');
    const items = await http(`${apiUrl(seeded.json)}/api/v1/items`);
    expect(items.body.items.map((i: { name: string }) => i.name)).toContain('written-on-r1');
    // (its images stay on r2 for the next tests: a namespace reaches no registry to build them again)
    expect((await s.run(s.repo, ['destroy', '--instance', 'a2', '--keep-images', '--json'], { env: env() })).exitCode).toBe(0);
    expect((await s.run(s.repo, ['snapshot', 'rm', 'from-r1', '--json'], { env: env() })).exitCode).toBe(0);
    expect(await onHost(hosts.hosts[1]!, s.home)).toEqual({ containers: [], volumes: [], networks: [] });

    const d = await s.run(s.repo, ['destroy', '--instance', 'a1', '--json'], { env: env() });
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.json.verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
    const st = await s.run(s.repo, ['--engine', 'r1', 'obs', 'status', '--json'], { env: env() });
    expect([st.json.engine, st.json.state, st.json.targets]).toEqual(['r1', 'running', []]);
    const od = await s.run(s.repo, ['obs', 'down', '--volumes', '--engine', 'r1', '--json'], { env: env() });
    expect(od.exitCode, od.stderr).toBe(0);
    expect(od.json.removed.volumes.length).toBe(2);
    expect(await obsContainers()).toEqual([]);
    expect(await answers(prom)).toBe(false);
    expect(await onHost(h1, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await syncedUnder(h1)).toEqual([]);
    expect(await answers(url)).toBe(false);
  }, 600_000);

  it('gate --fresh and verify pass on a remote engine and leave nothing there; the evidence names the engine; a crashing service fails the gate from the engine\'s events', async () => {
    const h2 = hosts.hosts[1]!;
    const r = await s.run(s.repo, ['gate', '--fresh', '--json'], { env: { ...env(), SANDSTACK_ENGINE: 'r2' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.passed).toBe(true);
    expect(r.json.stages.find((x: { name: string }) => x.name === 'config').details.engine.name).toBe('r2');
    expect(await onHost(h2, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await syncedUnder(h2)).toEqual([]);

    const v = await s.run(s.repo, ['verify', '--json'], { env: { ...env(), SANDSTACK_ENGINE: 'r2' } });
    expect(v.exitCode, v.stderr).toBe(0);
    expect(v.json.passed).toBe(true);
    expect(v.json.tests.suites.map((x: { kind: string; passed: boolean }) => [x.kind, x.passed])).toEqual([
      ['unit', true],
      ['e2e', true],
    ]);
    const manifest = JSON.parse(await readFile(path.join(v.json.evidence.dir, 'manifest.json'), 'utf8'));
    expect(manifest.engine).toEqual({ name: 'r2', endpoint: h2.url });
    expect(await onHost(h2, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await syncedUnder(h2)).toEqual([]);

    // A worker that exits at start fails the gate from r2's own events, with its log, and leaves nothing.
    const composeFile = path.join(s.repo, 'compose.yaml');
    const kept = await readFile(composeFile, 'utf8');
    const crashing = kept.replace(/(  worker-backtest:\n    build: \.\/app\n    command: )\["python3", "\/app\/worker\.py"\]/, '$1["sh", "-c", "echo worker boom; exit 3"]');
    expect(crashing).not.toBe(kept);
    await writeFile(composeFile, crashing);
    try {
      const red = await s.run(s.repo, ['gate', '--fresh', '--json'], { env: { ...env(), SANDSTACK_ENGINE: 'r2' } });
      expect(red.exitCode, red.stderr).toBe(1);
      expect(red.json.failure).toMatchObject({ code: 'SANDSTACK_SERVICE_FAILED', service: 'worker-backtest', exitCode: 3 });
      expect(red.json.failure.logTail.join('\n')).toContain('worker boom');
      expect(red.json.stages.find((x: { name: string }) => x.name === 'teardown').status).toBe('passed');
    } finally {
      await writeFile(composeFile, kept);
    }
    expect(await onHost(h2, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await syncedUnder(h2)).toEqual([]);
  }, 600_000);

  it('three instances placed through the pool (local + two remotes) spread one per engine, each isolated; one destroyed while its engine is down is removed by gc once it answers; nothing is left anywhere', async () => {
    await loadDemoImages();
    const urls: string[] = [];
    const engines: string[] = [];
    for (const id of ['p1', 'p2', 'p3']) {
      const up = await s.run(s.repo, ['up', '--instance', id, '--no-gate', '--json'], { env: env() });
      expect(up.exitCode, up.stderr).toBe(0);
      engines.push(up.json.instance.engine);
      urls.push(apiUrl(up.json));
    }
    expect([...engines].sort()).toEqual(['local', 'r1', 'r2']);
    expect(new Set(urls).size).toBe(3);
    for (const [i, id] of ['p1', 'p2', 'p3'].entries()) expect((await http(`${urls[i]}/api/v1/health`)).body.instance).toBe(id);
    const listed = await s.run(s.repo, ['engines', '--json'], { env: env() });
    expect(listed.json.engines.filter((e: { inPool: boolean }) => e.inPool).map((e: { name: string; instances: number }) => [e.name, e.instances])).toEqual([
      ['local', 1],
      ['r1', 1],
      ['r2', 1],
    ]);
    // The instance on r2 is destroyed while r2 does not answer: exit 3, and gc removes it once r2 is back.
    const onR2 = ['p1', 'p2', 'p3'][engines.indexOf('r2')]!;
    const h2 = hosts.hosts[1]!;
    await h2.stopSsh();
    await killMaster(s.home, 'r2');
    try {
      const gone = await s.run(s.repo, ['destroy', '--instance', onR2, '--json'], { env: env() });
      expect(gone.exitCode).toBe(3);
      expect(gone.json.error.code).toBe('SANDSTACK_ENGINE_UNREACHABLE');
      expect(gone.json.error.message).toContain(`Could not destroy ${onR2} there now: it is listed for \`sandstack gc\``);
      expect((await onHost(h2, s.home)).containers.length).toBe(4);
    } finally {
      await h2.startSsh();
    }
    const g = await s.run(s.repo, ['gc', '--json'], { env: env() });
    expect(g.exitCode, g.stderr).toBe(0);
    expect(g.json.items.filter((i: { kind: string }) => i.kind === 'orphan').map((i: { id: string; engine: string; removed: boolean }) => [i.id, i.engine, i.removed])).toEqual([[onR2, 'r2', true]]);
    for (const id of ['p1', 'p2', 'p3'].filter((x) => x !== onR2)) expect((await s.run(s.repo, ['destroy', '--instance', id, '--json'], { env: env() })).exitCode).toBe(0);
    for (const h of hosts.hosts.slice(0, 2)) {
      expect(await onHost(h, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
      expect(await syncedUnder(h)).toEqual([]);
    }
    for (const id of ['p1', 'p2', 'p3']) expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    for (const u of urls) expect(await answers(u)).toBe(false);
  }, 600_000);
});

describe('a dropped SSH connection', () => {
  it('mid-up fails clearly (exit 3, naming the engine), keeps what it cannot remove listed, and gc removes it from the engine', async () => {
    const h2 = hosts.hosts[1]!;
    await loadDemoImages();
    const { execa } = await import('execa');
    const { CLI, until } = await import('./helpers.js');
    const child = execa('node', [CLI, '--engine', 'r2', 'up', '--instance', 'k1', '--json'], { cwd: s.repo, env: { ...env(), SANDSTACK_HOME: s.home }, reject: false, stdin: 'ignore' });
    // Once Compose has created containers on r2, the SSH connection goes (its control master is killed).
    await until('k1 containers on r2', async () => ((await h2.docker.listContainers({ all: true, filters: { label: ['dev.sandstack.instance=k1'] } })).length > 0 ? true : undefined), 180_000, 100);
    await killMaster(s.home, 'r2');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(3);
    const error = JSON.parse(String(r.stdout)).error;
    expect(error.code).toBe('SANDSTACK_ENGINE_UNREACHABLE');
    expect(error.message).toMatch(/^Engine "r2" \(ssh:\/\/root@[\d.]+\) stopped answering during up of k1/);
    expect(error.hint).toContain('sandstack gc');
    // What it made on r2 is still there (nothing could reach it), and still known here.
    expect((await onHost(h2, s.home)).containers.length).toBeGreaterThan(0);
    const g = await s.run(s.repo, ['gc', '--json'], { env: env() });
    expect(g.exitCode, g.stderr).toBe(0);
    expect(g.json.items.filter((i: { kind: string }) => i.kind === 'orphan').map((i: { id: string; engine: string; removed: boolean }) => [i.id, i.engine, i.removed])).toEqual([['k1', 'r2', true]]);
    expect(await onHost(h2, s.home)).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await syncedUnder(h2)).toEqual([]);
    const ls = await s.run(s.repo, ['ls', '--json'], { env: env() });
    expect(ls.json.instances.map((i: { id: string }) => i.id)).not.toContain('k1');
  }, 600_000);
});
