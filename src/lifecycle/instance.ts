/**
 * Resolving "which instance is this?" and preparing it: identity, registry record and port leases,
 * the resolved and rendered Compose model.
 */
import ms from 'ms';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import type { Secret } from '../evidence/redact.js';
import { ensureSecrets, secretsDir } from '../secrets/secrets.js';
import path from 'node:path';
import { detectCompose, type ComposeProject } from '../compose/cli.js';
import { activeServices, type ComposeModel } from '../compose/model.js';
import { interpolationEnv, renderIsolated, type RenderReport } from '../compose/render.js';
import { contentAddresses } from '../compose/content-hash.js';
import { parseResolvedModel, resolveModelDetailed } from '../compose/resolve.js';
import { composeFilesOf, composeProjectDir, locateComposeFiles } from '../compose/files.js';
import { stringifyModel } from '../compose/yaml.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { SandstackError } from '../errors.js';
import { gitInfo, type GitInfo } from '../git/git.js';
import { deriveInstanceId, homeLabelValue, LABELS, type InstanceIdentity } from '../identity/identity.js';
import { allocatePorts, decodeLeases, leaseKey, type PortRequest } from '../ports/leases.js';
import { isPortFree } from '../ports/probe.js';
import { composeCacheFile, instancePaths, type InstancePaths } from '../state/paths.js';
import { loadUserConfig } from '../config/user.js';
import { engineSpec, openEngine, recordedEngineSpec, type EngineSource, type EngineSpec } from '../engine/select.js';
import type { SyncFolder } from '../engine/engine.js';
import { engineNameOf, peekRecord, withRegistry, type InstanceRecord, type Lease, type Reconciled, type RegistryOptions, type SkippedInstance } from '../state/registry.js';
import { defaultLogDriver, engineVersion, labelledResources, type LabelledResources } from '../engine/docker.js';
import { currentOwner, formatOwner } from '../state/owner.js';
import { telemetryFor } from '../observability/wiring.js';
import { assertDataPathsExist, configDirOf, dataRootTemplate, declaredDatasets, type DeclaredDataset } from '../data/shared.js';
import { seedDataRoot, seedLine, type SeedResult } from '../data/root.js';
import type { Context } from './context.js';
import writeFileAtomic from 'write-file-atomic';

export interface ResolvedInstance {
  identity: InstanceIdentity;
  loaded: LoadedConfig;
  git?: GitInfo;
  paths: InstancePaths;
  projectDir: string;
  /** The registry's record as it was when resolved (read without the lock; for choosing the engine). */
  peeked?: InstanceRecord;
}

/**
 * Works out the instance for the context's folder without changing anything. `sameFolder`: the
 * resolution of another instance of this same folder and config file (the worktree's own instance,
 * when resolving a throwaway of it), whose git facts and loaded config are reused as they are.
 */
export async function resolveInstance(ctx: Context, sameFolder?: Pick<ResolvedInstance, 'git' | 'loaded'>): Promise<ResolvedInstance> {
  const git = sameFolder ? sameFolder.git : await gitInfo(ctx.cwd);
  const loaded = sameFolder ? sameFolder.loaded : await loadConfig(ctx.cwd, { explicitFile: ctx.configFile, stopAt: git?.worktree });
  const worktree = git?.worktree ?? loaded.projectDir;
  const id = deriveInstanceId({
    flag: ctx.instanceFlag,
    env: ctx.env.SANDSTACK_INSTANCE,
    idFrom: loaded.config.instance.idFrom,
    worktree,
    branch: git?.branch,
  });
  const envKind = ctx.env.SANDSTACK_ENVIRONMENT;
  if (envKind !== undefined && envKind !== 'local' && envKind !== 'sandbox') {
    throw new SandstackError('SANDSTACK_USAGE', `SANDSTACK_ENVIRONMENT is "${envKind}"; it must be "local" or "sandbox".`, {
      hint: 'Unset it to use instance.kind from sandstack.yaml.',
    });
  }
  const peeked = await bindEngine(ctx, id, loaded);
  return {
    ...(peeked ? { peeked } : {}),
    identity: {
      id,
      worktree,
      kind: envKind ?? loaded.config.instance.kind,
      home: homeLabelValue(ctx.home),
      ...(ctx.owner ? { owner: ctx.owner } : {}),
      ...configuredTtl(ctx, loaded),
    },
    loaded,
    git,
    paths: instancePaths(ctx.home, id),
    projectDir: loaded.projectDir,
  };
}

