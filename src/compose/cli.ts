/**
 * The Compose CLI adapter: detects v2 (`docker compose`, preferred) or v1 (`docker-compose`) once
 * per process (and across processes through a cache) and runs it with the instance's project name, files and environment.
 */
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, mkdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import writeFileAtomic from 'write-file-atomic';
import * as z from 'zod';
import { SandstackError } from '../errors.js';

export interface ComposeCli {
  variant: 'v1' | 'v2';
  /** Executable and leading args, e.g. ['docker', 'compose'] or ['docker-compose']. */
  argv: [string, ...string[]];
  version: string;
}

type ProbeResult = { version: string } | { problem: string };

/**
 * Asks one candidate for its version. A candidate that is slow to answer (Compose v1 is a Python
 * program; under load it can take seconds) is asked once more with a longer limit, and what went
 * wrong is kept, so "not installed" is never said of a Compose that was only slow or broken.
 */
async function probe(argv: string[], env: NodeJS.ProcessEnv): Promise<ProbeResult> {
  let problem = 'not found';
  for (const timeout of [15_000, 45_000]) {
    const r = await execa(argv[0]!, [...argv.slice(1), 'version', '--short'], { env, reject: false, stdin: 'ignore', timeout });
    if (r.exitCode === 0) return { version: String(r.stdout).trim().replace(/^v/, '') };
    if (r.timedOut) {
      problem = `did not answer \`version\` within ${timeout / 1000} s`;
      continue;
    }
    const cause = r.cause as NodeJS.ErrnoException | undefined;
    if (cause?.code === 'ENOENT') return { problem: 'not found' };
    if (cause?.code === 'EACCES') return { problem: 'not executable' };
    const said = String(r.stderr || r.stdout).trim().split(/\r?\n/).slice(-1)[0];
    return { problem: `\`version\` exited ${r.exitCode ?? 'abnormally'}${said ? `: ${said}` : ''}` };
  }
  return { problem };
}

/** Per process: one detection per (environment that decides it, cache file). */
const detected = new Map<string, Promise<ComposeCli>>();

/**
 * A saved detection is only as good as the files it was made from: the executables of both
 * candidates (`docker` with its Compose plugin, `docker-compose` on PATH) are fingerprinted, so
 * installing, upgrading or removing either one (e.g. v2 arriving beside v1) makes the next process
 * detect again instead of keeping the old answer for a day.
 */
const Fingerprint = z.record(z.string(), z.string().nullable());
type Fingerprint = z.infer<typeof Fingerprint>;

const CacheSchema = z.strictObject({
  argv: z.array(z.string()).min(1),
  variant: z.enum(['v1', 'v2']),
  version: z.string(),
  fingerprint: Fingerprint,
  checkedAt: z.number(),
});
const CACHE_TTL_MS = 24 * 3600 * 1000;

/** Finds an executable on PATH (what the shell would run). */
async function which(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (name.includes('/')) return name;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      await access(p, fsConstants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where the docker CLI looks for plugins (the user's config dir first, then the system dirs). */
export function composePluginPaths(env: NodeJS.ProcessEnv): string[] {
  const config = env.DOCKER_CONFIG || (env.HOME ? path.join(env.HOME, '.docker') : undefined);
  return [
    ...(config ? [path.join(config, 'cli-plugins')] : []),
    '/usr/local/lib/docker/cli-plugins',
    '/usr/local/libexec/docker/cli-plugins',
    '/usr/lib/docker/cli-plugins',
    '/usr/libexec/docker/cli-plugins',
  ].map((dir) => path.join(dir, 'docker-compose'));
}

/** `<real path> <size> <mtime>` of a file, or null when it does not exist. */
async function fileStamp(file: string): Promise<string | null> {
  const st = await stat(file).catch(() => undefined);
  if (!st) return null;
  const real = await realpath(file).catch(() => file);
  return `${real} ${st.size} ${st.mtimeMs}`;
}

/** The state of every file that decides which Compose is found: both candidates and the plugins. */
async function candidatesFingerprint(env: NodeJS.ProcessEnv): Promise<Fingerprint> {
  const fp: Fingerprint = {};
  for (const name of ['docker', 'docker-compose']) {
    const exe = await which(name, env);
    fp[`path:${name}`] = exe ? ((await fileStamp(exe)) ?? exe) : null;
  }
  for (const plugin of composePluginPaths(env)) fp[`plugin:${plugin}`] = await fileStamp(plugin);
  return fp;
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? null) === (b[k] ?? null));
}

/** A detection result saved by an earlier process, if no candidate changed since and it is recent. */
async function readCache(file: string, env: NodeJS.ProcessEnv): Promise<ComposeCli | undefined> {
  try {
    const c = CacheSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    if (Date.now() - c.checkedAt > CACHE_TTL_MS || c.checkedAt > Date.now()) return undefined;
    if (!sameFingerprint(c.fingerprint, await candidatesFingerprint(env))) return undefined;
    return { variant: c.variant, argv: c.argv as [string, ...string[]], version: c.version };
  } catch {
    return undefined;
  }
}

async function writeCache(file: string, cli: ComposeCli, fingerprint: Fingerprint): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, JSON.stringify({ ...cli, fingerprint, checkedAt: Date.now() }), { mode: 0o600 });
}

