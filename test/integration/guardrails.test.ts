/**
 * Guardrails on the real engine. Egress: a service with `egress: none` reaches its peer, but neither a
 * port on the host nor a host outside the stack, while a normal service reaches both. "Outside" is a test
 * host in a network namespace this test creates (veth 10.213.77.1 <-> 10.213.77.2); no traffic goes
 * anywhere else. Secrets: different per instance, and in no container log, status output, sandstack
 * process argument list, render output or evidence file; rotated on demand; gone after destroy.
 */
import { randomBytes } from 'node:crypto';
import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('attaches the service only to an internal network of its instance', async () => {
    const info = await docker.getContainer(await containerOf('demo', 'worker-backtest')).inspect();
    const nets = Object.keys(info.NetworkSettings.Networks);
    expect(nets).toEqual(['demo_sandstack_internal']);
    const net = await docker.getNetwork('demo_sandstack_internal').inspect();
    expect(net.Internal).toBe(true);
    expect(net.Labels['dev.sandstack.instance']).toBe('demo');
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