/** The engine asked for now: --engine, else SANDSTACK_ENGINE, else `engine:` in sandstack.yaml. */
function requestedEngine(ctx: Context, loaded?: LoadedConfig): { value: string; source: EngineSource } | undefined {
  if (ctx.engineFlag) return { value: ctx.engineFlag, source: '--engine' };
  if (ctx.env.SANDSTACK_ENGINE) return { value: ctx.env.SANDSTACK_ENGINE, source: 'SANDSTACK_ENGINE' };
  if (loaded?.config.engine) return { value: loaded.config.engine, source: 'sandstack.yaml' };
  return undefined;
}

/**
 * Points the context at the instance's engine, chosen once: the engine its registry record names
 * (an instance stays on its engine for its life), else the one asked for (requestedEngine). With
 * neither, the context keeps its engine (local), and `up` may place a new instance on the pool.
 */
async function bindEngine(ctx: Context, id: string, loaded: LoadedConfig): Promise<InstanceRecord | undefined> {
  const record = await peekRecord(ctx.home, id);
  const asked = requestedEngine(ctx, loaded);
  let spec: EngineSpec | undefined;
  if (record?.engine) {
    const recorded = record.engine;
    if (asked && asked.source !== 'sandstack.yaml' && asked.value !== recorded.name && asked.value !== recorded.endpoint) {
      throw new SandstackError('SANDSTACK_ENGINE_MISMATCH', `Instance "${id}" runs on engine "${recorded.name}" (${recorded.endpoint}); ${asked.source} asks for "${asked.value}".`, {
        hint: `An instance stays on its engine: drop ${asked.source}, or destroy the instance first (sandstack destroy --instance ${id}) to start it elsewhere.`,
        details: { id, engine: recorded, asked: asked.value },
      });
    }
    spec = recordedEngineSpec(recorded, (await loadUserConfig(ctx.env)).config);
  } else if (asked) {
    spec = await engineSpec(asked.value, (await loadUserConfig(ctx.env)).config, ctx.env, asked.source);
  }
  if (spec) {
    try {
      await switchEngine(ctx, spec);
    } catch (e) {
      // The instance's own engine does not answer: say which instance (destroy schedules it for gc).
      if (e instanceof SandstackError && e.code === 'SANDSTACK_ENGINE_UNREACHABLE' && record?.engine) {
        throw new SandstackError(e.code, e.message, { hint: e.hint, details: { ...e.details, instance: id } });
      }
      throw e;
    }
  }
  return record;
}

/**
 * Points the context at the engine --engine or SANDSTACK_ENGINE names, for commands about an
 * engine rather than an instance (`obs`); the local engine when neither is given.
 */
export async function bindRequestedEngine(ctx: Context): Promise<void> {
  const asked = requestedEngine(ctx);
  if (!asked) return;
  await switchEngine(ctx, await engineSpec(asked.value, (await loadUserConfig(ctx.env)).config, ctx.env, asked.source));
}

/** Points the context at the engine of `spec`, opening it, unless the context is already there. */
async function switchEngine(ctx: Context, spec: EngineSpec): Promise<void> {
  if (spec.name === ctx.engine.name) return;
  ctx.onProgress({ type: 'step', message: `connecting to engine ${spec.name}${spec.url ? ` (${spec.url})` : ''}` });
  ctx.engine = await openEngine(spec, { home: ctx.home, env: ctx.env, signal: ctx.signal });
}

/**
 * A new instance with no engine chosen (never started, no --engine, SANDSTACK_ENGINE or `engine:`)
 * goes to the least-loaded engine of the user's pool, when the user config has one.
 */
