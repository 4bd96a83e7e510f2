/**
 * A remote Docker engine reached over SSH. One OpenSSH control master per (state home, engine) is
 * the only connection: it is started once (in the background, detached, recorded by its control
 * socket), and everything else rides on it:
 *   - the Docker Engine API: the remote engine's socket is forwarded to a local Unix socket, which
 *     dockerode and Compose (DOCKER_HOST=unix://…) use as if the engine were local;
 *   - commands on the remote host (where the engine's socket is, free memory, folders, sync);
 *   - the instances' published ports, forwarded to local 127.0.0.1 ports (`forwardPort`).
 * The system's `ssh` is used (never a library of its own), so the user's ~/.ssh/config, keys, agent,
 * known hosts and ProxyJump apply exactly as for `ssh` itself.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import writeFileAtomic from 'write-file-atomic';
import { SandstackError } from '../errors.js';
import type { Engine } from './engine.js';

export interface SshTarget {
  user?: string;
  host: string;
  port?: number;
}

/** `ssh://[user@]host[:port]` → its parts; undefined when it is not such a URL. */
export function parseSshUrl(url: string): SshTarget | undefined {
  const m = /^ssh:\/\/(?:([^@/\s:]+)@)?([^@/:\s]+)(?::(\d{1,5}))?\/?$/.exec(url.trim());
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { ...(m[1] ? { user: m[1] } : {}), host: m[2]!, ...(port ? { port } : {}) };
}

export interface SshEngineSpec {
  name: string;
  url: string;
  /** Folder on the remote host for synced sources and instance state (relative: to the remote home). */
  root?: string;
}

/** What the remote host told about itself when the connection was made. */
export interface RemoteFacts {
  /** The remote engine's address as its docker CLI sees it (unix:///… or tcp://…). */
  dockerHost: string;
  home: string;
  /** Available memory in bytes (MemAvailable), when /proc/meminfo has it. */
  memAvailable?: number;
  /** PID of the control master these facts were read through. */
  masterPid: number;
  /** When they were read (ms since the epoch). */
  readAt?: number;
}

/**
 * The local folder of an engine connection: its control socket and the forwarded Docker socket.
 * Unix socket paths are limited to ~107 bytes, so it is short and under the temp dir, named by a
 * hash of the state home and the engine.
 */
export function connectionDir(home: string, name: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const hash = createHash('sha256').update(`${home}\0${name}`).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `sandstack-${uid}`, hash);
}

function destination(t: SshTarget): string {
  return t.user ? `${t.user}@${t.host}` : t.host;
}

export class SshConnection {
  readonly target: SshTarget;
  readonly dir: string;
  readonly controlPath: string;
  readonly dockerSocket: string;

  constructor(
    readonly spec: SshEngineSpec,
    home: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    const target = parseSshUrl(spec.url);
    if (!target) {
      throw new SandstackError('SANDSTACK_ENGINE_UNKNOWN', `Engine "${spec.name}": "${spec.url}" is not an ssh URL.`, {
        hint: 'Write it as ssh://[user@]host[:port].',
      });
    }
    this.target = target;
    this.dir = connectionDir(home, spec.name);
    this.controlPath = path.join(this.dir, 'ctl');
    this.dockerSocket = path.join(this.dir, 'docker.sock');
  }

  /** Options every ssh call gets: the control socket, never a prompt, a bounded connect. */
  private baseArgs(): string[] {
    return [
      '-o', `ControlPath=${this.controlPath}`,
      '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=10',
      ...(this.target.port ? ['-p', String(this.target.port)] : []),
    ];
  }

  private ssh(args: string[], opts: { signal?: AbortSignal; timeoutMs?: number; input?: string } = {}) {
    return execa('ssh', [...this.baseArgs(), ...args], {
      env: this.env,
      reject: false,
      stdin: opts.input === undefined ? 'ignore' : 'pipe',
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      cancelSignal: opts.signal,
      timeout: opts.timeoutMs ?? 60_000,
    });
  }

