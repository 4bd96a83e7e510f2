/**
 * Guardrails on the real engine. Egress: a service with `egress: none` reaches its peer, but neither a
 * port on the host nor a host outside the stack, while a normal service reaches both. "Outside" is a test
 * host in a network namespace this test creates (veth 10.213.77.1 <-> 10.213.77.2); no traffic goes
 * anywhere else. Secrets: different per instance, and in no container log, status output, sandstack
 * process argument list, render output or evidence file; rotated on demand; gone after destroy.
 */
import { randomBytes } from 'node:crypto';
import { access, readdir, readFile, writeFile as writeFileText } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, docker, makeSandbox, type Sandbox } from './helpers.js';

const NS = `ssx${randomBytes(2).toString('hex')}`;
const HOST_IF = `${NS}h`;
const NS_IF = `${NS}n`;
const HOST_ADDR = '10.213.77.1';
const NS_ADDR = '10.213.77.2';
const NS_PORT = 8099;
const HOST_PORT = 18000 + Math.floor(Math.random() * 1000);

/** A TCP server that accepts and closes (http.server would stall on a DNS lookup in a namespace without DNS). */
const ACCEPT_LOOP = [
  'import socket,sys',
  's=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)',
  's.bind((sys.argv[1],int(sys.argv[2])));s.listen()',
  'while True:',
  '  c,_=s.accept();c.close()',
].join('\n');

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

/** Tries a TCP connect from inside a container (python3 is in the demo app image). */
async function canConnect(container: string, host: string, port: number): Promise<boolean> {
  const code = `import socket,sys\ns=socket.socket();s.settimeout(3)\ntry:\n  s.connect((sys.argv[1],int(sys.argv[2])));print('open')\nexcept Exception as e:\n  print('closed',type(e).__name__)`;
  const exec = await docker.getContainer(container).exec({ Cmd: ['python3', '-c', code, host, String(port)], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((resolve) => stream.on('end', resolve));
  return Buffer.concat(chunks).toString('latin1').includes('open');
}

async function containerOf(id: string, service: string): Promise<string> {
  const [c] = await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`, `com.docker.compose.service=${service}`] } });
  if (!c) throw new Error(`no running ${service} in ${id}`);
  return c.Id;
}

describe('egress: none', () => {
  let sb: Sandbox;
  let nsServer: ResultPromise | undefined;
  let hostServer: net.Server | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test creates a network namespace and needs root (as CI runs it)');
    sb = await makeSandbox();
    const up = await sb.run(sb.repo, ['up', '--json']);
    if (up.exitCode !== 0) throw new Error(`up failed: ${up.stderr}`);
    // The test's own "outside" host: a network namespace behind a veth pair, serving on NS_ADDR.
    await ip('netns', 'add', NS);
    await ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
    await ip('link', 'set', NS_IF, 'netns', NS);
    await ip('addr', 'add', `${HOST_ADDR}/30`, 'dev', HOST_IF);
    await ip('link', 'set', HOST_IF, 'up');
    await ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_ADDR}/30`, 'dev', NS_IF);
    await ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
    await ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
    await ip('netns', 'exec', NS, 'ip', 'route', 'add', 'default', 'via', HOST_ADDR);
    nsServer = execa('ip', ['netns', 'exec', NS, '/usr/bin/python3', '-c', ACCEPT_LOOP, NS_ADDR, String(NS_PORT)], { reject: false, stdio: 'ignore' });
    // A port open on the host itself, on the test's own host address (never on the LAN).
    hostServer = net.createServer((sock) => sock.destroy());
    await new Promise<void>((resolve) => hostServer!.listen(HOST_PORT, HOST_ADDR, resolve));
    // Wait (bounded) until the test host answers from the host side.
    let ready = false;
    for (let i = 0; i < 150 && !ready; i++) {
      ready = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: NS_ADDR, port: NS_PORT, timeout: 500 }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
        s.on('timeout', () => {
          s.destroy();
          resolve(false);
        });
      });
      if (!ready) await new Promise((res) => setTimeout(res, 100));
    }
    if (!ready) throw new Error(`the test host ${NS_ADDR}:${NS_PORT} in network namespace ${NS} did not start`);
  }, 300_000);

  afterAll(async () => {
    nsServer?.kill('SIGKILL');
    hostServer?.close();
    await execa('ip', ['link', 'del', HOST_IF], { reject: false });
    await execa('ip', ['netns', 'del', NS], { reject: false });
    await sb?.cleanup();
  });

  it('attaches the service only to internal networks of its instance (its peers, and telemetry)', async () => {
    const info = await docker.getContainer(await containerOf('demo', 'worker-backtest')).inspect();
    const nets = Object.keys(info.NetworkSettings.Networks).sort();
    // The demo enables observability: the telemetry network is internal too, so it adds no route out.
    expect(nets).toEqual(['demo_sandstack_internal', 'demo_sandstack_telemetry']);
    for (const name of nets) {
      const net = await docker.getNetwork(name).inspect();
      expect(net.Internal).toBe(true);
      expect(net.Options['com.docker.network.bridge.inhibit_ipv4']).toBe('true');
      expect(net.Labels['dev.sandstack.instance']).toBe('demo');
    }
  });

  it('reaches its peer by name, and is registered through it', async () => {
    expect(await canConnect(await containerOf('demo', 'worker-backtest'), 'backend', 8000)).toBe(true);
    const r = await sb.run(sb.repo, ['ports', '--json']);
    const workers = await (await fetch(`${r.json.ports[0].url}/api/v1/workers`)).json();
    expect(workers.workers.map((w: any) => w.kind).sort()).toEqual(['backtest', 'ingest']);
  });

  it('a normal service reaches the outside host and a port on the host; the egress-less one reaches neither', async () => {
    const normal = await containerOf('demo', 'worker-ingest');
    const isolated = await containerOf('demo', 'worker-backtest');
    expect(await canConnect(normal, NS_ADDR, NS_PORT)).toBe(true);
    expect(await canConnect(normal, HOST_ADDR, HOST_PORT)).toBe(true);
    expect(await canConnect(isolated, NS_ADDR, NS_PORT)).toBe(false);
    expect(await canConnect(isolated, HOST_ADDR, HOST_PORT)).toBe(false);
  });
});