export async function placeNewInstance(ctx: Context, inst: ResolvedInstance): Promise<void> {
  if (ctx.engine.remote || requestedEngine(ctx, inst.loaded)) return;
  const record = inst.peeked;
  if (record && (record.engine || record.services)) return;
  const user = (await loadUserConfig(ctx.env)).config;
  if (!user.pool) return;
  ctx.onProgress({ type: 'step', message: `placing the instance on the pool (${user.pool.join(', ')})` });
  const { placeOnPool } = await import('./engines.js');
  const placed = await placeOnPool(ctx, user);
  ctx.onProgress({ type: 'step', message: `placed on engine ${placed.status.name} (${placed.status.instances} instance(s) there${placed.status.capacity ? ` of ${placed.status.capacity}` : ''})` });
  ctx.engine = placed.engine;
}

export function registryOptions(ctx: Context): RegistryOptions {
  return { home: ctx.home, reconcile: () => reconcileFromDocker(ctx) };
}

/**
 * Rebuilds instance records from the labels on Docker resources: only instances labelled with this
 * state home (`home`, see homeLabelValue) are adopted. Instances of another state home, and those
 * created before the home label existed, are skipped and named (registry notices say how to adopt
 * or remove the latter).
 */
export function recordsFromLabels(found: LabelledResources, home: string): Reconciled {
  const byId = new Map<string, InstanceRecord>();
  const skipped = new Map<string, SkippedInstance>();
  for (const r of [...found.containers, ...found.volumes, ...found.networks]) {
    const id = r.labels[LABELS.instance];
    if (!id) continue;
    const owner = r.labels[LABELS.home];
    if (owner !== home) {
      if (!byId.has(id) && !skipped.has(id)) skipped.set(id, { id, reason: owner ? 'other-home' : 'no-home-label', worktree: r.labels[LABELS.worktree] || undefined });
      continue;
    }
    skipped.delete(id);
    const rec = byId.get(id) ?? {
      id,
      worktree: r.labels[LABELS.worktree] ?? '',
      projectDir: r.labels[LABELS.worktree] ?? '',
      kind: r.labels[LABELS.kind] === 'sandbox' ? 'sandbox' : 'local',
      createdAt: new Date().toISOString(),
      createdBy: 'reconciled' as const,
      leases: [] as Lease[],
    };
    if (rec.leases.length === 0) rec.leases = decodeLeases(r.labels[LABELS.leases]);
    // An instance created with a ttl was handed over once started (its owner label stays on the
    // containers): its expiry, not its owner, decides when it goes.
    const ttl = Number(r.labels[LABELS.ttl]);
    if (Number.isInteger(ttl) && ttl > 0) {
      rec.ttlMs = ttl;
      delete rec.owner;
    } else if (r.labels[LABELS.owner] && !rec.ttlMs) rec.owner = r.labels[LABELS.owner];
    byId.set(id, rec);
  }
  return { records: [...byId.values()], skipped: [...skipped.values()] };
}

/** State homes other than this context's whose label is on resources of instance `id`. */
export function otherHomes(found: LabelledResources, home: string): string[] {
  const homes = new Set<string>();
  for (const r of [...found.containers, ...found.volumes, ...found.networks]) {
    const h = r.labels[LABELS.home];
    if (h && h !== home) homes.add(h);
  }
  return [...homes];
}

/**
 * Refuses to run an instance whose containers, volumes or networks belong to another state home on
 * this engine: the id is the Compose project name, so Compose would take them over.
 */
export function assertOwnHome(ctx: Context, id: string, found: LabelledResources): void {
  const others = otherHomes(found, homeLabelValue(ctx.home));
  if (others.length === 0) return;
  throw new SandstackError('SANDSTACK_INSTANCE_CLASH', `Instance id "${id}" is in use on this engine by another sandstack state home (dev.sandstack.home=${others.join(', ')}); this one is ${ctx.home}.`, {
    hint: `Pass a different id with --instance <id> (or SANDSTACK_INSTANCE), or manage it with the SANDSTACK_HOME it was created with (destroy it there, or here with \`sandstack destroy --instance ${id}\`).`,
    details: { id, otherHomes: others, home: ctx.home },
  });
}

