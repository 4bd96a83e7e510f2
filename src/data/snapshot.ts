/**
 * Snapshots: an instance's named volumes (and its data root) captured into the state home, with a
 * manifest, and seeded into the fresh volumes of a new instance before any of its services start.
 *
 * Layout: `<home>/snapshots/<name>/` holds `manifest.json`, `volumes/<key>.tar` (one archive per
 * volume, as the Engine API's archive endpoint gives it: entries under `<key>/`), `data-root.tar`,
 * `compose.yaml` (the rendered model, secret values redacted) and `secrets/<NAME>` (the values the
 * data was written with, 0600 in a 0700 folder, never printed). A snapshot is written into
 * `<name>.partial-<pid>` and renamed when complete, so a half-written one is never listed or used.
 *
 * Volumes are read and written through short-lived helper containers that are created, never
 * started (any local image will do), labelled as the instance's, and removed at once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import writeFileAtomic from 'write-file-atomic';
import * as z from 'zod';
import { serviceMounts, toRecord, type ComposeModel } from '../compose/model.js';
import { stringifyModel } from '../compose/yaml.js';
import { execInContainer, instanceContainers } from '../engine/docker.js';
import { SandstackError } from '../errors.js';
import { redactModel } from '../evidence/redact.js';
import { gitInfo } from '../git/git.js';
import { instanceLabels, LABELS, type InstanceIdentity } from '../identity/identity.js';
import type { Context } from '../lifecycle/context.js';
import { engineFiles, findRecord, renderedProject, resolveInstance, type PreparedInstance } from '../lifecycle/instance.js';
import { loadSecrets, secretsDir } from '../secrets/secrets.js';
import type { Secret } from '../evidence/redact.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SNAP_MOUNT = '/sandstack-snapshot';
const SEED_MOUNT = '/sandstack-seed';
const DATA_ROOT_KEY = '.data-root';

const Archive = z.strictObject({ file: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

export const SnapshotManifestSchema = z.strictObject({
  version: z.literal(1),
  name: z.string(),
  createdAt: z.string(),
  durationMs: z.number(),
  source: z.strictObject({
    instance: z.string(),
    worktree: z.string(),
    projectDir: z.string(),
    branch: z.string().optional(),
    commit: z.string().optional(),
    dirty: z.boolean().optional(),
  }),
  /** The rendered model (secret values redacted) and its services. */
  compose: z.strictObject({ file: z.string(), services: z.array(z.string()) }),
  volumes: z.array(Archive.extend({ key: z.string(), mounts: z.array(z.strictObject({ service: z.string(), target: z.string() })) })),
  dataRoot: Archive.optional(),
  /** Names of the generated secrets the data was written with (values in secrets/, owner-only). */
  secrets: z.array(z.string()),
  /** The `snapshot.before` hook, when one ran. */
  hook: z.strictObject({ service: z.string(), command: z.array(z.string()), exitCode: z.number() }).optional(),
  /** Services stopped for the copy (and started again after). */
  stopped: z.array(z.string()),
});
export type SnapshotManifest = z.output<typeof SnapshotManifestSchema>;

export function snapshotsDir(home: string): string {
  return path.join(home, 'snapshots');
}

function assertName(name: string): void {
  if (!NAME.test(name)) {
    throw new SandstackError('SANDSTACK_USAGE', `"${name}" is not a snapshot name.`, { hint: 'Use letters, digits, . _ and - (up to 64 characters), starting with a letter or digit.' });
  }
}

/** Counts bytes and computes the sha256 of what flows through. */
function hasher(): Transform & { digest: () => { sha256: string; bytes: number } } {
  const h = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { digest: () => { sha256: string; bytes: number } };
  t.digest = () => ({ sha256: h.digest('hex'), bytes });
  return t;
}

