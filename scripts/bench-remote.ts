/**
 * Wall time of `up` on a remote engine next to local, in one run, alternating (never timed
 * assertions in tests): one SSH test host (a network namespace with its own dockerd and sshd, from
 * test/integration/remote-hosts.ts), the demo stack, N rounds of
 *   sandstack up (local engine)            vs  docker compose up -d --wait (local)
 *   sandstack --engine r1 up (remote)      vs  docker compose up -d --wait with DOCKER_HOST=ssh://…
 * each followed by its teardown (not timed). Images are built here once and copied to the host
 * (a namespace reaches no registry); raw Compose runs the same images (--no-build).
 * Usage: npx tsx scripts/bench-remote.ts [rounds]   (needs root, dockerd running, `npm run build`)
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import Docker from 'dockerode';
import { startRemoteHosts, stopMasters } from '../test/integration/remote-hosts.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const rounds = Number(process.argv[2] ?? 3);

async function timed(what: string, cmd: string, args: readonly string[], opts: { cwd: string; env: Record<string, string> }): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await execa(cmd, args, { cwd: opts.cwd, env: opts.env, reject: false, stdin: 'ignore' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.exitCode !== 0) throw new Error(`${what} failed (${r.exitCode}): ${String(r.stderr).split('\n').slice(-8).join('\n')}`);
  return s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'ss-bench-remote-'));
  const repo = path.join(base, 'demo');
  const home = path.join(base, 'home');
  await cp(path.join(ROOT, 'examples/demo-stack'), repo, { recursive: true });
  for (const args of [['init', '-q', '-b', 'main'], ['add', '-A'], ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-qm', 'demo']]) await execa('git', args, { cwd: repo });
  const hosts = await startRemoteHosts(1, { images: ['debian:bookworm-slim'] });
  const h = hosts.hosts[0]!;
  const userConfig = path.join(base, 'user.yaml');
  await writeFile(userConfig, `engines:\n  r1: { url: "${h.url}", root: "${h.root}" }\n`);
  const env = { ...(process.env as Record<string, string>), ...hosts.env, SANDSTACK_HOME: home, SANDSTACK_USER_CONFIG: userConfig };
  const sandstack = (args: string[]) => ['node', [CLI, ...args]] as const;
  try {
    // Build once here, then copy the images (under sandstack's and raw Compose's names) to the host.
    await timed('first local up', ...sandstack(['up', '--instance', 'warm', '--no-gate']), { cwd: repo, env });
    const local = new Docker();
    const tags = (await local.listImages({ filters: { label: ['dev.sandstack.content'] } })).flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith('sandstack/demo-'));
    await timed('destroy warm', ...sandstack(['destroy', '--instance', 'warm', '--keep-images']), { cwd: repo, env });
    const rawTags: string[] = [];
    for (const t of tags) {
      const service = /^sandstack\/demo-([^:]+):/.exec(t)![1]!;
      rawTags.push(`raw-${service}:latest`);
      await execa('docker', ['tag', t, `raw-${service}:latest`]);
    }
    const archive = path.join(base, 'images.tar');
    await execa('docker', ['save', '-o', archive, ...tags, ...rawTags]);
    await execa('docker', ['-H', `unix://${h.socket}`, 'load', '-q', '-i', archive]);
    // Raw Compose runs the same file (its fixed ports, its own names: raw-<service>) on the same images.
    const rawEnv = (remote: boolean) => ({ ...env, DB_PASSWORD: 'bench', ...(remote ? { DOCKER_HOST: `ssh://root@${h.addr}` } : {}) });
    const raw = () => ['docker', ['compose', '-p', 'raw', '-f', path.join(repo, 'compose.yaml'), 'up', '-d', '--wait', '--no-build']] as const;
    const rawDown = (remote: boolean) => execa('docker', ['compose', '-p', 'raw', '-f', path.join(repo, 'compose.yaml'), 'down', '-v', '-t', '0'], { cwd: repo, env: rawEnv(remote), reject: false });
    const results: Record<string, number[]> = { 'sandstack up, local': [], 'raw compose up, local': [], 'sandstack up, remote': [], 'raw compose up, remote (DOCKER_HOST=ssh://)': [] };
    for (let i = 0; i < rounds; i++) {
      results['sandstack up, local']!.push(await timed('local up', ...sandstack(['up', '--instance', 'bl', '--no-gate']), { cwd: repo, env }));
      await timed('local destroy', ...sandstack(['destroy', '--instance', 'bl', '--keep-images']), { cwd: repo, env });
      results['raw compose up, local']!.push(await timed('raw local up', ...raw(), { cwd: repo, env: rawEnv(false) }));
      await rawDown(false);
      results['sandstack up, remote']!.push(await timed('remote up', ...sandstack(['--engine', 'r1', 'up', '--instance', 'br', '--no-gate']), { cwd: repo, env }));
      await timed('remote destroy', ...sandstack(['destroy', '--instance', 'br', '--keep-images']), { cwd: repo, env });
      results['raw compose up, remote (DOCKER_HOST=ssh://)']!.push(await timed('raw remote up', ...raw(), { cwd: repo, env: rawEnv(true) }));
      await rawDown(true);
      process.stderr.write(`round ${i + 1}/${rounds} done\n`);
    }
    const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
    console.log(`| measure (median of ${rounds}, --no-gate, images present) | seconds |`);
    console.log('|---|---:|');
    for (const [k, v] of Object.entries(m)) console.log(`| ${k} | ${v!.toFixed(2)} |`);
    console.log(`\nremote / local (sandstack): ${(m['sandstack up, remote']! / m['sandstack up, local']!).toFixed(2)}`);
    console.log(`sandstack / raw compose, local: ${(m['sandstack up, local']! / m['raw compose up, local']!).toFixed(2)}`);
    console.log(`sandstack / raw compose, remote: ${(m['sandstack up, remote']! / m['raw compose up, remote (DOCKER_HOST=ssh://)']!).toFixed(2)}`);
    for (const t of rawTags) await execa('docker', ['rmi', t], { reject: false });
  } finally {
    await execa('node', [CLI, 'destroy', '--instance', 'bl'], { cwd: repo, env, reject: false });
    await execa('node', [CLI, 'destroy', '--instance', 'br'], { cwd: repo, env, reject: false });
    await stopMasters(home, ['r1']);
    await hosts.teardown();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