/** Rebuilds instance records of this state home from the labels on Docker resources. */
export async function reconcileFromDocker(ctx: Context): Promise<Reconciled> {
  let found;
  try {
    found = await labelledResources(ctx.engine.docker);
  } catch {
    return { records: [], skipped: [] };
  }
  return recordsFromLabels(found, homeLabelValue(ctx.home));
}

export function portRequests(loaded: LoadedConfig): PortRequest[] {
  return loaded.config.ports.publish.map((p) => ({
    service: p.service,
    containerPort: p.port,
    protocol: p.protocol === 'udp' ? 'udp' : 'tcp',
    scheme: p.protocol,
    name: p.name,
  }));
}

function clashError(id: string, other: InstanceRecord, projectDir: string): SandstackError {
  return new SandstackError(
    'SANDSTACK_INSTANCE_CLASH',
    `Instance id "${id}" already belongs to ${other.projectDir}; this project is ${projectDir}. Two worktrees never share an id.`,
    {
      hint: `Pass a different id with --instance <id> (or SANDSTACK_INSTANCE), or destroy the other instance first (sandstack destroy --instance ${id}).`,
      details: { id, registeredProjectDir: other.projectDir, projectDir },
    },
  );
}

export interface LeaseOutcome {
  record: InstanceRecord;
  /** True when this call created the registry record. */
  created: boolean;
  notices: string[];
}

/**
 * Registers the instance (if needed) and makes sure it holds a lease for every port the config
 * publishes. With `persist: false` nothing is written (used by `render` of an unregistered instance).
 */
export async function ensureLeases(ctx: Context, inst: ResolvedInstance, opts: { persist: boolean; createdBy?: 'up' | 'new'; branch?: string }): Promise<LeaseOutcome> {
  const requests = portRequests(inst.loaded);
  const range = inst.loaded.config.ports.range;
  // Asked before taking the registry lock (on a remote engine it is a round trip).
  const isFree = await ctx.engine.portProbe(ctx.signal);
  const tx = await withRegistry(registryOptions(ctx), async (registry) => {
    const existing = registry.instances[inst.identity.id];
    if (existing && path.resolve(existing.projectDir) !== path.resolve(inst.projectDir) && existing.createdBy !== 'reconciled') {
      throw clashError(inst.identity.id, existing, inst.projectDir);
    }
    const others = Object.values(registry.instances).filter((r) => r.id !== inst.identity.id);
    // Host ports are per engine (each engine's host has its own 127.0.0.1); this machine's ports
    // are those of local instances and the forwards of remote ones.
    const takenOn = new Set(others.filter((r) => engineNameOf(r) === ctx.engine.name).flatMap((r) => r.leases.map((l) => l.hostPort)));
    const takenHere = new Set(others.flatMap((r) => r.leases.map((l) => (engineNameOf(r) === 'local' ? l.hostPort : l.localPort)).filter((p): p is number => p !== undefined)));
    const allocation = await allocatePorts({
      instanceId: inst.identity.id,
      requests,
      current: existing?.leases ?? [],
      taken: ctx.engine.remote ? takenOn : new Set([...takenOn, ...takenHere]),
      range,
      isFree,
    });
    if (ctx.engine.remote) {
      // Each remote port gets a local one for its forward, leased among this machine's ports.
      const local = await allocatePorts({
        instanceId: inst.identity.id,
        requests,
        current: (existing?.leases ?? []).flatMap((l) => (l.localPort ? [{ ...l, hostPort: l.localPort }] : [])),
        taken: takenHere,
        range,
        isFree: isPortFree,
      });
      allocation.leases = allocation.leases.map((l) => ({ ...l, localPort: local.leases.find((x) => leaseKey(x) === leaseKey(l))!.hostPort }));
    }
    const record: InstanceRecord = {
      id: inst.identity.id,
      worktree: inst.identity.worktree,
      projectDir: inst.projectDir,
      kind: inst.identity.kind,
      createdAt: existing?.createdAt ?? new Date().toISOString(),
      createdBy: existing && existing.createdBy !== 'reconciled' ? existing.createdBy : (opts.createdBy ?? 'up'),
      branch: opts.branch ?? existing?.branch ?? inst.git?.branch,
      leases: allocation.leases,
      ...(inst.identity.owner ? { owner: inst.identity.owner } : {}),
      ...ttlOf(inst, existing),
      lastUsedAt: new Date().toISOString(),
      ...(existing?.services ? { services: existing.services, mayFinish: existing.mayFinish ?? [] } : {}),
      ...(existing?.engine ? { engine: existing.engine } : ctx.engine.remote ? { engine: { name: ctx.engine.name, endpoint: ctx.engine.endpoint } } : {}),
    };
    if (opts.persist) registry.instances[record.id] = record;
    return { record, created: !existing };
  });
  return { ...tx.result, notices: tx.notices };
}

