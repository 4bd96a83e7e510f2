/**
 * Runs one conformance project with one Compose version: a temp git copy, sandstack init, lint,
 * render, then Compose's own config of the source and of the rendered model. Every step records
 * its outcome instead of throwing, so each test can report its own piece.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml, parseDocument, stringify } from 'yaml';
import { cleanEnv, docker, git, removeHomeImages, runCli } from '../integration/helpers.js';
import { META_FILE, SUPPORT_DIR, type Meta, type Project } from './meta.js';
import type { Model } from './invariants.js';

export const V1_PATH = '/opt/sandstack/bin/docker-compose-v1';

export interface ComposeVersion {
  label: 'v1' | 'v2';
  /** argv of Compose's own CLI for `config`. */
  argv: string[];
  /** Extra environment for sandstack (forces v1). */
  env: Record<string, string>;
  available: boolean;
  unavailableReason?: string;
}

export const VERSIONS: ComposeVersion[] = [
  { label: 'v2', argv: ['docker', 'compose'], env: {}, available: true },
  {
    label: 'v1',
    argv: [V1_PATH],
    env: { SANDSTACK_COMPOSE: V1_PATH },
    available: existsSync(V1_PATH),
    unavailableReason: `Compose v1 is not installed at ${V1_PATH}`,
  },
];

export interface Step {
  ok: boolean;
  exitCode: number;
  stdout: string;
  stderr: string;
  json?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  error?: string;
}

export interface StaticResult {
  project: string;
  version: 'v1' | 'v2';
  id: string;
  repo: string;
  init?: Step & { fallback?: boolean };
  /** sandstack.yaml as used for the later steps (after init, or the fallback, plus meta.config). */
  config?: Model;
  lint?: Step;
  render?: Step;
  renderedFile?: string;
  /** The rendered file parsed the way the Compose version reads YAML (1.1 for v1). */
  rendered?: Model;
  renderedParseError?: string;
  sourceConfig?: Step & { model?: Model };
  renderedConfig?: Step & { model?: Model };
  /** A step that could not run because an earlier one failed. */
  blocked?: string;
  durationMs: number;
}

/** The parent of every work folder of this run. */
export interface Workspace {
  root: string;
  /** Folders holding one project's repo (for cleanup by worktree label). */
  dirs: string[];
  /** Throwaway instance ids of gate runs (images removed in cleanup if left). */
  gateInstances: string[];
}

const GIT_ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** The host environment without sandstack/Compose selectors that would change what runs. */
export function homeFor(ws: Workspace, version: ComposeVersion): string {
  return path.join(ws.root, version.label, '.sandstack-home');
}

export function repoFor(ws: Workspace, version: ComposeVersion, project: Project): string {
  return path.join(ws.root, version.label, project.name, project.name);
}

export async function sandstack(ws: Workspace, version: ComposeVersion, meta: Meta | undefined, cwd: string, args: string[], timeoutMs = 240_000): Promise<Step> {
  const r = await runCli(homeFor(ws, version), cwd, args, { isolated: true, env: { ...(meta?.env ?? {}), ...version.env }, timeout: timeoutMs });
  return { ok: r.exitCode === 0, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, json: r.json, error: r.timedOut ? `timed out after ${timeoutMs / 1000} s` : undefined };
}

