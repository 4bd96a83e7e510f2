/**
 * Test "remote hosts" on this machine: each a network namespace with a veth pair to the host, its own
 * dockerd (own data root, exec root, pidfile, cgroup parent and socket; started with
 * `nsenter --net=…`, since `ip netns exec` remounts /sys and dockerd then fails) and its own sshd
 * (Debian's openssh-server) on the namespace's address, with a key made here. `SetEnv DOCKER_HOST`
 * in sshd's config points remote commands at that host's engine. The client side is an ssh config
 * file given through a small `ssh` wrapper first on PATH (OpenSSH reads ~/.ssh from the passwd home,
 * not $HOME, so `-F` is the way in). Traffic goes only to 127.0.0.1 and to these namespaces.
 *
 * The hosts share this machine's file system; sandstack must still treat them as remote (its synced
 * folders live under the host's own `root`, never in the worktree).
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { connectionDir } from '../../src/engine/ssh.js';

export interface RemoteHost {
  name: string;
  /** Network namespace name. */
  ns: string;
  /** The host's address (the namespace side of the veth pair). */
  addr: string;
  /** ssh://root@<addr> */
  url: string;
  /** Folder for everything of this host (daemon state, keys, logs). */
  dir: string;
  /** Its Docker engine's socket (for assertions made by the test, not by sandstack). */
  socket: string;
  docker: Docker;
  /** Folder the host keeps sandstack's remote files in (the engine's `root`). */
  root: string;
  /** Stops sshd only (the engine keeps running): the host becomes unreachable over SSH. */
  stopSsh(): Promise<void>;
  startSsh(): Promise<void>;
}

export interface RemoteHosts {
  hosts: RemoteHost[];
  /** Folder with the `ssh` wrapper: put it first on PATH for sandstack. */
  binDir: string;
  /** The environment additions sandstack needs to reach the hosts (PATH with the wrapper). */
  env: Record<string, string>;
  /** Tears every host down: daemons, namespaces, folders. Safe to call twice. */
  teardown(): Promise<void>;
}

const run = (cmd: string, args: string[]) => execa(cmd, args, { stdin: 'ignore' });

