/**
 * Integration test helpers: run the real sandstack CLI (built to dist/) against the real Docker
 * engine and Compose CLI, in throwaway git repositories holding the demo stack.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { execa, type Options } from 'execa';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const DEMO = path.join(ROOT, 'examples/demo-stack');
export const docker = new Docker();

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  timedOut: boolean;
}

export interface Sandbox {
  /** Parent folder of the test repository and its worktrees. */
  base: string;
  /** The test repository (folder named `demo`). */
  repo: string;
  home: string;
  run: (cwd: string, args: string[], opts?: RunOptions) => Promise<CliResult>;
  /** Destroys every instance created under this sandbox and removes its folders. */
  cleanup: () => Promise<void>;
}

export async function git(cwd: string, args: string[]): Promise<void> {
  await execa('git', args, { cwd, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
}

/** This process's environment without sandstack's, Compose's and the test knobs' variables. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(SANDSTACK_|COMPOSE_|GATE_CORPUS_|CONFORMANCE_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

export type RunOptions = Options & {
  /** Start from `cleanEnv()` instead of inheriting this process's environment as it is. */
  isolated?: boolean;
  /** The CLI to run (default: this checkout's dist/cli/main.js). */
  cli?: string;
};

/** Runs the built CLI with the given state home; `json` is stdout parsed, when it is JSON. */
export async function runCli(home: string, cwd: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const { env, isolated, cli, ...rest } = opts;
  const r = await execa('node', [cli ?? CLI, ...args], {
    ...rest,
    cwd,
    reject: false,
    stdin: 'ignore',
    ...(isolated ? { extendEnv: false, env: { ...cleanEnv(), ...(env ?? {}), SANDSTACK_HOME: home } } : { env: { SANDSTACK_HOME: home, ...(env ?? {}) } }),
  });
  let json: unknown;
  try {
    json = JSON.parse(String(r.stdout));
  } catch {
    json = undefined;
  }
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), json, timedOut: r.timedOut === true };
}

/** A git repository `demo` holding a copy of the demo stack, optionally modified by `mutate`. */
export async function makeSandbox(mutate?: (repo: string) => Promise<void>): Promise<Sandbox> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'sandstack-it-'));
  const repo = path.join(base, 'demo');
  const home = path.join(base, '.sandstack-home');
  await cp(DEMO, repo, { recursive: true });
  if (mutate) await mutate(repo);
  await git(repo, ['init', '-q', '-b', 'main']);
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-qm', 'demo stack']);
  const run = (cwd: string, args: string[], opts: RunOptions = {}): Promise<CliResult> => runCli(home, cwd, args, opts);
  const cleanup = async () => {
    // Remove whatever carries the instance label of an instance whose worktree lies under base.
    const containers = await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.instance'] } });
    const ids = new Set(containers.filter((c) => (c.Labels['dev.sandstack.worktree'] ?? '').startsWith(base)).map((c) => c.Labels['dev.sandstack.instance']!));
    const vols = (await docker.listVolumes({ filters: { label: ['dev.sandstack.instance'] } })).Volumes ?? [];
    for (const v of vols) if ((v.Labels?.['dev.sandstack.worktree'] ?? '').startsWith(base)) ids.add(v.Labels!['dev.sandstack.instance']!);
    for (const id of ids) await run(base, ['destroy', '--instance', id, '--json']);
    await removeHomeImages(home);
    await rm(base, { recursive: true, force: true });
  };
  return { base, repo, home, run, cleanup };
}

/**
 * Removes the images a test state home left on purpose: the shared, content-addressed images that
 * throwaway teardowns keep for the next run of the same source (labelled with the home, not an
 * instance).
 */
export async function removeHomeImages(home: string): Promise<void> {
  const { homeLabelValue } = await import('../../src/identity/identity.js');
  for (const img of await docker.listImages({ filters: { label: [`dev.sandstack.home=${homeLabelValue(home)}`] } }).catch(() => [])) {
    await docker.getImage(img.Id).remove({ force: true }).catch(() => undefined);
  }
}

export async function labelled(id: string): Promise<{ containers: number; volumes: number; networks: number }> {
  const filters = { label: [`dev.sandstack.instance=${id}`] };
  const [c, v, n] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listVolumes({ filters }), docker.listNetworks({ filters })]);
  return { containers: c.length, volumes: (v.Volumes ?? []).length, networks: n.length };
}

export async function http(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body };
}

export function apiUrl(upJson: { services: { name: string; ports: { url: string | null }[] }[] }): string {
  const backend = upJson.services.find((s) => s.name === 'backend');
  const url = backend?.ports.find((p) => p.url)?.url;
  if (!url) throw new Error(`no backend URL in ${JSON.stringify(upJson.services)}`);
  return url;
}

/**
 * Nothing labelled for an instance of this sandbox's worktrees remains (containers, volumes,
 * networks), and no such instance is listed. Docker labels are global: other instances are ignored.
 */
export async function expectSandboxClean(s: Sandbox): Promise<void> {
  const { expect } = await import('vitest');
  const mine = (labels: Record<string, string> | undefined) => (labels?.['dev.sandstack.worktree'] ?? '').startsWith(s.base);
  const filters = { label: ['dev.sandstack.instance'] };
  const containers = await docker.listContainers({ all: true, filters });
  const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  const networks = await docker.listNetworks({ filters });
  expect(containers.filter((c) => mine(c.Labels)).map((c) => c.Names[0])).toEqual([]);
  expect(volumes.filter((v) => mine(v.Labels as Record<string, string>)).map((v) => v.Name)).toEqual([]);
  expect(networks.filter((n) => mine(n.Labels)).map((n) => n.Name)).toEqual([]);
  const ls = await s.run(s.repo, ['ls', '--json']);
  expect(ls.json.instances.filter((i: { worktree: string }) => i.worktree.startsWith(s.base))).toEqual([]);
}

/**
 * Polls `fn` every `everyMs` until it returns something (not undefined); an error thrown by `fn`
 * counts as not yet. Fails after `ms`, naming `what` and the last error.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