/** Merges meta.config into a sandstack.yaml object: objects merge, arrays concatenate (deduplicated). */
export function mergeConfig(base: Model, patch: Model): Model {
  const out: Model = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    if (Array.isArray(cur) && Array.isArray(v)) {
      const seen = new Set(cur.map((x) => JSON.stringify(x)));
      out[k] = [...cur, ...v.filter((x) => !seen.has(JSON.stringify(x)))];
    } else if (cur && typeof cur === 'object' && !Array.isArray(cur) && v && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = mergeConfig(cur, v as Model);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Parses YAML the way the Compose version reads it: PyYAML (YAML 1.1) for v1, YAML 1.2 core otherwise. */
export function parseAs(version: ComposeVersion, text: string): Model {
  if (version.label === 'v1') return parseDocument(text, { version: '1.1' }).toJS({ maxAliasCount: -1 }) as Model;
  return parseYaml(text, { maxAliasCount: -1 }) as Model;
}

async function composeConfig(version: ComposeVersion, opts: { cwd: string; files: string[]; projectName: string; env: Record<string, string>; allProfiles: boolean }): Promise<Step & { model?: Model }> {
  const [file, ...lead] = version.argv as [string, ...string[]];
  const base = [...lead, '-p', opts.projectName, ...opts.files.flatMap((f) => ['-f', f])];
  const run = (args: string[]) => execa(file, [...base, ...args], { cwd: opts.cwd, env: opts.env, extendEnv: false, reject: false, stdin: 'ignore', timeout: 120_000 });
  let profiles: string[] = [];
  if (opts.allProfiles && version.label === 'v2') {
    const list = await run(['config', '--profiles']);
    if (list.exitCode === 0) profiles = String(list.stdout).split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
  }
  const r = await run([...profiles.flatMap((p) => ['--profile', p]), 'config', ...(version.label === 'v2' ? ['--format', 'json'] : [])]);
  const exitCode = r.exitCode ?? -1;
  const step: Step & { model?: Model } = { ok: exitCode === 0, exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  if (step.ok) {
    try {
      step.model = version.label === 'v2' ? (JSON.parse(step.stdout) as Model) : parseAs(version, step.stdout);
    } catch (e) {
      step.ok = false;
      step.error = `Compose printed a model that does not parse: ${(e as Error).message}`;
    }
  }
  return step;
}

/** The static phase: init, lint, render, Compose config of source and rendered model. */
export async function runStatic(ws: Workspace, version: ComposeVersion, project: Project): Promise<StaticResult> {
  const started = Date.now();
  const meta = project.meta!;
  const repo = repoFor(ws, version, project);
  const id = project.name; // the instance id is the worktree folder name (valid as it is)
  const res: StaticResult = { project: project.name, version: version.label, id, repo, durationMs: 0 };
  try {
    await mkdir(path.dirname(repo), { recursive: true });
    ws.dirs.push(path.dirname(repo));
    await cp(project.dir, repo, { recursive: true, filter: (src) => path.basename(src) !== META_FILE });
    for (const [file, targets] of Object.entries(meta.support ?? {})) {
      for (const target of targets) await cp(path.join(SUPPORT_DIR, file), path.join(repo, target));
    }
    await git(repo, ['init', '-q', '-b', 'main']);
    await git(repo, ['add', '-A']);
    await execa('git', ['commit', '-qm', `${project.name} as found`], { cwd: repo, env: GIT_ENV });

    // init (with the project's -f files), or a fallback sandstack.yaml so the later steps still run.
    const initArgs = meta.init?.args ?? [];
    res.init = await sandstack(ws, version, meta, repo, ['init', ...initArgs, '--json']);
    const configFile = path.join(repo, 'sandstack.yaml');
    if (!res.init.ok || !existsSync(configFile)) {
      res.init.fallback = true;
      const fallback: Model = {
        version: 1,
        ...(project.files.length ? { compose: { files: project.files } } : {}),
        ports: { range: { from: 20000, to: 29999 }, publish: meta.init?.publish ?? [] },
        ...(meta.init?.secrets?.length ? { secrets: meta.init.secrets.map((name) => ({ name })) } : {}),
        ...(meta.init?.required?.length ? { env: { required: meta.init.required } } : {}),
      };
      await writeFile(configFile, stringify(fallback));
    }
    let config = parseYaml(await readFile(configFile, 'utf8')) as Model;
    if (meta.config) {
      config = mergeConfig(config, meta.config);
      await writeFile(configFile, stringify(config));
    }
    res.config = config;

    res.lint = await sandstack(ws, version, meta, repo, ['lint', '--format', 'json']);

    if (meta.render?.refusal) {
      res.render = await sandstack(ws, version, meta, repo, ['render', '--json']);
      return res;
    }
    res.render = await sandstack(ws, version, meta, repo, ['render']);
    if (!res.render.ok) {
      res.blocked = `render exited ${res.render.exitCode}`;
    } else {
      res.renderedFile = path.join(path.dirname(repo), `rendered.${version.label}.yaml`);
      await writeFile(res.renderedFile, res.render.stdout);
      try {
        res.rendered = parseAs(version, res.render.stdout);
      } catch (e) {
        res.renderedParseError = (e as Error).message;
      }
    }

    // Compose's config of the source, the way the user runs it (same files, all profiles), with
    // placeholders for the generated secrets and the instance's variables.
    const secretEnv = Object.fromEntries(((config.secrets ?? []) as { name: string }[]).map((s) => [s.name, `conformance-${s.name.toLowerCase()}`]));
    const sourceEnv = { ...cleanEnv(), ...secretEnv, ...(meta.env ?? {}), COMPOSE_PROJECT_NAME: id, SANDSTACK_INSTANCE_ID: id, SANDSTACK_ENVIRONMENT: String(config.instance?.kind ?? 'local') };
    res.sourceConfig = await composeConfig(version, { cwd: repo, files: project.files, projectName: id, env: sourceEnv, allProfiles: true });

    if (res.renderedFile) {
      // The rendered model stands alone: no project .env, no host variables.
      const minimal: Record<string, string> = {};
      for (const k of ['PATH', 'HOME', 'DOCKER_HOST', 'DOCKER_CONFIG', 'LANG']) if (process.env[k] !== undefined) minimal[k] = process.env[k]!;
      res.renderedConfig = await composeConfig(version, { cwd: path.dirname(res.renderedFile), files: [res.renderedFile], projectName: id, env: minimal, allProfiles: true });
    }
  } catch (e) {
    res.blocked = `harness error: ${(e as Error).stack ?? String(e)}`;
  } finally {
    res.durationMs = Date.now() - started;
  }
  return res;
}

/** What is still labelled for an instance (containers, volumes, networks, images). */
export async function leftovers(id: string): Promise<string[]> {
  const filters = { label: [`dev.sandstack.instance=${id}`] };
  const [c, v, n, i] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listVolumes({ filters }), docker.listNetworks({ filters }), docker.listImages({ filters })]);
  return [
    ...c.map((x) => `container ${x.Names[0]} (${x.State})`),
    ...(v.Volumes ?? []).map((x) => `volume ${x.Name}`),
    ...n.map((x) => `network ${x.Name}`),
    ...i.map((x) => `image ${x.RepoTags?.join(',') || x.Id}`),
  ];
}

/** Anything labelled with a worktree under `dir` (any instance of that copy). */
export async function leftoversUnder(dir: string): Promise<string[]> {
  const filters = { label: ['dev.sandstack.instance'] };
  const mine = (labels: Record<string, string> | undefined | null) => (labels?.['dev.sandstack.worktree'] ?? '').startsWith(dir + path.sep) || labels?.['dev.sandstack.worktree'] === dir;
  const [c, v, n] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listVolumes({ filters }), docker.listNetworks({ filters })]);
  return [
    ...c.filter((x) => mine(x.Labels)).map((x) => `container ${x.Names[0]}`),
    ...(v.Volumes ?? []).filter((x) => mine(x.Labels as Record<string, string>)).map((x) => `volume ${x.Name}`),
    ...n.filter((x) => mine(x.Labels)).map((x) => `network ${x.Name}`),
  ];
}