  /** PID of the running control master, or undefined. */
  async masterPid(): Promise<number | undefined> {
    const r = await this.ssh(['-O', 'check', destination(this.target)], { timeoutMs: 10_000 });
    if (r.exitCode !== 0) return undefined;
    const m = /pid=(\d+)/.exec(String(r.stderr));
    return m ? Number(m[1]) : undefined;
  }

  /** Starts the control master unless one runs; fails with a clear error naming the engine. */
  async ensureMaster(signal?: AbortSignal): Promise<number> {
    const running = await this.masterPid();
    if (running) return running;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await rm(this.controlPath, { force: true });
    const log = path.join(this.dir, 'master.log');
    await writeFileAtomic(log, '', { mode: 0o600 });
    const r = await execa(
        'ssh',
        [
          ...this.baseArgs(),
          '-M', '-f', '-N',
          '-o', 'ControlPersist=yes',
          '-o', 'ServerAliveInterval=10',
          '-o', 'ServerAliveCountMax=3',
          '-o', 'ExitOnForwardFailure=yes',
          '-o', 'StreamLocalBindUnlink=yes',
          destination(this.target),
        ],
        // Detached, its own session: a Ctrl-C of the command that started it does not end it.
        { env: this.env, reject: false, stdin: 'ignore', stdout: 'ignore', stderr: { file: log, append: true }, detached: true, cancelSignal: signal, timeout: 30_000 },
      );
    const said = (await readFile(log, 'utf8').catch(() => '')).trim();
    const pid = r.exitCode === 0 ? await this.masterPid() : undefined;
    if (!pid) {
      // Nothing of a failed connection stays behind.
      await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
      throw this.connectError(said || (r.timedOut ? 'no answer within 30 s' : r.exitCode === 0 ? 'the SSH control master did not stay up' : `ssh exited ${r.exitCode ?? 'abnormally'}`), r.isCanceled);
    }
    return pid;
  }