/** The ttl asked for now: `up --ttl`, else instance.ttl in sandstack.yaml. */
function configuredTtl(ctx: Context, loaded: LoadedConfig): { ttlMs?: number } {
  const configured = loaded.config.instance.ttl;
  const ttlMs = ctx.ttlMs ?? (configured ? (ms(configured as ms.StringValue) as number) : undefined);
  return ttlMs ? { ttlMs } : {};
}

/** The instance's ttl: `up --ttl`, else instance.ttl in sandstack.yaml, else what the record had. */
function ttlOf(inst: ResolvedInstance, existing: InstanceRecord | undefined): { ttlMs?: number } {
  const ttlMs = inst.identity.ttlMs ?? existing?.ttlMs;
  return ttlMs ? { ttlMs } : {};
}

/**
 * The start of an instance created with a ttl has finished: its owner hands it over (the record
 * loses its owner, so the instance is no orphan when that process exits; its ttl takes over).
 */
export async function handOver(ctx: Context, id: string): Promise<void> {
  await withRegistry(registryOptions(ctx), (registry) => {
    const rec = registry.instances[id];
    if (rec?.owner) delete rec.owner;
  });
}

/** Records what a successful start ran: its services, and those that may finish (one-shot jobs). */
export async function recordServices(ctx: Context, id: string, services: string[], mayFinish: string[]): Promise<void> {
  await withRegistry(registryOptions(ctx), (registry) => {
    const rec = registry.instances[id];
    if (rec) Object.assign(rec, { services: [...services].sort(), mayFinish: [...mayFinish].sort() });
  });
}

/** Marks the instance as used now (its ttl counts from here). */
export async function touchInstance(ctx: Context, id: string): Promise<void> {
  await withRegistry(registryOptions(ctx), (registry) => {
    const rec = registry.instances[id];
    if (rec?.ttlMs) rec.lastUsedAt = new Date().toISOString();
  });
}

/** Releases the instance's registry record (and so its leases). */
export async function releaseInstance(ctx: Context, id: string): Promise<boolean> {
  const tx = await withRegistry(registryOptions(ctx), (registry) => {
    const had = id in registry.instances;
    delete registry.instances[id];
    return had;
  });
  return tx.result;
}

/** Gives a record this process as its owner: once the process is gone, reaping treats the instance as an orphan. */
export async function markOrphan(ctx: Context, id: string): Promise<void> {
  await withRegistry(registryOptions(ctx), (registry) => {
    const rec = registry.instances[id];
    if (rec) rec.owner = formatOwner(currentOwner());
  });
}

/** True when the context's engine is remote and no longer answers (the SSH connection dropped). */
export async function engineGone(ctx: Context): Promise<boolean> {
  return ctx.engine.remote && 'error' in (await engineVersion(ctx.engine.docker));
}

