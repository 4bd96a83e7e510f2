/**
 * Which engine: names (`local`, the user config's engines, ssh:// URLs, Docker contexts) become
 * engine specs, specs become open engines, and a new instance without a chosen engine is placed on
 * the least-loaded reachable engine of the user's pool.
 */
import os from 'node:os';
import { execa } from 'execa';
import type { UserConfig } from '../config/user.js';
import { SandstackError } from '../errors.js';
import { localEngine, type Engine } from './engine.js';
import { openSshEngine, parseSshUrl, type SshEngine } from './ssh.js';
import { engineVersion } from './docker.js';

export interface EngineSpec {
  name: string;
  /** ssh://… for a remote engine; absent for `local`. */
  url?: string;
  /** Folder on the remote host (user config `root`). */
  root?: string;
  /** At most this many instances (user config `capacity`). */
  capacity?: number;
}

/** Where a choice came from, for messages. */
export type EngineSource = '--engine' | 'SANDSTACK_ENGINE' | 'sandstack.yaml';

/** An engine name from an ssh URL: its host, and its port when not 22 (`build-1`, `10.0.0.5-2222`). */
export function nameFromUrl(url: string): string {
  const t = parseSshUrl(url);
  if (!t) return url;
  return `${t.host}${t.port && t.port !== 22 ? `-${t.port}` : ''}`.replace(/[^A-Za-z0-9._-]/g, '-');
}

/** The engines the user config lists, `local` always first. */
export function configuredEngines(user: UserConfig): EngineSpec[] {
  const out: EngineSpec[] = [{ name: 'local', ...(user.engines?.local?.capacity ? { capacity: user.engines.local.capacity } : {}) }];
  for (const [name, e] of Object.entries(user.engines ?? {})) {
    if (name === 'local') continue;
    out.push({ name, ...(e.url ? { url: e.url } : {}), ...(e.root ? { root: e.root } : {}), ...(e.capacity ? { capacity: e.capacity } : {}) });
  }
  return out;
}

/**
 * The spec an engine name stands for: `local`; a name from the user config; an ssh:// URL (named by
 * its host, unless the user config lists the same URL under a name); or a Docker context whose
 * endpoint is an ssh:// URL. Anything else is SANDSTACK_ENGINE_UNKNOWN (exit 2) listing the choices.
 */
export async function engineSpec(value: string, user: UserConfig, env: NodeJS.ProcessEnv, source: EngineSource): Promise<EngineSpec> {
  const known = configuredEngines(user);
  const byName = known.find((e) => e.name === value);
  if (byName) return byName;
  if (value.startsWith('ssh://')) {
    if (!parseSshUrl(value)) {
      throw new SandstackError('SANDSTACK_ENGINE_UNKNOWN', `Engine "${value}" (from ${source}) is not a valid ssh URL.`, { hint: 'Write it as ssh://[user@]host[:port].' });
    }
    return known.find((e) => e.url === value) ?? { name: nameFromUrl(value), url: value };
  }
  const context = await dockerContextHost(value, env);
  if (context?.startsWith('ssh://') && parseSshUrl(context)) return { name: value, url: context };
  const names = known.map((e) => e.name).join(', ');
  throw new SandstackError('SANDSTACK_ENGINE_UNKNOWN', `Engine "${value}" (from ${source}) is not known${context ? ` (the Docker context "${value}" points at ${context}, which is not an ssh:// engine)` : ''}.`, {
    hint: `Use one of: ${names}; an ssh://[user@]host[:port] URL; or a Docker context with an ssh:// endpoint. Engines are listed under \`engines:\` in the user config (sandstack engines shows them).`,
    details: { engine: value, source, known: known.map((e) => e.name) },
  });
}

/** The endpoint of a Docker context, or undefined when there is no such context (or no docker CLI). */
async function dockerContextHost(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return undefined;
  const r = await execa('docker', ['context', 'inspect', name, '--format', '{{.Endpoints.docker.Host}}'], { env, reject: false, stdin: 'ignore', timeout: 10_000 });
  return r.exitCode === 0 ? String(r.stdout).trim() || undefined : undefined;
}

/**
 * The spec of the engine a registry record names: the user config's entry when it still lists the
 * same name at the same URL (its `root`, `capacity`), else the name and URL as recorded.
 */
