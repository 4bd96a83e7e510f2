/**
 * Fault soak: nothing is left behind, whatever happens to sandstack. Each cycle creates an instance
 * through a random one of `up`, `gate --fresh`, `verify` and `new` + `up` on a small stack, kills the
 * sandstack process with SIGKILL at a random moment (or lets it finish), sometimes kills its Compose
 * processes too, then runs `sandstack gc`. Every instance has a 1 s ttl (instance.ttl), so the
 * interactive ones are collected as expired and the throwaway ones as orphans. At the end: zero
 * containers, volumes, networks and images carrying this state home's label, no registry entries
 * (no leases), no compose process of the soak's projects, and `ls` agrees with Docker.
 *
 * Usage: npx tsx scripts/soak.ts [cycles]   (default 30; SOAK_SEED=<n> replays a run)
 * Prints one line per cycle and a summary; exits 1 when anything was left.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { execa } from 'execa';
import { homeLabelValue } from '../src/identity/identity.js';
import { composeProcesses } from '../src/lifecycle/reap.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const CYCLES = Number(process.argv[2] ?? process.env.SOAK_CYCLES ?? 30);
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
const docker = new Docker();

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed with SOAK_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);

const COMPOSE = `services:
  api:
    image: debian:bookworm-slim
    command: ["perl", "/opt/soak/serve.pl"]
    environment: { PORT: "8080", BODY: "ok" }
    volumes:
      - ./serve.pl:/opt/soak/serve.pl:ro
      - data:/data
    healthcheck:
      test: ["CMD", "perl", "-MIO::Socket::INET", "-e", "exit(IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080', Timeout => 1) ? 0 : 1)"]
      interval: 1s
      retries: 30
  worker:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    init: true
    depends_on: { api: { condition: service_healthy } }
volumes:
  data: {}
`;
const CONFIG = `version: 1
instance:
  ttl: 1s
ports:
  publish:
    - { service: api, port: 8080, protocol: http }
gate:
  timeoutSeconds: 60
  stableSeconds: 1
  probes:
    - { name: api, http: { service: api, port: 8080 } }
tests:
  unit:
    - { name: smoke, run: "true" }
`;

async function sh(cwd: string, file: string, args: string[]): Promise<void> {
  await execa(file, args, { cwd, env: { GIT_AUTHOR_NAME: 's', GIT_AUTHOR_EMAIL: 's@s', GIT_COMMITTER_NAME: 's', GIT_COMMITTER_EMAIL: 's@s' } });
}

async function leftovers(homeLabel: string): Promise<string[]> {
  const filters = { label: [`dev.sandstack.home=${homeLabel}`] };
  const [c, v, n, i] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listVolumes({ filters }), docker.listNetworks({ filters }), docker.listImages({ all: true, filters })]);
  return [
    ...c.map((x) => `container ${x.Names[0]}`),
    ...(v.Volumes ?? []).map((x) => `volume ${x.Name}`),
    ...n.map((x) => `network ${x.Name}`),
    ...i.map((x) => `image ${(x.RepoTags ?? [])[0] ?? x.Id.slice(7, 19)}`),
  ];
}

async function main(): Promise<number> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'sandstack-soak-'));
  // The folder name is the instance id's stem: unique per run, so two soaks on one machine never
  // take each other's compose processes for their own.
  const name = `soak-${SEED}`;
  const repo = path.join(base, name);
  const home = path.join(base, '.home');
  const env = { ...process.env, SANDSTACK_HOME: home };
  await mkdir(repo);
  await writeFile(path.join(repo, 'compose.yaml'), COMPOSE);
  await writeFile(path.join(repo, 'sandstack.yaml'), CONFIG);
  await copyFile(path.join(ROOT, 'test/gate-corpus/support/serve.pl'), path.join(repo, 'serve.pl'));
  await sh(repo, 'git', ['init', '-q', '-b', 'main']);
  await sh(repo, 'git', ['add', '-A']);
  await sh(repo, 'git', ['commit', '-qm', 'soak stack']);
  const cli = (cwd: string, args: string[]) => execa('node', [CLI, ...args], { cwd, env, reject: false, stdin: 'ignore', timeout: 300_000 });
  const stats = { kills: 0, composeKills: 0, finished: 0, reaped: 0, byOp: {} as Record<string, number> };
  console.log(`soak: ${CYCLES} cycles, seed ${SEED} (SOAK_SEED=${SEED} replays it), state home ${home}`);
  const t0 = Date.now();
  try {
    for (let n = 1; n <= CYCLES; n++) {
      const op = (['up', 'gate', 'verify', 'new-up'] as const)[Math.floor(random() * 4)]!;
      stats.byOp[op] = (stats.byOp[op] ?? 0) + 1;
      let cwd = repo;
      if (op === 'new-up') {
        const created = await cli(repo, ['new', `soak/c${n}`, '--json']);
        if (created.exitCode !== 0) throw new Error(`cycle ${n}: new failed: ${created.stderr}`);
        cwd = (JSON.parse(String(created.stdout)) as { instance: { projectDir: string } }).instance.projectDir;
      }
      const args = op === 'gate' ? ['gate', '--fresh', '--json'] : op === 'verify' ? ['verify', '--json'] : ['up', '--ttl', '1s', '--json'];
      const child = cli(cwd, args);
      const letFinish = random() < 0.2;
      const killAfter = Math.floor(random() * 9_000);
      let killed = false;
      const timer = letFinish
        ? undefined
        : setTimeout(() => {
            killed = child.kill('SIGKILL');
          }, killAfter);
      const r = await child;
      if (timer) clearTimeout(timer);
      let composeKilled = 0;
      if (killed && random() < 0.3) {
        for (const p of await composeProcesses((p) => p.startsWith(name))) {
          try {
            process.kill(p.pid, 'SIGKILL');
            composeKilled++;
          } catch {
            // already gone
          }
        }
      }
      if (killed) stats.kills++;
      else stats.finished++;
      stats.composeKills += composeKilled;
      const collected = await cli(repo, ['gc', '--json']);
      if (collected.exitCode !== 0) throw new Error(`cycle ${n}: gc failed (exit ${collected.exitCode}): ${collected.stderr}`);
      const removed = (JSON.parse(String(collected.stdout)) as { items: { kind: string; id: string; removed: boolean }[] }).items.filter((i) => i.removed);
      stats.reaped += removed.filter((i) => i.kind === 'orphan' || i.kind === 'expired').length;
      console.log(
        `cycle ${n}: ${op} ${killed ? `killed after ${killAfter} ms` : `finished (exit ${r.exitCode})`}${composeKilled ? `, killed ${composeKilled} compose processes` : ''}; gc removed ${removed.map((i) => `${i.kind} ${i.id}`).join(', ') || 'nothing'}`,
      );
    }
    // Whatever the last cycle left is past its ttl or orphaned by now.
    await new Promise((r) => setTimeout(r, 1100));
    const last = await cli(repo, ['gc', '--json']);
    stats.reaped += (JSON.parse(String(last.stdout)) as { items: { kind: string; removed: boolean }[] }).items.filter((i) => i.removed && (i.kind === 'orphan' || i.kind === 'expired')).length;
    const problems: string[] = [];
    const left = await leftovers(homeLabelValue(home));
    if (left.length) problems.push(`labelled resources left: ${left.join(', ')}`);
    const ls = JSON.parse(String((await cli(repo, ['ls', '--json'])).stdout)) as { instances: { id: string; state: string }[] };
    if (ls.instances.length) problems.push(`instances still listed (leases held): ${ls.instances.map((i) => `${i.id} (${i.state})`).join(', ')}`);
    const registry = JSON.parse(await readFile(path.join(home, 'registry.json'), 'utf8').catch(() => '{"instances":{}}')) as { instances: Record<string, unknown> };
    if (Object.keys(registry.instances).length) problems.push(`registry entries left: ${Object.keys(registry.instances).join(', ')}`);
    const procs = await composeProcesses((p) => p.startsWith(name));
    if (procs.length) problems.push(`compose processes left: ${procs.map((p) => `${p.pid} (${p.project})`).join(', ')}`);
    const took = Math.round((Date.now() - t0) / 1000);
    console.log(
      `soak summary: ${CYCLES} cycles in ${took} s (${Object.entries(stats.byOp).map(([k, v]) => `${k} ${v}`).join(', ')}); ${stats.kills} sandstack processes killed with SIGKILL, ${stats.finished} finished, ${stats.composeKills} compose processes killed; ${stats.reaped} instances reaped by gc; left behind: ${problems.length ? problems.join('; ') : 'nothing'}`,
    );
    return problems.length ? 1 : 0;
  } finally {
    // Clean up even after a failure: whatever carries this home's label, then the folders.
    await execa('node', [CLI, 'gc', '--worktree-gone'], { cwd: repo, env, reject: false, stdin: 'ignore' });
    const filters = { label: [`dev.sandstack.home=${homeLabelValue(home)}`] };
    for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove({ force: true }).catch(() => undefined);
    for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  }
}

process.exitCode = await main();