/**
 * Undoes the record a failed start created: it is released, unless the instance's remote engine
 * stopped answering. Then what the start made there (containers, synced files) stays recorded,
 * owned by this process: once it exits, `sandstack gc` (or the next start on that engine) removes
 * it when the engine answers again. True when the record was kept.
 */
export async function releaseFailedStart(ctx: Context, id: string): Promise<boolean> {
  if (await engineGone(ctx)) {
    await markOrphan(ctx, id);
    return true;
  }
  await releaseInstance(ctx, id);
  return false;
}

export async function findRecord(ctx: Context, id: string): Promise<{ record?: InstanceRecord; notices: string[] }> {
  const tx = await withRegistry(registryOptions(ctx), (registry) => structuredClone(registry.instances[id]));
  return { record: tx.result, notices: tx.notices };
}

/** Host variables the config lets through to Compose (env.allow and env.required). */
export function allowedHostEnv(inst: ResolvedInstance): string[] {
  return [...new Set([...inst.loaded.config.env.allow, ...inst.loaded.config.env.required])];
}

export interface PreparedInstance extends ResolvedInstance {
  record: InstanceRecord;
  createdRecord: boolean;
  project: ComposeProject;
  /** The isolated model sandstack runs. */
  model: ComposeModel;
  /** The model as Compose resolved it, before isolation (what lint checks as merged). */
  resolved: ComposeModel;
  report: RenderReport;
  /** Services `up` starts (profiles applied). */
  services: string[];
  notices: string[];
  /** Variables the compose files use that are not set (Compose interpolated them as blank). */
  unsetVariables: string[];
  /** The instance's secrets (values: never print them). */
  secrets: Secret[];
  /** data.shared, host paths resolved (each checked to exist). */
  datasets: DeclaredDataset[];
  /** How the data root was seeded from data.root.template, when this call created it. */
  dataSeed?: SeedResult;
  /** Its files on the engine's host, when the engine does not use this machine's in place. */
  engineFiles?: EngineFiles;
}

/** The instance's files on an engine that does not use this machine's files in place (engine.filesRoot). */
export interface EngineFiles {
  root: string;
  folders: SyncFolder[];
  /** Where a path of this machine is on the engine's host, or undefined when nothing syncs it there. */
  toEngine: (localPath: string) => string | undefined;
}

/**
 * What an instance's engine needs synced: the worktree (mirrored, .gitignore respected, without
 * .git) to `<root>/src`, its data root (seeded once, then the stack's own) and secrets (0600) to
 * `<root>/state`, and each declared data.shared folder to `<root>/data/<name>`. Undefined when the
 * engine uses this machine's files in place (the local engine).
 */
export function engineFiles(ctx: Context, inst: ResolvedInstance, datasets: DeclaredDataset[]): EngineFiles | undefined {
  const root = ctx.engine.filesRoot(inst.paths.dir);
  if (root === undefined) return undefined;
  const folders: SyncFolder[] = [
    { local: inst.identity.worktree, remote: path.posix.join(root, 'src'), mode: 'mirror' },
    { local: inst.paths.dataRoot, remote: path.posix.join(root, 'state', 'data'), mode: 'seed' },
    { local: secretsDir(inst.paths.dir), remote: path.posix.join(root, 'state', 'secrets'), mode: 'secret' },
    ...datasets.map((d): SyncFolder => ({ local: d.host, remote: path.posix.join(root, 'data', d.name), mode: 'mirror' })),
  ];
  // The deepest folder holding a path decides (the data root may lie inside the worktree).
  const byDepth = [...folders].sort((a, b) => b.local.length - a.local.length);
  const toEngine = (p: string) => {
    const f = byDepth.find((x) => p === x.local || p.startsWith(`${x.local}/`));
    return f ? path.posix.join(f.remote, path.relative(f.local, p).split(path.sep).join('/')) : undefined;
  };
  return { root, folders, toEngine };
}

/**
 * Puts a prepared instance in place on its engine: syncs its files there (when the engine does not
 * use this machine's) and opens the forwards of its ports (when its ports are on another host).
 * Nothing to do on the local engine. Returns what was synced, for the config stage's details.
 */