export function recordedEngineSpec(recorded: { name: string; endpoint: string }, user: UserConfig | undefined): EngineSpec {
  if (recorded.endpoint === 'local') return configuredEngines(user ?? {})[0]!;
  const listed = user ? configuredEngines(user).find((e) => e.name === recorded.name && e.url === recorded.endpoint) : undefined;
  return listed ?? { name: recorded.name, url: recorded.endpoint };
}

/**
 * Opens, at once, each remote engine the records name (with the user config's settings for it):
 * the open engine, or the error that says why it could not be reached.
 */
export async function openRecordedEngines(
  records: { engine?: { name: string; endpoint: string } }[],
  opts: { home: string; env: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<Map<string, Engine | Error>> {
  const recorded = new Map(records.flatMap((r) => (r.engine ? [[r.engine.name, r.engine] as const] : [])));
  const out = new Map<string, Engine | Error>();
  if (recorded.size === 0) return out;
  const { loadUserConfig } = await import('../config/user.js');
  const user = (await loadUserConfig(opts.env).catch(() => undefined))?.config;
  await Promise.all(
    [...recorded.values()].map(async (e) => {
      out.set(e.name, await openEngine(recordedEngineSpec(e, user), opts).catch((err: Error) => err));
    }),
  );
  return out;
}

/** Opens an engine: the local one (reusing `local` when given) or a remote one over SSH. */
export async function openEngine(spec: EngineSpec, opts: { home: string; env: NodeJS.ProcessEnv; signal?: AbortSignal; local?: Engine }): Promise<Engine> {
  if (!spec.url) return opts.local ?? localEngine();
  return openSshEngine({ name: spec.name, url: spec.url, ...(spec.root ? { root: spec.root } : {}) }, opts);
}

/** What `engines` shows of one engine, and what placement weighs. */
export interface EngineStatus {
  name: string;
  endpoint: string;
  reachable: boolean;
  /** Why not, when not reachable. */
  error?: string;
  dockerVersion?: string;
  apiVersion?: string;
  /** sandstack instances of this state home on the engine (from the registry). */
  instances: number;
  capacity?: number;
  /** Bytes of memory available on the engine's host, when known. */
  memAvailable?: number;
  inPool: boolean;
}

/** Opens an engine and reads its versions and free memory; never throws (an unreachable engine says why). */
export async function probeEngine(spec: EngineSpec, opts: { home: string; env: NodeJS.ProcessEnv; signal?: AbortSignal; local?: Engine; instances: number; inPool: boolean }): Promise<{ status: EngineStatus; engine?: Engine }> {
  const base = { name: spec.name, endpoint: spec.url ?? 'local', instances: opts.instances, inPool: opts.inPool, ...(spec.capacity ? { capacity: spec.capacity } : {}) };
  let engine: Engine;
  try {
    engine = await openEngine(spec, opts);
  } catch (e) {
    return { status: { ...base, reachable: false, error: (e as Error).message } };
  }
  const v = await engineVersion(engine.docker);
  if ('error' in v) return { status: { ...base, reachable: false, error: `the Docker engine does not answer (${v.error})` }, engine };
  const memAvailable = engine.remote ? (engine as SshEngine).facts.memAvailable : os.freemem();
  return { status: { ...base, reachable: true, dockerVersion: v.version, apiVersion: v.apiVersion, ...(memAvailable ? { memAvailable } : {}) }, engine };
}

/**
 * The pool engine a new instance goes to: among reachable engines with room (fewer instances than
 * their capacity), the one with the lowest load (instances per capacity slot; an engine without a
 * capacity counts its instances), ties broken by more free memory, then by the pool's order.
 */
export function placeOn(candidates: EngineStatus[]): EngineStatus | undefined {
  const load = (s: EngineStatus) => s.instances / (s.capacity ?? 1);
  const open = candidates.map((s, i) => ({ s, i })).filter(({ s }) => s.reachable && (s.capacity === undefined || s.instances < s.capacity));
  open.sort((a, b) => load(a.s) - load(b.s) || (b.s.memAvailable ?? 0) - (a.s.memAvailable ?? 0) || a.i - b.i);
  return open[0]?.s;
}