/** An image present on the engine: one of `preferred` (service images), else any local image. */
async function helperImage(docker: Docker, preferred: string[]): Promise<string> {
  for (const ref of preferred) {
    const img = await docker
      .getImage(ref)
      .inspect()
      .catch(() => undefined);
    if (img) return img.Id;
  }
  const any = (await docker.listImages())[0];
  if (any) return any.Id;
  throw new SandstackError('SANDSTACK_SNAPSHOT_FAILED', 'No image is available on the engine to create a helper container from.', {
    hint: 'Build or pull any image (sandstack up builds the stack), then run it again.',
  });
}

type HelperMount = { Type: 'volume' | 'bind'; Source: string; Target: string; ReadOnly: boolean };

/** A container that is created, never started, labelled as the instance's: it only holds mounts. */
async function withHelper<T>(docker: Docker, identity: InstanceIdentity, image: string, mounts: HelperMount[], fn: (c: Docker.Container) => Promise<T>): Promise<T> {
  const c = await docker.createContainer({
    Image: image,
    Entrypoint: ['/sandstack-helper-never-started'],
    Cmd: [],
    Labels: { ...instanceLabels(identity), [LABELS.role]: 'data-helper' },
    HostConfig: { Mounts: mounts, NetworkMode: 'none' },
  });
  try {
    return await fn(c);
  } finally {
    await c.remove({ force: true, v: false }).catch(() => undefined);
  }
}

/** Named volumes of a model (not external): key, engine name, and which services mount them where. */
export function modelVolumes(model: ComposeModel, id: string): { key: string; name: string; labels: Record<string, string>; driver?: string; driverOpts?: Record<string, string>; mounts: { service: string; target: string }[] }[] {
  const out = [];
  for (const [key, def] of Object.entries(model.volumes ?? {})) {
    const d = (def ?? {}) as { external?: unknown; name?: string; labels?: Record<string, string> | string[]; driver?: string; driver_opts?: Record<string, string> };
    if (d.external) continue;
    const mounts: { service: string; target: string }[] = [];
    for (const [service, svc] of Object.entries(model.services)) {
      for (const m of serviceMounts(svc)) if (m.type === 'volume' && m.source === key) mounts.push({ service, target: m.target });
    }
    const labels = Object.fromEntries(Object.entries(toRecord(d.labels as never)).filter((e): e is [string, string] => typeof e[1] === 'string'));
    out.push({ key, name: d.name ?? `${id}_${key}`, labels, ...(d.driver ? { driver: d.driver } : {}), ...(d.driver_opts ? { driverOpts: d.driver_opts } : {}), mounts });
  }
  return out;
}