describe('secrets', () => {
  let sb: Sandbox;
  const worktrees: { id: string; dir: string }[] = [];

  beforeAll(async () => {
    sb = await makeSandbox();
    for (const branch of ['feat/s1', 'feat/s2']) {
      const r = await sb.run(sb.repo, ['new', branch, '--json']);
      if (r.exitCode !== 0) throw new Error(r.stderr);
      worktrees.push({ id: r.json.instance.id, dir: r.json.instance.projectDir });
    }
  }, 120_000);

  afterAll(async () => {
    await sb?.cleanup();
  });

  const secretOf = (id: string) => readFile(path.join(sb.home, 'instances', id, 'secrets', 'DB_PASSWORD'), 'utf8');

  it('is generated per instance, never on a sandstack process command line, never in logs, status or render', async () => {
    // Watch every process's argument list while `up` runs (sandstack and the Compose processes it starts).
    const seen = new Set<string>();
    const up = execa('node', [CLI, 'up', '--json'], { cwd: worktrees[0]!.dir, env: { SANDSTACK_HOME: sb.home }, reject: false, stdin: 'ignore' });
    let done = false;
    void up.finally(() => (done = true));
    while (!done) {
      for (const pid of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmd) seen.add(cmd);
      }
      await new Promise((res) => setTimeout(res, 25));
    }
    const r1 = await up;
    expect(r1.exitCode, String(r1.stderr)).toBe(0);
    const r2 = await sb.run(worktrees[1]!.dir, ['up', '--json']);
    expect(r2.exitCode, r2.stderr).toBe(0);

    const [s1, s2] = [await secretOf(worktrees[0]!.id), await secretOf(worktrees[1]!.id)];
    expect(s1).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(s2).not.toBe(s1);
    expect([...seen].some((c) => c.includes('docker-compose'))).toBe(true); // we did see Compose's processes
    expect([...seen].filter((c) => c.includes(s1))).toEqual([]);
    expect(String(r1.stdout)).not.toContain(s1);
    expect(String(r1.stderr)).not.toContain(s1);

    // The services work with it (the backend logged in to the database with the generated password).
    const health = await fetch(`${JSON.parse(String(r1.stdout)).services.find((s: any) => s.name === 'backend').ports[0].url}/api/v1/health`);
    expect(health.status).toBe(200);

    for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${worktrees[0]!.id}`] } })) {
      const logs = (await docker.getContainer(c.Id).logs({ stdout: true, stderr: true })) as unknown as Buffer;
      expect(logs.toString('latin1').includes(s1), `log of ${c.Names[0]}`).toBe(false);
    }
    for (const args of [['status'], ['status', '--json'], ['render'], ['render', '--json'], ['secrets'], ['secrets', '--json'], ['ls', '--json']]) {
      const r = await sb.run(worktrees[0]!.dir, args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout.includes(s1) || r.stderr.includes(s1), args.join(' ')).toBe(false);
    }
    const rendered = await sb.run(worktrees[0]!.dir, ['render']);
    expect(rendered.stdout).toMatch(/POSTGRES_PASSWORD: "\[REDACTED:[A-Z_]+\]"/);
  }, 600_000);

  it('appears in no evidence file', async () => {
    const s1 = await secretOf(worktrees[0]!.id);
    expect((await sb.run(worktrees[0]!.dir, ['test', '--json'])).exitCode).toBe(0);
    const ev = await sb.run(worktrees[0]!.dir, ['evidence', '--json']);
    expect(ev.exitCode, ev.stderr).toBe(0);
    const files = (await readdir(ev.json.dir, { recursive: true })) as string[];
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const text = await readFile(path.join(ev.json.dir, f)).then((b) => b.toString('latin1'), () => '');
      expect(text.includes(s1), f).toBe(false);
    }
  }, 300_000);

  it('rotates, and is deleted on destroy', async () => {
    const before = await secretOf(worktrees[1]!.id);
    const r = await sb.run(worktrees[1]!.dir, ['secrets', 'rotate', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.rotated).toEqual(['DB_PASSWORD']);
    expect(await secretOf(worktrees[1]!.id)).not.toBe(before);
    const d = await sb.run(worktrees[1]!.dir, ['destroy', '--keep-worktree', '--json']);
    expect(d.exitCode, d.stderr).toBe(0);
    await expect(access(path.join(sb.home, 'instances', worktrees[1]!.id, 'secrets'))).rejects.toThrow();
  }, 300_000);
});

describe('policy enforcement and lint', () => {
  let sb: Sandbox | undefined;
  afterEach(async () => {
    await sb?.cleanup();
    sb = undefined;
  });

  it('up refuses a blocking finding (exit 2, file:line, nothing left); an allowance with a reason lets it start and is shown and recorded', async () => {
    sb = await makeSandbox(async (repo) => {
      // A literal credential in the environment: SS010, an error rendering does not neutralise.
      const file = path.join(repo, 'compose.yaml');
      const text = await readFile(file, 'utf8');
      const next = text.replace('      WORKER_NAME: ingest-1\n', '      WORKER_NAME: ingest-1\n      VENDOR_API_KEY: sandbox-vendor-key-0001\n');
      if (next === text) throw new Error('worker-ingest environment not found');
      await writeFileText(file, next);
    });
    const refused = await sb.run(sb.repo, ['up', '--json']);
    expect(refused.exitCode).toBe(2);
    expect(refused.json.error.code).toBe('SANDSTACK_POLICY_VIOLATION');
    expect(refused.json.error.message).toMatch(/compose\.yaml:\d+:\d+: error SS010 secret-literal/);
    expect(refused.json.error.message).not.toContain('sandbox-vendor-key-0001');
    expect(refused.json.error.details.gate.failure.stage).toBe('config');
    expect(await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.instance=demo'] } })).toEqual([]);
    expect((await sb.run(sb.repo, ['ls', '--json'])).json.instances.filter((i: any) => i.id === 'demo')).toEqual([]);

    const reason = 'a sandbox-only vendor key with no access to anything real';
    const cfg = path.join(sb.repo, 'sandstack.yaml');
    await writeFileText(cfg, (await readFile(cfg, 'utf8')).replace('version: 1\n', `version: 1\npolicy:\n  allow:\n    - rule: secret-literal\n      service: worker-ingest\n      reason: ${reason}\n`));
    const up = await sb.run(sb.repo, ['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const config = up.json.gate.stages.find((s: any) => s.name === 'config');
    expect(config.details.policy.allowed).toEqual([expect.objectContaining({ ruleId: 'SS010', service: 'worker-ingest', reason })]);
    const st = await sb.run(sb.repo, ['status', '--json']);
    expect(st.json.policy.allowances).toEqual([{ rule: 'secret-literal', ruleId: 'SS010', service: 'worker-ingest', reason }]);
    expect((await sb.run(sb.repo, ['status'])).stdout).toContain('SS010 secret-literal on worker-ingest');
    expect((await sb.run(sb.repo, ['test', '--json'])).exitCode).toBe(0);
    const ev = await sb.run(sb.repo, ['evidence', '--json']);
    expect(ev.json.manifest.notes.join('\n')).toContain('SS010 secret-literal on service worker-ingest');
    expect(await readFile(ev.json.summary, 'utf8')).toContain('SS010');
    expect((await sb.run(sb.repo, ['destroy', '--json'])).exitCode).toBe(0);
  }, 600_000);

  it('up refuses a privileged service before anything starts', async () => {
    sb = await makeSandbox(async (repo) => {
      const file = path.join(repo, 'compose.yaml');
      const text = await readFile(file, 'utf8');
      await writeFileText(file, text.replace('  worker-ingest:\n    build: ./app\n', '  worker-ingest:\n    build: ./app\n    privileged: true\n'));
    });
    const r = await sb.run(sb.repo, ['up', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.message).toMatch(/compose\.yaml:\d+:\d+: error SS005 privileged/);
    expect(await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.instance=demo'] } })).toEqual([]);
  });

  it('refuses allowances naming unknown rules or without a reason', async () => {
    sb = await makeSandbox(async (repo) => {
      const cfg = path.join(repo, 'sandstack.yaml');
      await writeFileText(cfg, (await readFile(cfg, 'utf8')).replace('version: 1\n', 'version: 1\npolicy:\n  allow:\n    - { rule: SS999, service: backend, reason: "because it is needed here" }\n    - { rule: privileged, service: backend, reason: "" }\n'));
    });
    const r = await sb.run(sb.repo, ['up', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(r.json.error.message).toMatch(/sandstack\.yaml:5:\d+: policy\.allow\[0\]\.rule: an unknown rule/);
    expect(r.json.error.message).toMatch(/policy\.allow\[1\]\.reason: give a written reason/);
  });

  it('lint --fix rewrites a real project so that lint and Compose both accept it, keeping comments', async () => {
    sb = await makeSandbox();
    const before = await readFile(path.join(sb.repo, 'compose.yaml'), 'utf8');
    const first = await sb.run(sb.repo, ['lint', '--json']);
    expect(first.exitCode).toBe(1);
    expect(first.json.findings.map((f: any) => f.ruleId).sort()).toEqual(['SS001', 'SS002', 'SS002', 'SS003', 'SS003']);
    expect(first.json.findings.every((f: any) => f.line > 0 && f.column > 0)).toBe(true);
    const fixed = await sb.run(sb.repo, ['lint', '--fix', '--json']);
    expect(fixed.exitCode, fixed.stdout).toBe(0);
    expect(fixed.json.findings).toEqual([]);
    expect(fixed.json.mergedError).toBeUndefined();
    const after = await readFile(path.join(sb.repo, 'compose.yaml'), 'utf8');
    const comments = (t: string) => t.split('\n').filter((l) => l.trim().startsWith('#'));
    expect(comments(after)).toEqual(comments(before));
    expect(after).toContain('"127.0.0.1:${BACKEND_PORT:-8000}:8000"');
    expect(after).not.toMatch(/^\s*container_name:/m);
    const again = await sb.run(sb.repo, ['lint', '--fix', '--json']);
    expect(again.json.fixes.every((f: any) => !f.changed)).toBe(true);
    expect(await readFile(path.join(sb.repo, 'compose.yaml'), 'utf8')).toBe(after);
    // And the fixed project still runs through the whole gate.
    const gate = await sb.run(sb.repo, ['gate', '--fresh', '--json']);
    expect(gate.exitCode, gate.stderr).toBe(0);
  }, 600_000);

  it('writes SARIF 2.1.0 with a result per finding', async () => {
    sb = await makeSandbox();
    const r = await sb.run(sb.repo, ['lint', '--format', 'sarif']);
    expect(r.exitCode).toBe(1);
    const sarif = JSON.parse(r.stdout);
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0].tool.driver.rules.map((x: any) => x.id)).toContain('SS001');
    expect(sarif.runs[0].results).toHaveLength(5);
    expect(sarif.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri).toBe('compose.yaml');
  });
});