/**
 * Detects Compose once: per process, and across processes through `cacheFile` (valid for a day
 * while neither candidate's executable nor any Compose plugin file changed). v2 (`docker compose`)
 * is preferred over v1 (`docker-compose`). SANDSTACK_COMPOSE forces a command (whitespace-separated
 * argv, e.g. `/opt/sandstack/bin/docker-compose-v1`) and bypasses the cache. `fresh` ignores both
 * memories and probes again (the result still refreshes them).
 */
export function detectCompose(env: NodeJS.ProcessEnv = process.env, opts: { cacheFile?: string; fresh?: boolean } = {}): Promise<ComposeCli> {
  const key = JSON.stringify([env.SANDSTACK_COMPOSE ?? null, env.PATH ?? null, env.DOCKER_CONFIG ?? null, env.HOME ?? null, opts.cacheFile ?? null]);
  const known = opts.fresh ? undefined : detected.get(key);
  if (known) return known;
  const p = (async () => {
    const cacheFile = env.SANDSTACK_COMPOSE ? undefined : opts.cacheFile;
    const cached = cacheFile && !opts.fresh ? await readCache(cacheFile, env) : undefined;
    if (cached) return cached;
    // Fingerprint before probing: a change while probing then shows up as a mismatch next time.
    const fingerprint = cacheFile ? await candidatesFingerprint(env) : undefined;
    const found = await probeCandidates(env);
    if (cacheFile && fingerprint) await writeCache(cacheFile, found, fingerprint).catch(() => undefined);
    return found;
  })();
  detected.set(key, p);
  p.catch(() => {
    if (detected.get(key) === p) detected.delete(key);
  });
  return p;
}

async function probeCandidates(env: NodeJS.ProcessEnv): Promise<ComposeCli> {
  {
    const candidates: string[][] = env.SANDSTACK_COMPOSE
      ? [env.SANDSTACK_COMPOSE.trim().split(/\s+/)]
      : [['docker', 'compose'], ['docker-compose']];
    const tried: string[] = [];
    for (const argv of candidates) {
      const r = await probe(argv, env);
      if ('version' in r) {
        const variant = /^1\./.test(r.version) ? 'v1' : 'v2';
        return { variant, argv: argv as [string, ...string[]], version: r.version };
      }
      tried.push(`${argv.join(' ')}: ${r.problem}`);
    }
    throw new SandstackError('SANDSTACK_COMPOSE_UNAVAILABLE', `No usable Docker Compose (${tried.join('; ')}).`, {
      details: { tried },
      hint: 'Run scripts/setup-system.sh (installs the Docker engine and Compose v2), or install the docker compose plugin; SANDSTACK_COMPOSE names another Compose command.',
    });
  }
}

export interface ComposeProject {
  cli: ComposeCli;
  projectName: string;
  projectDir: string;
  /** Compose files; empty means Compose's own discovery in projectDir. */
  files: string[];
  profiles: string[];
  /** sandstack's variables for interpolation (instance, ports, data root, secrets). */
  env: Record<string, string>;
  /** Host environment variables Compose may see besides those it needs to run (env.allow, env.required). */
  allowEnv: string[];
  /** What points Compose at the instance's engine (engine/engine.ts `composeEnv`); replaces the host's DOCKER_HOST/DOCKER_CONTEXT. */
  engineEnv?: Record<string, string>;
}

/**
 * What Compose itself needs from the host environment to run (locate the engine, build through a
 * proxy, write temp files). Nothing else of the host's environment reaches Compose, and so nothing
 * else can be interpolated into the model or passed through into containers, unless allowed.
 */
export const COMPOSE_RUNTIME_ENV = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TMPDIR', 'TZ', 'TERM',
  'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME',
  'DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_CONTEXT', 'DOCKER_API_VERSION', 'DOCKER_BUILDKIT',
  'COMPOSE_DOCKER_CLI_BUILD', 'COMPOSE_HTTP_TIMEOUT', 'COMPOSE_PARALLEL_LIMIT', 'COMPOSE_INTERACTIVE_NO_CLI',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
];

/** The environment a Compose process gets: runtime essentials, allowed host variables, sandstack's own. */
export function composeEnv(project: ComposeProject, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of [...COMPOSE_RUNTIME_ENV, ...project.allowEnv]) {
    const v = base[k];
    if (v !== undefined) env[k] = v;
  }
  if (project.engineEnv?.DOCKER_HOST) delete env.DOCKER_CONTEXT;
  return { ...env, ...project.engineEnv, ...project.env, COMPOSE_PROJECT_NAME: project.projectName };
}