function volumeExists(docker: Docker, name: string): Promise<boolean> {
  return docker
    .getVolume(name)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

async function isEmptyDir(dir: string): Promise<boolean> {
  return (await readdir(dir).catch(() => [] as string[])).length === 0;
}

export interface SaveResult {
  snapshot: SnapshotManifest;
  dir: string;
  notices: string[];
}

/**
 * Captures the instance's named volumes (and data root) as snapshot `name`. Runs the
 * `snapshot.before` hook first when declared, stops the running containers that mount a volume
 * read-write for the copy (a clean shutdown, so a database needs no recovery) and starts them again
 * after, whatever happened.
 */
export async function saveSnapshot(ctx: Context, name: string, opts: { force?: boolean } = {}): Promise<SaveResult> {
  const t0 = Date.now();
  assertName(name);
  const inst = await resolveInstance(ctx);
  const id = inst.identity.id;
  const { record } = await findRecord(ctx, id);
  const rendered = record ? await renderedProject(ctx, inst, record.leases) : undefined;
  if (!record || !rendered) {
    throw new SandstackError('SANDSTACK_INSTANCE_NOT_FOUND', `Instance ${id} has not been started here: there is nothing to snapshot.`, { hint: 'Start it with `sandstack up`, then snapshot it.' });
  }
  const dest = path.join(snapshotsDir(ctx.home), name);
  if (existsSync(dest) && !opts.force) {
    throw new SandstackError('SANDSTACK_SNAPSHOT_EXISTS', `Snapshot "${name}" already exists (${dest}).`, { hint: 'Pick another name, remove it with `sandstack snapshot rm`, or pass --force to replace it.' });
  }
  const notices: string[] = [];
  const volumes: ReturnType<typeof modelVolumes> = [];
  for (const v of modelVolumes(rendered.model, id)) {
    if (await volumeExists(ctx.engine.docker, v.name)) volumes.push(v);
    else notices.push(`volume ${v.key} (${v.name}) does not exist yet; not in the snapshot`);
  }
  // On a remote engine the data root the stack writes is its synced copy on the engine's host (it
  // exists there when it exists here; what it holds is the stack's, so it is not judged from here).
  const files = engineFiles(ctx, inst, []);
  const dataRootOnEngine = files?.toEngine(inst.paths.dataRoot) ?? inst.paths.dataRoot;
  const dataRoot = existsSync(inst.paths.dataRoot) && (files !== undefined || !(await isEmptyDir(inst.paths.dataRoot)));
  if (volumes.length === 0 && !dataRoot) {
    throw new SandstackError('SANDSTACK_SNAPSHOT_FAILED', `Instance ${id} has no named volumes and an empty data root: there is nothing to snapshot.`, {
      hint: 'Snapshots capture named volumes and the data root (SANDSTACK_DATA_ROOT); start the instance with `sandstack up` first.',
    });
  }

  // The hook first (e.g. a database checkpoint), while everything runs.
  const containers = await instanceContainers(ctx.engine.docker, id);
  let hook: SnapshotManifest['hook'];
  const before = inst.loaded.config.snapshot.before;
  if (before) {
    const c = containers.find((x) => x.service === before.service && x.state === 'running');
    if (!c) throw new SandstackError('SANDSTACK_NOT_RUNNING', `snapshot.before runs in ${before.service}, which is not running.`, { hint: 'Start the instance with `sandstack up`, then snapshot it.' });
    ctx.onProgress({ type: 'step', message: `snapshot.before in ${before.service}: ${before.command.join(' ')}` });
    const r = await execInContainer(ctx.engine.docker, c.id, before.command, before.timeoutSeconds * 1000);
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_SNAPSHOT_FAILED', `snapshot.before (${before.command.join(' ')} in ${before.service}) exited ${r.exitCode}: ${r.output.split('\n').slice(-5).join(' | ')}`, {
        hint: 'Fix the hook in sandstack.yaml (snapshot.before); nothing was stopped or copied.',
      });
    }
    hook = { service: before.service, command: before.command, exitCode: r.exitCode };
  }

  // Writers stop for the copy: running containers that mount one of the volumes read-write.
  const names = new Set(volumes.map((v) => v.name));
  const writers: { id: string; service: string }[] = [];
  for (const c of containers.filter((x) => x.state === 'running')) {
    const info = await ctx.engine.docker.getContainer(c.id).inspect();
    if ((info.Mounts ?? []).some((m) => m.Type === 'volume' && names.has(m.Name ?? '') && m.RW)) writers.push({ id: c.id, service: c.service });
  }
  const tmp = `${dest}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(path.join(tmp, 'volumes'), { recursive: true, mode: 0o700 });
  try {
    if (writers.length) ctx.onProgress({ type: 'step', message: `stopping ${writers.map((w) => w.service).join(', ')} for a consistent copy` });
    await Promise.all(writers.map((w) => ctx.engine.docker.getContainer(w.id).stop({ t: 30 }).catch((e: { statusCode?: number }) => (e.statusCode === 304 ? undefined : Promise.reject(e)))));
    const archived: SnapshotManifest['volumes'] = [];
    let rootArchive: SnapshotManifest['dataRoot'];
    try {
      const image = await helperImage(ctx.engine.docker, containers.map((c) => c.imageId));
      const mounts: HelperMount[] = volumes.map((v) => ({ Type: 'volume', Source: v.name, Target: `${SNAP_MOUNT}/${v.key}`, ReadOnly: true }));
      if (dataRoot) mounts.push({ Type: 'bind', Source: dataRootOnEngine, Target: `${SNAP_MOUNT}/${DATA_ROOT_KEY}`, ReadOnly: true });
      await withHelper(ctx.engine.docker, inst.identity, image, mounts, async (helper) => {
        const copy = async (key: string, file: string) => {
          const h = hasher();
          const stream = (await helper.getArchive({ path: `${SNAP_MOUNT}/${key}` })) as unknown as NodeJS.ReadableStream;
          await pipeline(stream, h, createWriteStream(path.join(tmp, file), { mode: 0o600 }));
          return { file, ...h.digest() };
        };
        ctx.onProgress({ type: 'step', message: `copying ${volumes.length} volume(s)${dataRoot ? ' and the data root' : ''}` });
        const [vols, root] = await Promise.all([
          Promise.all(volumes.map(async (v) => ({ key: v.key, mounts: v.mounts, ...(await copy(v.key, `volumes/${v.key}.tar`)) }))),
          dataRoot ? copy(DATA_ROOT_KEY, 'data-root.tar') : Promise.resolve(undefined),
        ]);
        archived.push(...vols);
        rootArchive = root;
      });
    } finally {
      // Started again whatever happened.
      await Promise.all(writers.map((w) => ctx.engine.docker.getContainer(w.id).start().catch(() => notices.push(`could not start ${w.service} again; run sandstack up`))));
    }

    // The secrets the data was written with, owner-only.
    const declared = new Set(inst.loaded.config.secrets.map((s) => s.name));
    const secrets = (await loadSecrets(inst.paths.dir)).filter((s) => declared.has(s.name));
    await mkdir(secretsDir(tmp), { recursive: true, mode: 0o700 });
    for (const s of secrets) await writeFileAtomic(path.join(secretsDir(tmp), s.name), s.value, { mode: 0o600 });
    await writeFileAtomic(path.join(tmp, 'compose.yaml'), stringifyModel(redactModel(rendered.model, secrets).model), { mode: 0o600 });

    const git = await gitInfo(inst.identity.worktree);
    const manifest: SnapshotManifest = {
      version: 1,
      name,
      createdAt: new Date().toISOString(),
      durationMs: Date.now() - t0,
      source: { instance: id, worktree: inst.identity.worktree, projectDir: inst.projectDir, branch: git?.branch, commit: git?.commit, dirty: git?.dirty },
      compose: { file: 'compose.yaml', services: Object.keys(rendered.model.services).sort() },
      volumes: archived.sort((a, b) => a.key.localeCompare(b.key)),
      ...(rootArchive ? { dataRoot: rootArchive } : {}),
      secrets: secrets.map((s) => s.name),
      ...(hook ? { hook } : {}),
      stopped: writers.map((w) => w.service).sort(),
    };
    await writeFileAtomic(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
    if (writers.length) await waitRunning(ctx.engine.docker, writers, notices);
    return { snapshot: manifest, dir: dest, notices };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

/** Waits (up to 120 s) until restarted containers run again (and are healthy, if they have a healthcheck). */
async function waitRunning(docker: Docker, started: { id: string; service: string }[], notices: string[]): Promise<void> {
  const end = Date.now() + 120_000;
  const pending = new Map(started.map((s) => [s.id, s.service]));
  while (pending.size > 0 && Date.now() < end) {
    for (const [cid] of [...pending]) {
      const info = await docker
        .getContainer(cid)
        .inspect()
        .catch(() => undefined);
      const health = (info?.State as { Health?: { Status?: string } } | undefined)?.Health?.Status;
      if (info?.State.Running && (health === undefined || health === 'healthy')) pending.delete(cid);
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 250));
  }
  if (pending.size) notices.push(`${[...pending.values()].join(', ')} did not become ready again within 120 s after the copy; see sandstack status`);
}

export interface SnapshotEntry {
  name: string;
  dir: string;
  /** The manifest, when it is valid. */
  manifest?: SnapshotManifest;
  /** Total size of its archives (bytes). */
  bytes: number;
  /** Why it cannot be used, when it cannot. */
  problem?: string;
}

/** Every snapshot of this state home (half-written ones excluded), newest first. */
export async function listSnapshots(home: string): Promise<SnapshotEntry[]> {
  const root = snapshotsDir(home);
  const names = (await readdir(root).catch(() => [] as string[])).filter((n) => !n.includes('.partial-'));
  const out: SnapshotEntry[] = [];
  for (const name of names) {
    try {
      const { manifest, dir } = await readSnapshot(home, name);
      out.push({ name, dir, manifest, bytes: manifest.volumes.reduce((n, v) => n + v.bytes, manifest.dataRoot?.bytes ?? 0) });
    } catch (e) {
      out.push({ name, dir: path.join(root, name), bytes: 0, problem: (e as Error).message });
    }
  }
  return out.sort((a, b) => (b.manifest?.createdAt ?? '').localeCompare(a.manifest?.createdAt ?? ''));
}

/** Removes a snapshot (its archives, manifest and stored secrets). */
export async function removeSnapshot(home: string, name: string): Promise<{ name: string; dir: string; bytes: number }> {
  assertName(name);
  const dir = path.join(snapshotsDir(home), name);
  if (!existsSync(dir)) throw notFound(home, name);
  const entries = await listSnapshots(home);
  const bytes = entries.find((e) => e.name === name)?.bytes ?? 0;
  await rm(dir, { recursive: true, force: true });
  return { name, dir, bytes };
}

function notFound(home: string, name: string): SandstackError {
  return new SandstackError('SANDSTACK_SNAPSHOT_NOT_FOUND', `There is no snapshot "${name}" in ${snapshotsDir(home)}.`, {
    hint: 'List snapshots with `sandstack snapshot ls`; take one with `sandstack snapshot save <name>`.',
  });
}

/** Reads and checks a snapshot: a valid manifest, and every archive and secret it names present with its size. */
export async function readSnapshot(home: string, name: string): Promise<{ manifest: SnapshotManifest; dir: string }> {
  assertName(name);
  const dir = path.join(snapshotsDir(home), name);
  if (!existsSync(dir)) throw notFound(home, name);
  const invalid = (why: string) =>
    new SandstackError('SANDSTACK_SNAPSHOT_INVALID', `Snapshot "${name}" cannot be used: ${why}.`, {
      hint: `Remove it (sandstack snapshot rm ${name}) and take it again from an instance that has the data.`,
      details: { snapshot: name, dir },
    });
  let manifest: SnapshotManifest;
  try {
    const parsed = SnapshotManifestSchema.safeParse(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')));
    if (!parsed.success) throw invalid(`its manifest is not valid (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`);
    manifest = parsed.data;
  } catch (e) {
    if (e instanceof SandstackError) throw e;
    throw invalid(`its manifest.json is missing or not JSON (${(e as Error).message})`);
  }
  for (const a of [...manifest.volumes, ...(manifest.dataRoot ? [manifest.dataRoot] : [])]) {
    const size = (await stat(path.join(dir, a.file)).catch(() => undefined))?.size;
    if (size === undefined) throw invalid(`${a.file} is missing`);
    if (size !== a.bytes) throw invalid(`${a.file} has ${size} bytes, the manifest says ${a.bytes} (truncated or changed)`);
  }
  for (const s of manifest.secrets) if (!existsSync(path.join(secretsDir(dir), s))) throw invalid(`the stored secret ${s} is missing`);
  return { manifest, dir };
}

/** The secret values stored with a snapshot (never print them). */
export async function snapshotSecrets(dir: string, manifest: SnapshotManifest): Promise<Secret[]> {
  const stored = await loadSecrets(dir);
  return stored.filter((s) => manifest.secrets.includes(s.name));
}

/**
 * Before a seeded instance's secrets are generated: the snapshot's values are taken for the
 * secrets its data was written with (declared by this project too), so logins keep working.
 */
export async function adoptSnapshotSecrets(instanceDir: string, dir: string, manifest: SnapshotManifest, declared: string[], rekeyed: string[] = []): Promise<string[]> {
  const adopted: string[] = [];
  await mkdir(secretsDir(instanceDir), { recursive: true, mode: 0o700 });
  for (const s of await snapshotSecrets(dir, manifest)) {
    // A secret the re-key hook (snapshot.rekey) gives the data anew is generated for this instance.
    if (!declared.includes(s.name) || rekeyed.includes(s.name)) continue;
    await writeFileAtomic(path.join(secretsDir(instanceDir), s.name), s.value, { mode: 0o600 });
    adopted.push(s.name);
  }
  return adopted;
}

export interface SeedPlan {
  name: string;
  dir: string;
  manifest: SnapshotManifest;
  volumes: ReturnType<typeof modelVolumes>;
  /** Secrets this instance runs with values other than the snapshot's, which snapshot.rekey re-keys. */
  rekey: string[];
}

/**
 * Checks, before anything is built or started, that a snapshot (as readSnapshot read it) can seed this instance: every
 * volume it holds exists in this compose model, mounted where it was; none of them exists yet
 * (seeding fills fresh volumes only); and the secrets its data was written with are the ones this
 * instance will run with.
 */
export async function planSeed(ctx: Context, prepared: PreparedInstance, snapshot: { name: string; manifest: SnapshotManifest; dir: string }): Promise<SeedPlan> {
  const { name, manifest, dir } = snapshot;
  const here = modelVolumes(prepared.model, prepared.identity.id);
  const problems: string[] = [];
  const volumes: SeedPlan['volumes'] = [];
  for (const v of manifest.volumes) {
    const mine = here.find((h) => h.key === v.key);
    if (!mine) {
      problems.push(`volume ${v.key} is not in this compose model (it has ${here.map((h) => h.key).join(', ') || 'no named volumes'})`);
      continue;
    }
    for (const m of v.mounts) {
      if (!mine.mounts.some((x) => x.target === m.target)) {
        const now = mine.mounts.map((x) => `${x.service} at ${x.target}`).join(', ') || 'no service';
        problems.push(`volume ${v.key} was mounted by ${m.service} at ${m.target}; here it is mounted by ${now}`);
      }
    }
    volumes.push(mine);
  }
  if (problems.length) {
    throw new SandstackError('SANDSTACK_SNAPSHOT_INCOMPATIBLE', `Snapshot "${name}" (from ${manifest.source.instance}${manifest.source.commit ? ` at ${manifest.source.commit.slice(0, 12)}` : ''}) does not fit this compose model: ${problems.join('; ')}.`, {
      hint: 'Take a new snapshot from an instance of this version of the project, or start without --from (data.seed).',
      details: { snapshot: name, problems },
    });
  }
  const existing: string[] = [];
  for (const v of volumes) if (await volumeExists(ctx.engine.docker, v.name)) existing.push(v.name);
  // An instance registered before this start may hold files in its data root (unless this start just
  // copied them from data.root.template): not a fresh one.
  if (manifest.dataRoot && !prepared.createdRecord && !prepared.dataSeed && !(await isEmptyDir(prepared.paths.dataRoot))) existing.push(`data root ${prepared.paths.dataRoot}`);
  if (existing.length) {
    throw new SandstackError('SANDSTACK_SNAPSHOT_EXISTS', `Instance ${prepared.identity.id} already has data (${existing.join(', ')}); a snapshot seeds fresh volumes only.`, {
      hint: `Destroy the instance first (sandstack destroy) to start it from snapshot "${name}", or start it without --from to keep its data.`,
      details: { volumes: existing },
    });
  }
  const stored = await snapshotSecrets(dir, manifest);
  const rekeyable = prepared.loaded.config.snapshot.rekey?.secrets ?? [];
  const rekey: string[] = [];
  for (const s of stored) {
    const mine = prepared.secrets.find((x) => x.name === s.name);
    if (!mine || mine.value === s.value) continue;
    if (rekeyable.includes(s.name)) {
      rekey.push(s.name);
      continue;
    }
    throw new SandstackError('SANDSTACK_SNAPSHOT_SECRET_MISMATCH', `The data of snapshot "${name}" was written with the secret ${s.name}, but this instance runs with a different ${s.name}: its services could not log in to that data.`, {
      hint: `Start the instance from scratch (sandstack destroy, then sandstack up --from ${name}): a new instance takes the snapshot's ${s.name}. Or declare a re-key hook for ${s.name} (snapshot.rekey in sandstack.yaml).`,
      details: { snapshot: name, secret: s.name },
    });
  }
  return { name, dir, manifest, volumes, rekey };
}

