/**
 * The Compose CLI adapter: detects v2 (`docker compose`) or v1 (`docker-compose`) once per process
 * and runs it with the instance's project name, files and environment.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { SandstackError } from '../errors.js';

export interface ComposeCli {
  variant: 'v1' | 'v2';
  /** Executable and leading args, e.g. ['docker', 'compose'] or ['docker-compose']. */
  argv: [string, ...string[]];
  version: string;
}

async function probe(argv: string[]): Promise<string | undefined> {
  try {
    const r = await execa(argv[0]!, [...argv.slice(1), 'version', '--short'], { reject: false, stdin: 'ignore', timeout: 15_000 });
    if (r.exitCode === 0) return String(r.stdout).trim().replace(/^v/, '');
  } catch {
    // not installed
  }
  return undefined;
}

let detected: Promise<ComposeCli> | undefined;

const CacheSchema = z.strictObject({
  argv: z.array(z.string()).min(1),
  variant: z.enum(['v1', 'v2']),
  version: z.string(),
  executable: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
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

async function fingerprint(argv0: string, env: NodeJS.ProcessEnv): Promise<{ executable: string; size: number; mtimeMs: number } | undefined> {
  const executable = await which(argv0, env);
  if (!executable) return undefined;
  const st = await stat(executable).catch(() => undefined);
  return st ? { executable, size: st.size, mtimeMs: st.mtimeMs } : undefined;
}

/** A detection result saved by an earlier process, if the executable is unchanged and it is recent. */
async function readCache(file: string, env: NodeJS.ProcessEnv): Promise<ComposeCli | undefined> {
  try {
    const c = CacheSchema.parse(JSON.parse(await readFile(file, 'utf8')));
    if (Date.now() - c.checkedAt > CACHE_TTL_MS) return undefined;
    const fp = await fingerprint(c.argv[0]!, env);
    if (!fp || fp.executable !== c.executable || fp.size !== c.size || fp.mtimeMs !== c.mtimeMs) return undefined;
    return { variant: c.variant, argv: c.argv as [string, ...string[]], version: c.version };
  } catch {
    return undefined;
  }
}

async function writeCache(file: string, cli: ComposeCli, env: NodeJS.ProcessEnv): Promise<void> {
  const fp = await fingerprint(cli.argv[0], env);
  if (!fp) return;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, JSON.stringify({ ...cli, ...fp, checkedAt: Date.now() }), { mode: 0o600 });
}

/**
 * Detects Compose once: per process, and across processes through `cacheFile` (keyed on the
 * executable's path, size and mtime, at most a day old). SANDSTACK_COMPOSE forces a command.
 */
export function detectCompose(env: NodeJS.ProcessEnv = process.env, opts: { cacheFile?: string } = {}): Promise<ComposeCli> {
  detected ??= (async () => {
    const cacheFile = env.SANDSTACK_COMPOSE ? undefined : opts.cacheFile;
    const cached = cacheFile ? await readCache(cacheFile, env) : undefined;
    if (cached) return cached;
    const found = await probeCandidates(env);
    if (cacheFile) await writeCache(cacheFile, found, env).catch(() => undefined);
    return found;
  })();
  detected.catch(() => {
    detected = undefined;
  });
  return detected;
}

async function probeCandidates(env: NodeJS.ProcessEnv): Promise<ComposeCli> {
  {
    const candidates: string[][] = env.SANDSTACK_COMPOSE
      ? [env.SANDSTACK_COMPOSE.trim().split(/\s+/)]
      : [['docker', 'compose'], ['docker-compose']];
    for (const argv of candidates) {
      const version = await probe(argv);
      if (version) {
        const variant = /^1\./.test(version) ? 'v1' : 'v2';
        return { variant, argv: argv as [string, ...string[]], version };
      }
    }
    throw new SandstackError('SANDSTACK_COMPOSE_UNAVAILABLE', `Docker Compose was not found (tried ${candidates.map((c) => c.join(' ')).join(', ')}).`, {
      hint: 'Install Compose v2 (the docker compose plugin) or v1 (apt-get install docker-compose), or run scripts/setup-system.sh.',
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
  return { ...env, ...project.env, COMPOSE_PROJECT_NAME: project.projectName };
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

export function spawnCompose(project: ComposeProject, args: string[], opts: RunOptions = {}): ResultPromise {
  const { file, args: full } = composeArgs(project, args);
  return execa(file, full, {
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
  if (r.failed && r.exitCode === undefined) {
    const cause = r.cause as NodeJS.ErrnoException | undefined;
    if (cause?.code === 'ENOENT') {
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
