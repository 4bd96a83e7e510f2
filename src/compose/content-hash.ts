/**
 * Content addresses of built images: a hash of everything that goes into a service's build (the
 * build context after `.dockerignore`, the Dockerfile, target, args, platform, the user's build
 * labels, additional contexts, and the local image IDs of the base images its FROM lines name), so
 * that every instance of the same source uses one image, `sandstack/<project>-<service>:<hash>`,
 * built once. The state home is part of the address: two state homes never share, or remove, each
 * other's images. A build sandstack cannot address (a remote context, `no_cache`) is built per
 * instance as before.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { DockerfileParser } from 'dockerfile-ast';
import pLimit from 'p-limit';
import { toRecord, type ComposeModel, type ComposeService } from './model.js';

interface DockerIgnore {
  add(patterns: string[]): DockerIgnore;
  ignores(pathname: string): boolean;
}
// A CommonJS module whose export is the factory (its typings describe an ES default export).
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => DockerIgnore;

/** Bumped when what the hash covers changes, so old addresses are never taken for new ones. */
const SCHEME = 'sandstack-content-v1';
const HASH_CHARS = 20;
const READ_CONCURRENCY = 16;

export type ImageAddress = { service: string; hash: string; tag: string } | { service: string; reason: string };

export interface AddressOptions {
  /** The project part of the tags (e.g. the repository's folder name). */
  project: string;
  /** homeLabelValue of the state home (part of the address). */
  home: string;
  /** The local image ID of a base image reference, or undefined when it is not present. */
  imageId: (ref: string) => Promise<string | undefined>;
}

/** A Docker repository path component: lower case letters, digits and single separators. */
export function repoSlug(s: string): string {
  const slug = s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[._-]{2,}/g, '-')
    .replace(/^[._-]+|[._-]+$/g, '');
  return slug || 'project';
}

export function contentTag(project: string, service: string, hash: string): string {
  return `sandstack/${repoSlug(project)}-${repoSlug(service)}:${hash}`;
}

type BuildSpec = Exclude<ComposeService['build'], string | undefined> & Record<string, unknown>;

function buildSpec(svc: ComposeService): BuildSpec | undefined {
  if (svc.build === undefined) return undefined;
  return (typeof svc.build === 'string' ? { context: svc.build } : svc.build) as BuildSpec;
}

function isRemote(context: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || /^git@/.test(context) || /^github\.com\//.test(context);
}

async function fileSha(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * One line per entry of a build context that `.dockerignore` lets through (sorted): directories,
 * files (executable bit, size, sha256) and symbolic links (their target).
 */
export async function contextEntries(context: string, ignoreText: string | undefined): Promise<string[]> {
  const patterns = (ignoreText ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  const files: { rel: string; abs: string; mode: number; size: number }[] = [];
  const lines: string[] = [];
  const walk = async (dir: string, relDir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const rel = relDir ? `${relDir}/${e.name}` : e.name;
      const abs = path.join(dir, e.name);
      const ignored = ig.ignores(rel);
      if (e.isDirectory()) {
        // An ignored folder is skipped whole, unless an exception (!pattern) may take back a part of it.
        if (ignored && !hasExceptions) continue;
        if (!ignored) lines.push(`D ${rel}`);
        await walk(abs, rel);
      } else if (ignored) {
        continue;
      } else if (e.isSymbolicLink()) {
        lines.push(`L ${rel} -> ${await readlink(abs)}`);
      } else if (e.isFile()) {
        const st = await lstat(abs);
        files.push({ rel, abs, mode: st.mode, size: st.size });
      }
    }
  };
  await walk(context, '');
  const limit = pLimit(READ_CONCURRENCY);
  const shas = await Promise.all(files.map((f) => limit(() => fileSha(f.abs))));
  files.forEach((f, i) => lines.push(`F ${f.rel} ${f.mode & 0o111 ? 'x' : '-'} ${f.size} ${shas[i]}`));
  return lines.sort();
}

/** `${VAR}`, `${VAR:-default}` and `$VAR` in a FROM line, from the ARGs before the first FROM and the build args. */
function expandArgs(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const value = vars[name];
    if (op === '-') return value ? value : (word ?? '');
    if (op === '+') return value ? (word ?? '') : '';
    return value ?? '';
  });
}