/** Destroys whatever an instance of any work folder left, removes labelled images, deletes the root. */
export async function cleanupWorkspace(ws: Workspace): Promise<void> {
  const filters = { label: ['dev.sandstack.instance'] };
  const under = (labels: Record<string, string> | undefined | null) => (labels?.['dev.sandstack.worktree'] ?? '').startsWith(ws.root);
  const ids = new Map<string, string>(); // instance id -> worktree
  for (const c of await docker.listContainers({ all: true, filters })) if (under(c.Labels)) ids.set(c.Labels['dev.sandstack.instance']!, c.Labels['dev.sandstack.worktree']!);
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) {
    const l = v.Labels as Record<string, string> | null;
    if (under(l)) ids.set(l!['dev.sandstack.instance']!, l!['dev.sandstack.worktree']!);
  }
  for (const n of await docker.listNetworks({ filters })) if (under(n.Labels)) ids.set(n.Labels!['dev.sandstack.instance']!, n.Labels!['dev.sandstack.worktree']!);
  for (const [id, worktree] of ids) {
    const version = worktree.startsWith(path.join(ws.root, 'v1') + path.sep) ? VERSIONS[1]! : VERSIONS[0]!;
    const cwd = existsSync(worktree) ? worktree : ws.root;
    await sandstack(ws, version, undefined, cwd, ['destroy', '--instance', id, '--json']).catch(() => undefined);
  }
  for (const id of ws.gateInstances) {
    for (const img of await docker.listImages({ filters: { label: [`dev.sandstack.instance=${id}`] } }).catch(() => [])) {
      await docker.getImage(img.Id).remove({ force: true }).catch(() => undefined);
    }
  }
  for (const version of VERSIONS) await removeHomeImages(homeFor(ws, version));
  await rm(ws.root, { recursive: true, force: true });
}