export async function placeOnEngine(ctx: Context, prepared: Pick<PreparedInstance, 'engineFiles' | 'record'>): Promise<{ engine: string; synced: string[]; durationMs: number } | undefined> {
  const files = prepared.engineFiles;
  const t0 = Date.now();
  const present: SyncFolder[] = [];
  for (const f of files?.folders ?? []) if (await stat(f.local).then((st) => st.isDirectory(), () => false)) present.push(f);
  if (present.length > 0) {
    ctx.onProgress({ type: 'step', message: `syncing ${present.map((f) => path.basename(f.local)).join(', ')} to engine ${ctx.engine.name}` });
    await ctx.engine.sync(present, ctx.signal);
  }
  await ctx.engine.forward(prepared.record.leases);
  return files ? { engine: ctx.engine.name, synced: present.map((f) => f.local), durationMs: Date.now() - t0 } : undefined;
}

/** Undoes placeOnEngine: closes the forwards and, with `files`, removes the instance's files on the engine. */
export async function removeFromEngine(ctx: Context, inst: Pick<ResolvedInstance, 'paths'>, leases: Lease[], opts: { files: boolean }): Promise<void> {
  await ctx.engine.unforward(leases);
  const root = ctx.engine.filesRoot(inst.paths.dir);
  if (opts.files && root !== undefined) await ctx.engine.removeFiles(root);
}

/** What Compose gets for the instance's secrets: each value by name, and where their files are. */
export function secretEnv(inst: ResolvedInstance, secrets: Secret[]): Record<string, string> {
  return { SANDSTACK_SECRETS_DIR: secretsDir(inst.paths.dir), ...Object.fromEntries(secrets.map((s) => [s.name, s.value])) };
}

/**
 * The project's compose files as Compose would take them (compose.files, else COMPOSE_FILE, else
 * discovery; `files` is empty for discovery) and the project directory Compose uses: the first
 * file's folder (relative paths, env_file and .env resolve there), else the sandstack.yaml folder.
 */
export async function sourceComposeFiles(ctx: Context, inst: ResolvedInstance): Promise<{ files: string[]; readFiles: string[]; projectDir: string }> {
  const files = await locateComposeFiles(inst.projectDir, inst.loaded.config.compose.files, { env: ctx.env });
  const projectDir = composeProjectDir(inst.projectDir, files);
  const readFiles = files.length > 0 ? files : await composeFilesOf({ projectDir, files: [] });
  return { files, readFiles, projectDir };
}

export async function composeProjectFor(ctx: Context, inst: ResolvedInstance, leases: Lease[]): Promise<ComposeProject> {
  const cli = await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) });
  const { files, projectDir } = await sourceComposeFiles(ctx, inst);
  return {
    cli,
    projectName: inst.identity.id,
    projectDir,
    files,
    profiles: inst.loaded.config.compose.profiles,
    env: interpolationEnv(inst.identity, leases, inst.paths.dataRoot),
    allowEnv: allowedHostEnv(inst),
    engineEnv: ctx.engine.composeEnv,
  };
}