export interface SeedResult {
  snapshot: string;
  volumes: { key: string; name: string; bytes: number }[];
  dataRoot?: { bytes: number };
  durationMs: number;
}

/**
 * Creates the fresh volumes (labelled as Compose and sandstack label them) and fills each from its
 * archive, all in parallel, each archive read once and its checksum verified as it streams; then
 * the data root. A checksum that does not match fails (the caller's rollback removes the volumes).
 */
export async function seedVolumes(ctx: Context, prepared: PreparedInstance, plan: SeedPlan): Promise<SeedResult> {
  const t0 = Date.now();
  const { identity } = prepared;
  const image = await helperImage(
    ctx.engine.docker,
    Object.values(prepared.model.services)
      .map((s) => s.image)
      .filter((x): x is string => !!x),
  );
  const fill = async (key: string, mount: HelperMount, archive: z.output<typeof Archive>) => {
    await withHelper(ctx.engine.docker, identity, image, [mount], async (helper) => {
      const h = hasher();
      const input = createReadStream(path.join(plan.dir, archive.file)).pipe(h);
      await helper.putArchive(input, { path: SEED_MOUNT });
      const got = h.digest();
      if (got.sha256 !== archive.sha256) {
        throw new SandstackError('SANDSTACK_SNAPSHOT_INVALID', `Snapshot "${plan.name}" cannot be used: ${archive.file} does not match its checksum (corrupt).`, {
          hint: `Remove it (sandstack snapshot rm ${plan.name}) and take it again.`,
          details: { snapshot: plan.name, file: archive.file, key },
        });
      }
    });
  };
  const version = prepared.project.cli.version;
  const volumes = await Promise.all(
    plan.manifest.volumes.map(async (archive) => {
      const v = plan.volumes.find((x) => x.key === archive.key)!;
      await ctx.engine.docker.createVolume({
        Name: v.name,
        ...(v.driver ? { Driver: v.driver } : {}),
        ...(v.driverOpts ? { DriverOpts: v.driverOpts } : {}),
        // As Compose labels its own volumes, so that it adopts this one without a warning.
        Labels: { ...v.labels, 'com.docker.compose.project': identity.id, 'com.docker.compose.volume': v.key, 'com.docker.compose.version': version },
      });
      await fill(v.key, { Type: 'volume', Source: v.name, Target: `${SEED_MOUNT}/${v.key}`, ReadOnly: false }, archive);
      return { key: v.key, name: v.name, bytes: archive.bytes };
    }),
  );
  let dataRoot: SeedResult['dataRoot'];
  if (plan.manifest.dataRoot) {
    // The snapshot's data root replaces whatever the new one held (a data.root.template copy).
    await rm(prepared.paths.dataRoot, { recursive: true, force: true });
    await mkdir(prepared.paths.dataRoot, { recursive: true, mode: 0o700 });
    // On a remote engine, its copy on the engine's host is filled (made equal to the empty one here first).
    const onEngine = prepared.engineFiles?.toEngine(prepared.paths.dataRoot);
    if (onEngine) await ctx.engine.sync([{ local: prepared.paths.dataRoot, remote: onEngine, mode: 'mirror' }], ctx.signal);
    await fill(DATA_ROOT_KEY, { Type: 'bind', Source: onEngine ?? prepared.paths.dataRoot, Target: `${SEED_MOUNT}/${DATA_ROOT_KEY}`, ReadOnly: false }, plan.manifest.dataRoot);
    dataRoot = { bytes: plan.manifest.dataRoot.bytes };
  }
  return { snapshot: plan.name, volumes, ...(dataRoot ? { dataRoot } : {}), durationMs: Date.now() - t0 };
}