export function composeArgs(project: ComposeProject, args: string[]): { file: string; args: string[] } {
  const [file, ...lead] = project.cli.argv;
  const out = [...lead, '-p', project.projectName, '--project-directory', project.projectDir];
  for (const f of project.files) out.push('-f', f);
  for (const p of project.profiles) out.push('--profile', p);
  return { file, args: [...out, ...args] };
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called with each output line (stdout and stderr) while the command runs. */
  onLine?: (line: string) => void;
  /** Attach the terminal (logs -f, exec). */
  interactive?: boolean;
  /** Stop the command after this long (SANDSTACK_TIMEOUT). */
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Last lines of combined output, for error messages. */
  tail: string[];
}

/**
 * On Linux, `setpriv --pdeathsig KILL` (util-linux) makes the kernel kill Compose when the sandstack
 * process that started it dies, also by SIGKILL: no `compose up` outlives its owner.
 */
const PDEATHSIG = process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];

/**
 * The argv that runs Compose so that it dies with sandstack: under `setpriv --pdeathsig KILL`, and
 * for `docker compose` the Compose plugin itself (standalone, as `docker-compose` runs it), since the
 * docker CLI starts the plugin as its own child, which the parent-death signal would not reach.
 */
export function ownedComposeArgv(project: ComposeProject, file: string, composeArgv: string[]): string[] {
  if (PDEATHSIG.length === 0) return [file, ...composeArgv];
  if (project.cli.variant === 'v2' && file === 'docker' && composeArgv[0] === 'compose') {
    const plugin = composePluginPaths(composeEnv(project)).find((p) => existsSync(p));
    if (plugin) return [...PDEATHSIG, plugin, ...composeArgv.slice(1)];
  }
  return [...PDEATHSIG, file, ...composeArgv];
}

export function spawnCompose(project: ComposeProject, args: string[], opts: RunOptions = {}): ResultPromise {
  const { file, args: composeArgv } = composeArgs(project, args);
  const [bin, ...full] = ownedComposeArgv(project, file, composeArgv);
  return execa(bin!, full, {
    cwd: project.projectDir,
    env: composeEnv(project),
    extendEnv: false,
    reject: false,
    stdin: opts.interactive ? 'inherit' : 'ignore',
    stdout: opts.interactive ? 'inherit' : 'pipe',
    stderr: opts.interactive ? 'inherit' : 'pipe',
    cancelSignal: opts.signal,
    timeout: opts.timeoutMs,
    forceKillAfterDelay: 5_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}

export async function runCompose(project: ComposeProject, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = spawnCompose(project, args, opts);
  const tail: string[] = [];
  const push = (chunk: Buffer | string) => {
    for (const line of String(chunk).split(/\r?\n/)) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 80) tail.shift();
      opts.onLine?.(line);
    }
  };
  child.stdout?.on('data', push);
  child.stderr?.on('data', push);
  const r = await child;
  if (r.timedOut) {
    throw new SandstackError('SANDSTACK_TIMEOUT', `${project.cli.argv.join(' ')} ${args[0] ?? ''} did not finish within ${Math.round((opts.timeoutMs ?? 0) / 1000)} s (the gate deadline); last output:\n${tail.slice(-15).join('\n')}`, {
      hint: 'Raise gate.timeoutSeconds in sandstack.yaml if the stack is just slow to build or start.',
      details: { tail: tail.slice(-30) },
    });
  }
  if (r.isCanceled) {
    throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted: ${project.cli.argv.join(' ')} ${args[0] ?? ''} was stopped.`);
  }
  const setprivFailed = PDEATHSIG.length > 0 && r.exitCode === 127 && /^setpriv: failed to execute/m.test(String(r.stderr ?? ''));
  if (setprivFailed || (r.failed && r.exitCode === undefined)) {
    const cause = r.cause as NodeJS.ErrnoException | undefined;
    if (setprivFailed || cause?.code === 'ENOENT') {
      throw new SandstackError('SANDSTACK_COMPOSE_UNAVAILABLE', `${project.cli.argv[0]} is not installed.`, {
        hint: 'Install Docker and Compose, or run scripts/setup-system.sh.',
      });
    }
  }
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), tail };
}

/** Removes Compose's noise (warnings about orphan containers, the v1 deprecation banner) from an error text. */
export function composeErrorText(stderr: string): string {
  return stderr
    .split(/\r?\n/)
    .filter((l) => l.trim() && !/^WARNING: The Docker Engine you're using|DEPRECATED|legacy builder/i.test(l))
    .slice(-25)
    .join('\n');
}