  private connectError(said: string, canceled: boolean): SandstackError {
    if (canceled) return new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while connecting to engine "${this.spec.name}".`);
    const last = said.split(/\r?\n/).filter(Boolean).slice(-3).join('; ');
    const why = /Permission denied|publickey/i.test(said)
      ? 'the SSH key was refused'
      : /Could not resolve hostname/i.test(said)
        ? 'its host name does not resolve'
        : /Connection refused/i.test(said)
          ? 'nothing accepts SSH connections there'
          : /timed out|No route to host|Network is unreachable/i.test(said)
            ? 'it does not answer'
            : 'SSH failed';
    return new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${this.spec.name}" (${this.spec.url}) is not reachable: ${why} (${last}).`, {
      hint: `Check that \`ssh ${this.target.port ? `-p ${this.target.port} ` : ''}${destination(this.target)} docker version\` works without a prompt (key in the agent or ~/.ssh/config), or choose another engine with --engine.`,
      details: { engine: this.spec.name, url: this.spec.url, ssh: last },
    });
  }

  /** Runs a shell command on the remote host through the master. */
  async run(command: string, opts: { signal?: AbortSignal; timeoutMs?: number; input?: string } = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const r = await this.ssh([destination(this.target), command], opts);
    if (r.isCanceled) throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while running a command on engine "${this.spec.name}".`);
    return { exitCode: r.exitCode ?? 255, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  /** Where the remote engine is, its home and free memory: read once per master, then kept. */
  async facts(pid: number, signal?: AbortSignal): Promise<RemoteFacts> {
    const file = path.join(this.dir, 'remote.json');
    const known = await readFile(file, 'utf8').then((t) => JSON.parse(t) as RemoteFacts, () => undefined);
    // Where the engine is stays true for the master's life; free memory is read again after a minute.
    if (known?.masterPid === pid && Date.now() - (known.readAt ?? 0) < 60_000) return known;
    const script = [
      'if command -v docker >/dev/null 2>&1; then docker context inspect --format "{{.Endpoints.docker.Host}}" 2>/dev/null || printf "%s\\n" "${DOCKER_HOST:-unix:///var/run/docker.sock}"; else printf "%s\\n" "${DOCKER_HOST:-unix:///var/run/docker.sock}"; fi',
      'printf "%s\\n" "$HOME"',
      'awk \'/^MemAvailable:/ { print $2 * 1024 }\' /proc/meminfo 2>/dev/null',
    ].join('; ');
    const r = await this.run(script, { signal, timeoutMs: 30_000 });
    const [dockerHost, home, mem] = r.stdout.split(/\r?\n/).map((l) => l.trim());
    if (r.exitCode !== 0 || !dockerHost || !home) {
      throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${this.spec.name}": the remote host did not say where its Docker engine is (${(r.stderr || r.stdout).trim().split(/\r?\n/).slice(-1)[0] || `exit ${r.exitCode}`}).`, {
        hint: 'The remote account needs a POSIX shell; set DOCKER_HOST there if its engine is not at /var/run/docker.sock.',
        details: { engine: this.spec.name },
      });
    }
    const facts: RemoteFacts = { dockerHost, home, masterPid: pid, readAt: Date.now(), ...(mem && Number(mem) > 0 ? { memAvailable: Number(mem) } : {}) };
    await writeFileAtomic(file, JSON.stringify(facts), { mode: 0o600 });
    return facts;
  }

  /** Forwards the remote engine's socket to `dockerSocket` (once per master). */
  async forwardDocker(facts: RemoteFacts): Promise<void> {
    const remote = facts.dockerHost.startsWith('unix://')
      ? facts.dockerHost.slice('unix://'.length)
      : /^tcp:\/\/([^/]+)$/.exec(facts.dockerHost)?.[1];
    if (!remote) {
      throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${this.spec.name}": its Docker host is ${facts.dockerHost}, which sandstack cannot forward (only unix:// and tcp:// are).`, {
        hint: 'Point the remote account at a local engine socket (DOCKER_HOST=unix:///var/run/docker.sock).',
      });
    }
    if (await pingSocket(this.dockerSocket)) return;
    await rm(this.dockerSocket, { force: true });
    const r = await this.ssh(['-O', 'forward', '-L', `${this.dockerSocket}:${remote}`, destination(this.target)], { timeoutMs: 15_000 });
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${this.spec.name}": forwarding its Docker socket failed (${String(r.stderr).trim()}).`, {
        hint: 'The remote sshd must allow stream-local forwarding (AllowStreamLocalForwarding yes, the default).',
      });
    }
  }

  /** The `ssh -O forward|cancel` arguments for local 127.0.0.1:`local` to the host's 127.0.0.1:`remote`. */
  private portSpec(local: number, remote: number): string[] {
    return ['-L', `127.0.0.1:${local}:127.0.0.1:${remote}`, destination(this.target)];
  }

  /** Forwards local 127.0.0.1:`local` to 127.0.0.1:`remote` on the engine's host. */
  async forwardPort(local: number, remote: number): Promise<void> {
    const spec = this.portSpec(local, remote);
    let r = await this.ssh(['-O', 'forward', ...spec], { timeoutMs: 15_000 });
    if (r.exitCode !== 0) {
      // Already open on this master (sync, a second up): closed and opened again, so it is ours.
      await this.ssh(['-O', 'cancel', ...spec], { timeoutMs: 15_000 });
      r = await this.ssh(['-O', 'forward', ...spec], { timeoutMs: 15_000 });
    }
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_PORT_IN_USE', `Engine "${this.spec.name}": could not forward local port ${local} to its port ${remote} (${String(r.stderr).trim()}).`, {
        hint: 'Another program may hold the local port; run the command again to lease another.',
      });
    }
  }

  /**
   * The ports bound on the remote host (tcp: listening; udp: bound), read from /proc/net in one
   * command. When they cannot be read, none are known: the registry decides, and Compose reports a busy one.
   */
  async listeningPorts(signal?: AbortSignal): Promise<BoundPorts> {
    const r = await this.run('for f in tcp tcp6 udp udp6; do echo "# $f"; cat /proc/net/$f 2>/dev/null; done', { signal, timeoutMs: 15_000 });
    return r.exitCode === 0 ? parseProcNet(r.stdout) : { tcp: new Set(), udp: new Set() };
  }

  /** Closes a port forward (nothing when it is not open). */
  async cancelPort(local: number, remote: number): Promise<void> {
    await this.ssh(['-O', 'cancel', ...this.portSpec(local, remote)], { timeoutMs: 15_000 });
  }

  /**
   * Copies local folders to the remote host with rsync over the control master: incremental, only
   * what changed crosses. `mirror`: equal to the local folder (deletions too), without `.git` and
   * what `.gitignore` files exclude; `seed`: only files not yet there; `secret`: equal, files 0600.
   * Everything lands under `root` (0700).
   */
  async sync(root: string, folders: { local: string; remote: string; mode: 'mirror' | 'seed' | 'secret' }[], signal?: AbortSignal): Promise<void> {
    if (folders.length === 0) return;
    const rsh = ['ssh', '-o', `ControlPath=${this.controlPath}`, '-o', 'BatchMode=yes', ...(this.target.port ? ['-p', String(this.target.port)] : [])].map(shq).join(' ');
    // The root is made (0700) by the same remote command that starts rsync: no extra round trip.
    const rsyncPath = `umask 077 && mkdir -p ${shq(root)} && rsync`;
    // The folders are independent: they cross at once, each over the one SSH connection.
    await Promise.all(
      folders.map(async (f) => {
        const mode =
          f.mode === 'mirror'
            ? ['--delete', '--filter=:- .gitignore', '--exclude=/.git']
            : f.mode === 'seed'
              ? ['--ignore-existing']
              : ['--delete', '--chmod=D700,F600'];
        // --inplace: a changed file keeps its inode, so a container that bind-mounts that one file
        // (a config file, a file secret) sees the new content; a renamed-in copy would leave it the old one.
        const r = await execa('rsync', ['-a', '--mkpath', '--inplace', ...mode, '-e', rsh, `--rsync-path=${rsyncPath}`, `${f.local.replace(/\/?$/, '/')}`, `${destination(this.target)}:${f.remote}/`], {
          env: this.env,
          reject: false,
          stdin: 'ignore',
          cancelSignal: signal,
          timeout: 30 * 60_000,
        });
        if (r.isCanceled) throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while syncing ${f.local} to engine "${this.spec.name}".`);
        if ((r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
          throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', 'rsync is not installed on this machine; sandstack syncs sources to a remote engine with it.', {
            hint: 'Install rsync (apt-get install rsync) here and on the remote host.',
          });
        }
        if (r.exitCode !== 0) {
          const said = String(r.stderr).trim().split(/\r?\n/).slice(-3).join('; ');
          const missing = /rsync: (command )?not found|rsync: not found/i.test(said) || r.exitCode === 127;
          throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${this.spec.name}": syncing ${f.local} to ${f.remote} failed${missing ? ': rsync is not installed on the remote host' : ''} (rsync exit ${r.exitCode}: ${said}).`, {
            hint: missing ? 'Install rsync on the remote host.' : 'Check the connection and the free space on the remote host (and that `root:` of the engine is writable), then run the command again.',
            details: { engine: this.spec.name, local: f.local, remote: f.remote },
          });
        }
      }),
    );
  }

  /** Removes folders under `root` on the remote host, then the empty folders they leave. */
  async removeUnder(root: string, remotes: string[]): Promise<void> {
    const inside = remotes.filter((p) => p.startsWith(`${root}/`));
    if (inside.length === 0) return;
    const r = await this.run(`rm -rf -- ${inside.map(shq).join(' ')} && { find ${shq(root)} -depth -type d -empty -delete 2>/dev/null; true; }`, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_DESTROY_INCOMPLETE', `Engine "${this.spec.name}": could not remove ${inside.join(', ')} (${r.stderr.trim() || `exit ${r.exitCode}`}).`, {
        hint: 'Run sandstack destroy again when the engine is reachable.',
      });
    }
  }

}