/** Resolves, leases and renders; writes the isolated model to the state dir when `persist`. */
export async function prepareInstance(ctx: Context, opts: { persist: boolean; inst?: ResolvedInstance }): Promise<PreparedInstance> {
  const inst = opts.inst ?? (await resolveInstance(ctx));
  // Declared host data must exist before anything is registered or started.
  const configDir = configDirOf(inst.loaded);
  const datasets = declaredDatasets(inst.loaded.config, configDir);
  const template = dataRootTemplate(inst.loaded.config, configDir);
  await assertDataPathsExist(datasets, template, inst.loaded.file);
  const source = await composeProjectFor(ctx, inst, []);
  const leased = await ensureLeases(ctx, inst, { persist: opts.persist });
  try {
    const secrets = await ensureSecrets(inst.paths.dir, inst.loaded.config.secrets, { persist: opts.persist });
    const project = { ...source, env: { ...interpolationEnv(inst.identity, leased.record.leases, inst.paths.dataRoot), ...secretEnv(inst, secrets) } };
    ctx.onProgress({ type: 'step', message: `resolving compose model (${source.cli.argv.join(' ')} ${source.cli.version})` });
    const { model, unsetVariables } = await resolveModelDetailed(project, ctx.signal);
    const files = engineFiles(ctx, inst, datasets);
    const images = await contentAddresses(model, {
      project: path.basename(inst.git?.mainWorktree ?? inst.projectDir),
      home: inst.identity.home ?? '',
      imageId: (ref) => ctx.engine.docker.getImage(ref).inspect().then((i) => i.Id, () => undefined),
    });
    const { model: rendered, report } = renderIsolated({
      images,
      model,
      identity: inst.identity,
      leases: leased.record.leases,
      allowExternal: inst.loaded.config.external,
      allowEnv: allowedHostEnv(inst),
      egressNone: Object.entries(inst.loaded.config.services).filter(([, s]) => s.egress === 'none').map(([n]) => n),
      telemetry: await telemetryFor(ctx, inst.loaded.config.observability),
      defaultLogDriver: await defaultLogDriver(ctx.engine.docker),
      sharedData: datasets,
      ...(files ? { engineFiles: { engine: ctx.engine.name, toEngine: files.toEngine } } : {}),
    });
    const notices = [...leased.notices];
    let dataSeed: SeedResult | undefined;
    if (opts.persist) {
      // A new instance's data root starts as a copy of data.root.template (once: an existing one is its own).
      if (template !== undefined) {
        dataSeed = await seedDataRoot(template, inst.paths.dataRoot);
        if (dataSeed) {
          const shown = inst.loaded.config.data.root!.template;
          notices.push(seedLine(dataSeed, shown));
          ctx.onProgress({ type: 'step', message: seedLine(dataSeed, shown) });
        }
      }
      await mkdir(inst.paths.dataRoot, { recursive: true, mode: 0o700 });
      await writeFileAtomic(inst.paths.rendered, stringifyModel(rendered), { mode: 0o600 });
    }
    const runProject: ComposeProject = { ...project, files: opts.persist ? [inst.paths.rendered] : project.files };
    return {
      ...inst,
      record: leased.record,
      createdRecord: leased.created,
      project: runProject,
      model: rendered,
      resolved: model,
      report,
      services: activeServices(rendered, inst.loaded.config.compose.profiles),
      notices,
      unsetVariables,
      secrets,
      datasets,
      ...(dataSeed ? { dataSeed } : {}),
      ...(files ? { engineFiles: files } : {}),
    };
  } catch (e) {
    if (opts.persist && leased.created) {
      await releaseInstance(ctx, inst.identity.id).catch(() => undefined);
      await rm(inst.paths.dir, { recursive: true, force: true }).catch(() => undefined);
    }
    throw e;
  }
}

/** The compose project of an instance that was already rendered (down, logs, shell, destroy). */
export async function renderedProject(ctx: Context, inst: ResolvedInstance, leases: Lease[]): Promise<{ project: ComposeProject; model: ComposeModel } | undefined> {
  let text: string;
  try {
    text = await readFile(inst.paths.rendered, 'utf8');
  } catch {
    return undefined;
  }
  const base = await composeProjectFor(ctx, inst, leases).catch(async (e: unknown) => {
    if (e instanceof SandstackError && e.code === 'SANDSTACK_COMPOSE_NOT_FOUND') {
      // The worktree's compose file is gone, but the rendered model is enough to operate on.
      const cli = await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) });
      return { cli, projectName: inst.identity.id, projectDir: inst.projectDir, files: [], profiles: inst.loaded.config.compose.profiles, env: interpolationEnv(inst.identity, leases, inst.paths.dataRoot), allowEnv: allowedHostEnv(inst), engineEnv: ctx.engine.composeEnv };
    }
    throw e;
  });
  return { project: { ...base, files: [inst.paths.rendered] }, model: parseResolvedModel(text) };
}