/** A /24 in 10.213.0.0/16 not in use on this machine (per test run, so parallel runs do not clash). */
async function freeSubnet(): Promise<number> {
  const used = String((await run('ip', ['-o', 'addr'])).stdout);
  for (let i = 0; i < 50; i++) {
    const k = 1 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.213.${k}.`)) return k;
  }
  throw new Error('no free 10.213.x.0/24 subnet for a test host');
}

async function waitFor(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`test host: ${what} did not come up within ${ms / 1000} s`);
}

/** Pid from a pidfile, or undefined. */
async function pidOf(file: string): Promise<number | undefined> {
  const n = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

async function kill(pidFile: string): Promise<void> {
  const pid = await pidOf(pidFile);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/**
 * Starts `count` remote hosts. `images` are copied from this machine's engine into each host's
 * engine (`docker save | docker load`; no registry is reachable from a namespace).
 */
export async function startRemoteHosts(count: number, opts: { images: string[] }): Promise<RemoteHosts> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'ss-remote-'));
  const binDir = path.join(base, 'bin');
  await mkdir(binDir);
  const clientKey = path.join(base, 'client_key');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sandstack-test', '-f', clientKey]);
  const sshConfig = path.join(base, 'ssh_config');
  await writeFile(
    sshConfig,
    ['Host *', '  User root', `  IdentityFile ${clientKey}`, '  IdentitiesOnly yes', '  UserKnownHostsFile /dev/null', '  StrictHostKeyChecking no', '  LogLevel ERROR', ''].join('\n'),
  );
  // The wrapper: every ssh sandstack (or docker) runs reads the test's config.
  await writeFile(path.join(binDir, 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${sshConfig} "$@"\n`);
  await chmod(path.join(binDir, 'ssh'), 0o755);
  await mkdir('/run/sshd', { recursive: true });

  const hosts: RemoteHost[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const teardown = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  };
  // The images, saved once; the hosts start at once, each on its own subnet (chosen one after another).
  const archive = path.join(base, 'images.tar');
  if (opts.images.length) await run('docker', ['save', '-o', archive, ...opts.images]);
  const subnets: number[] = [];
  for (let i = 0; i < count; i++) {
    let k = await freeSubnet();
    while (subnets.includes(k)) k = await freeSubnet();
    subnets.push(k);
  }
  try {
    await Promise.all(subnets.map(async (k, i) => {
      const tag = `${process.pid % 10000}x${i}`;
      const ns = `ssr${tag}`;
      const hostIf = `sv${tag}h`;
      const nsIf = `sv${tag}n`;
      const addr = `10.213.${k}.2`;
      const dir = path.join(base, `host${i}`);
      await mkdir(path.join(dir, 'root'), { recursive: true });
      await run('ip', ['netns', 'add', ns]);
      cleanups.push(async () => void (await run('ip', ['netns', 'del', ns]).catch(() => undefined)));
      await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
      cleanups.push(async () => void (await run('ip', ['link', 'del', hostIf]).catch(() => undefined)));
      await run('ip', ['link', 'set', nsIf, 'netns', ns]);
      await run('ip', ['addr', 'add', `10.213.${k}.1/24`, 'dev', hostIf]);
      await run('ip', ['link', 'set', hostIf, 'up']);
      for (const args of [['addr', 'add', `${addr}/24`, 'dev', nsIf], ['link', 'set', nsIf, 'up'], ['link', 'set', 'lo', 'up']]) await run('ip', ['netns', 'exec', ns, 'ip', ...args]);

      // The engine.
      const socket = path.join(dir, 'docker.sock');
      const dockerd = execa('nsenter', [`--net=/run/netns/${ns}`, 'dockerd', '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'docker.pid'), '--cgroup-parent', `sandstack-${ns}`, '-H', `unix://${socket}`], {
        stdin: 'ignore',
        stdout: { file: path.join(dir, 'dockerd.log') },
        stderr: { file: path.join(dir, 'dockerd.log') },
        detached: true,
        reject: false,
      });
      dockerd.unref();
      cleanups.push(async () => {
        // Containers first (their mounts live under the data root), then the daemon.
        const d = new Docker({ socketPath: socket });
        const all = await d.listContainers({ all: true }).catch(() => []);
        await Promise.all(all.map((c) => d.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
        await kill(path.join(dir, 'docker.pid'));
        await run('umount', ['-R', path.join(dir, 'data')]).catch(() => undefined);
        await run('umount', ['-R', path.join(dir, 'exec')]).catch(() => undefined);
      });
      const hostDocker = new Docker({ socketPath: socket });
      await waitFor(`dockerd in ${ns}`, async () => (await hostDocker.ping(), true), 30_000);
      if (opts.images.length) await run('docker', ['-H', `unix://${socket}`, 'load', '-q', '-i', archive]);

      // sshd.
      const hostKey = path.join(dir, 'host_key');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
      const authorized = path.join(dir, 'authorized_keys');
      await writeFile(authorized, await readFile(`${clientKey}.pub`, 'utf8'), { mode: 0o600 });
      const sshdConfig = path.join(dir, 'sshd_config');
      await writeFile(
        sshdConfig,
        [
          `ListenAddress ${addr}`,
          `HostKey ${hostKey}`,
          `PidFile ${path.join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorized}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'AllowTcpForwarding yes',
          'AllowStreamLocalForwarding yes',
          'MaxSessions 100',
          'MaxStartups 100',
          `SetEnv DOCKER_HOST=unix://${socket}`,
          '',
        ].join('\n'),
      );
      const sshdPid = path.join(dir, 'sshd.pid');
      const startSsh = async () => {
        await execa('nsenter', [`--net=/run/netns/${ns}`, '/usr/sbin/sshd', '-f', sshdConfig, '-E', path.join(dir, 'sshd.log')], { stdin: 'ignore' });
        await waitFor(`sshd on ${addr}`, async () => existsSync(sshdPid), 10_000);
      };
      const stopSsh = async () => {
        await kill(sshdPid);
        await rm(sshdPid, { force: true });
      };
      await startSsh();
      cleanups.push(stopSsh);
      hosts[i] = { name: `host${i}`, ns, addr, url: `ssh://root@${addr}`, dir, socket, docker: hostDocker, root: path.join(dir, 'root'), stopSsh, startSsh };
    }));
  } catch (e) {
    await teardown();
    throw e;
  }
  return { hosts, binDir, env: { PATH: `${binDir}:${process.env.PATH ?? ''}` }, teardown };
}

/** Kills an engine's SSH control master (as a dropped connection would end it), leaving its files. */
export async function killMaster(home: string, engine: string): Promise<void> {
  await execa('pkill', ['-KILL', '-f', `ControlPath=${connectionDir(home, engine)}/ctl`], { reject: false });
}

/** Ends the SSH control masters sandstack keeps for a state home's engines (they outlive commands by design). */
export async function stopMasters(home: string, engines: string[]): Promise<void> {
  for (const name of engines) {
    const dir = connectionDir(home, name);
    await execa('pkill', ['-f', `ControlPath=${dir}/ctl`], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
}