export interface BoundPorts {
  tcp: Set<number>;
  udp: Set<number>;
}

/**
 * Ports in use from /proc/net/{tcp,tcp6,udp,udp6} text, each file after a `# <name>` line: tcp
 * sockets in state LISTEN (0A), every bound udp socket. Local addresses are `<hex ip>:<hex port>`.
 */
export function parseProcNet(text: string): BoundPorts {
  const out: BoundPorts = { tcp: new Set(), udp: new Set() };
  let proto: 'tcp' | 'udp' | undefined;
  for (const line of text.split('\n')) {
    const head = /^# (tcp|udp)6?$/.exec(line.trim());
    if (head) {
      proto = head[1] as 'tcp' | 'udp';
      continue;
    }
    const m = /^\s*\d+:\s+[0-9A-Fa-f]+:([0-9A-Fa-f]{4})\s+[0-9A-Fa-f]+:[0-9A-Fa-f]{4}\s+([0-9A-Fa-f]{2})\s/.exec(line);
    if (!m || !proto) continue;
    if (proto === 'tcp' && m[2]!.toUpperCase() !== '0A') continue;
    out[proto].add(parseInt(m[1]!, 16));
  }
  return out;
}

/** A word for a POSIX shell: single-quoted. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** True when a Docker engine answers `/_ping` on the Unix socket. */
async function pingSocket(socketPath: string): Promise<boolean> {
  try {
    await Promise.race([
      new Docker({ socketPath }).ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5_000).unref()),
    ]);
    return true;
  } catch {
    return false;
  }
}