/** The external images a Dockerfile's FROM lines name (not its own stages, not scratch), with build args applied. */
export function baseImages(dockerfile: string, args: Record<string, string>): string[] {
  const doc = DockerfileParser.parse(dockerfile);
  const vars: Record<string, string> = {};
  for (const a of doc.getInitialARGs()) {
    for (const p of a.getProperties()) {
      const name = p.getName();
      vars[name] = args[name] ?? p.getValue() ?? '';
    }
  }
  const stages = new Set<string>();
  const refs: string[] = [];
  for (const from of doc.getFROMs()) {
    const raw = from.getImage();
    if (raw) {
      const ref = expandArgs(raw, vars);
      if (ref && ref !== 'scratch' && !stages.has(ref.toLowerCase())) refs.push(ref);
    }
    const stage = from.getBuildStage();
    if (stage) stages.add(stage.toLowerCase());
  }
  return [...new Set(refs)];
}

async function readIf(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

/** The content hash of one service's build, or why it has none. */
export async function addressOf(service: string, svc: ComposeService, opts: AddressOptions): Promise<ImageAddress> {
  const build = buildSpec(svc)!;
  const context = String(build.context ?? '.');
  if (isRemote(context)) return { service, reason: 'a remote build context' };
  if (build.no_cache === true) return { service, reason: 'build.no_cache' };
  const lines: string[] = [SCHEME, `home ${opts.home}`];
  const dockerfilePath = typeof build.dockerfile === 'string' ? path.resolve(context, build.dockerfile) : path.join(context, 'Dockerfile');
  const inline = typeof build.dockerfile_inline === 'string' ? build.dockerfile_inline : undefined;
  const dockerfile = inline ?? (await readIf(dockerfilePath));
  if (dockerfile === undefined) return { service, reason: `no Dockerfile at ${dockerfilePath}` };
  lines.push(`dockerfile ${createHash('sha256').update(dockerfile).digest('hex')}`);
  // BuildKit reads <Dockerfile>.dockerignore first, then the context's .dockerignore.
  const ignore = (inline ? undefined : await readIf(`${dockerfilePath}.dockerignore`)) ?? (await readIf(path.join(context, '.dockerignore')));
  lines.push(...(await contextEntries(context, ignore)).map((l) => `ctx ${l}`));
  const args = Object.fromEntries(
    Object.entries(toRecord(build.args as never))
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, String(v)]),
  );
  for (const [k, v] of Object.entries(args).sort(([a], [b]) => a.localeCompare(b))) lines.push(`arg ${k}=${v}`);
  if (build.target !== undefined) lines.push(`target ${String(build.target)}`);
  const platforms = [...(Array.isArray(build.platforms) ? (build.platforms as string[]) : []), ...(svc.platform ? [String(svc.platform)] : [])];
  if (platforms.length) lines.push(`platform ${[...platforms].sort().join(',')}`);
  for (const [k, v] of Object.entries(toRecord(build.labels as never)).sort(([a], [b]) => a.localeCompare(b))) lines.push(`label ${k}=${String(v)}`);
  for (const [k, v] of Object.entries(toRecord(build.additional_contexts as never)).sort(([a], [b]) => a.localeCompare(b))) {
    const where = String(v);
    if (/^[a-z-]+:/i.test(where) && !path.isAbsolute(where)) lines.push(`context ${k} ${where}`);
    else lines.push(...(await contextEntries(path.resolve(context, where), undefined)).map((l) => `context ${k} ${l}`));
  }
  for (const key of ['network', 'shm_size', 'extra_hosts', 'ssh', 'secrets', 'isolation', 'privileged'] as const) {
    if (build[key] !== undefined) lines.push(`${key} ${JSON.stringify(build[key])}`);
  }
  for (const ref of baseImages(dockerfile, args)) lines.push(`from ${ref} ${(await opts.imageId(ref)) ?? 'absent'}`);
  const hash = createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, HASH_CHARS);
  return { service, hash, tag: contentTag(opts.project, service, hash) };
}

/** The content address of every service of the model that builds an image. */
export async function contentAddresses(model: ComposeModel, opts: AddressOptions): Promise<Record<string, ImageAddress>> {
  const built = Object.entries(model.services).filter(([, s]) => s.build !== undefined);
  // A context that cannot be read (missing, unreadable files) is built per instance: the builder
  // then reports the problem in the build stage, as it would without sandstack.
  const out = await Promise.all(built.map(([name, svc]) => addressOf(name, svc, opts).catch((e: Error): ImageAddress => ({ service: name, reason: `the build context could not be read (${e.message})` }))));
  return Object.fromEntries(out.map((a) => [a.service, a]));
}