export interface SshEngine extends Engine {
  connection: SshConnection;
  facts: RemoteFacts;
}

/**
 * Opens (or reuses) the connection to a remote engine and returns it as an Engine: the Docker API
 * and Compose go through the forwarded socket; paths under the state home map to the remote root.
 */
export async function openSshEngine(spec: SshEngineSpec, opts: { home: string; env: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<SshEngine> {
  const connection = new SshConnection(spec, opts.home, opts.env);
  const pid = await connection.ensureMaster(opts.signal);
  const facts = await connection.facts(pid, opts.signal);
  await connection.forwardDocker(facts);
  const root = remoteRoot(spec, facts, opts.home);
  return {
    name: spec.name,
    endpoint: spec.url,
    remote: true,
    docker: new Docker({ socketPath: connection.dockerSocket }),
    composeEnv: { DOCKER_HOST: `unix://${connection.dockerSocket}` },
    // The instance's state folder, mirrored under the root (unique per state home and instance).
    filesRoot: (instanceDir) => path.posix.join(root, 'fs', path.resolve(instanceDir)),
    sync: (folders, signal) => connection.sync(root, folders, signal),
    removeFiles: (files) => connection.removeUnder(root, [files]),
    forward: async (leases) => {
      for (const l of leases) if (l.localPort) await connection.forwardPort(l.localPort, l.hostPort);
    },
    unforward: async (leases) => {
      for (const l of leases) if (l.localPort) await connection.cancelPort(l.localPort, l.hostPort);
    },
    portProbe: async (signal) => {
      const busy = await connection.listeningPorts(signal);
      return async (port, protocol) => !busy[protocol].has(port);
    },
    connection,
    facts,
  };
}

/**
 * The folder on the remote host that holds this state home's synced sources and instance state:
 * `<root>/<hash of the local state home>` (so two machines, or two state homes, sharing one remote
 * account never share folders).
 */
export function remoteRoot(spec: SshEngineSpec, facts: Pick<RemoteFacts, 'home'>, home: string): string {
  const base = spec.root ?? '.sandstack-remote';
  const abs = path.posix.isAbsolute(base) ? base : path.posix.join(facts.home, base);
  return path.posix.join(abs, createHash('sha256').update(`${os.hostname()}\0${home}`).digest('hex').slice(0, 12));
}
