/**
 * Disk usage of what sandstack holds in this state home (`sandstack df`) and the disk budget check
 * of the user config (`budget.disk`, warned about by `up`).
 *
 * One `/system/df` answer of the engine gives every container's writable layer, every volume's size,
 * every image's size and the build cache. Only resources carrying sandstack's instance label and this
 * state home's label are counted. BuildKit's cache records carry no labels, so the build cache is
 * reported as the engine's (not attributable, not in the total); images labelled with the home
 * (tagged, or untagged layers and superseded builds) are attributed to their instance.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { loadUserConfig, formatSize, type LoadedUserConfig } from '../config/user.js';
import { SandstackError } from '../errors.js';
import { homeLabelValue, LABELS } from '../identity/identity.js';
import { instancePaths } from '../state/paths.js';
import { readRegistrySnapshot } from '../state/registry.js';
import type { Context } from './context.js';
import { listSnapshots } from '../data/snapshot.js';
import { registryOptions } from './instance.js';

const Labels = z.record(z.string(), z.string()).nullish();

/** The parts of the engine's `/system/df` answer used here (other fields are ignored). */
export const DockerDfSchema = z.object({
  LayersSize: z.number().optional(),
  Images: z
    .array(
      z.object({
        Id: z.string(),
        RepoTags: z.array(z.string()).nullish(),
        Size: z.number(),
        /** -1 when the engine did not compute it. */
        SharedSize: z.number().optional(),
        Containers: z.number().optional(),
        Labels,
      }),
    )
    .nullish(),
  Containers: z
    .array(
      z.object({
        Id: z.string(),
        Names: z.array(z.string()).nullish(),
        /** The writable layer; absent when 0. */
        SizeRw: z.number().nullish(),
        State: z.string().optional(),
        ImageID: z.string().optional(),
        Labels,
      }),
    )
    .nullish(),
  Volumes: z
    .array(
      z.object({
        Name: z.string(),
        Driver: z.string().optional(),
        Labels,
        /** Size is -1 when the engine cannot tell (a driver other than local). */
        UsageData: z.object({ Size: z.number(), RefCount: z.number() }).nullish(),
      }),
    )
    .nullish(),
  BuildCache: z
    .array(
      z.object({
        ID: z.string(),
        Size: z.number(),
        InUse: z.boolean().optional(),
        Shared: z.boolean().optional(),
      }),
    )
    .nullish(),
});
export type DockerDf = z.infer<typeof DockerDfSchema>;

export interface ImageDisk {
  id: string;
  tags: string[];
  /** Size including every layer (what `docker image ls` shows). */
  size: number;
  /** The part of `size` in layers shared with other images (undefined when the engine did not say). */
  sharedSize?: number;
  /** No tag: a layer of the classic builder or a build superseded by a newer one. */
  untagged: boolean;
  /** The instance label (unattributed images: of an instance that no longer exists, or none). */
  instance?: string;
}

export interface ImagesDisk {
  count: number;
  /** Sum of the images' sizes (each image id once), as `docker image ls` shows them: layers shared between images count in each. */
  size: number;
  /** Sum of their shared sizes, where the engine gave them. */
  sharedSize: number;
  /** Sum of their unique sizes (size - shared size; the whole size where the shared size is unknown). */
  uniqueSize: number;
  /**
   * The disk these images hold, estimated: their unique sizes plus the largest shared size once
   * (layers shared between them, such as the base image, are stored once). What TOTAL and the budget use.
   */
  disk: number;
  untagged: { count: number; size: number };
  list: ImageDisk[];
}

export interface DirDisk {
  path: string;
  exists: boolean;
  /** Apparent size of the files under it (hard links once). */
  size: number;
  files: number;
  /** Entries that could not be read (not counted). */
  unreadable: number;
}

export interface InstanceDisk {
  id: string;
  registered: boolean;
  containers: { count: number; size: number };
  /** unknown: volumes whose size the engine could not tell (not counted in size). */
  volumes: { count: number; size: number; unknown: string[] };
  images: ImagesDisk;
  stateDir: DirDisk;
  /** containers + volumes + images.disk + state dir. */
  total: number;
}

export interface DfResult {
  /** The state home, and the value of its label on the resources counted. */
  home: string;
  homeLabel: string;
  instances: InstanceDisk[];
  /** Images labelled with this home but with no instance label, or of instances that no longer exist. */
  unattributed: { images: ImagesDisk; instances: string[]; total: number };
  total: {
    containers: { count: number; size: number };
    volumes: { count: number; size: number; unknown: number };
    /** All images of this home; `disk` counts layers shared between instances' images once. */
    images: Omit<ImagesDisk, 'list'>;
    stateDirs: number;
    /** Snapshots (`sandstack snapshot save`) in this state home: their archives. */
    snapshots: { count: number; size: number };
    /** What sandstack holds in this state home: containers + volumes + images.disk + state dirs + snapshots (not the build cache). */
    size: number;
  };
  buildCache: {
    /** The engine's build cache as a whole: BuildKit records carry no labels, so none of it is attributed. */
    scope: 'engine';
    note: string;
    size: number;
    reclaimable: number;
    inUse: number;
    shared: number;
    records: number;
    /** Untagged images labelled with this home (classic-builder layers, superseded builds); already counted under images. */
    untaggedImages: { scope: 'home'; count: number; size: number };
  };
  notices: string[];
  durationMs: number;
}

const BUILD_CACHE_NOTE =
  "the whole engine's build cache: BuildKit cache records carry no labels, so sandstack cannot tell which builds are its own; not counted in the total (`docker builder prune` frees the reclaimable part)";

/** Sums a set of images (see ImagesDisk for what each figure means). */
export function sumImages(list: ImageDisk[]): ImagesDisk {
  const agg: ImagesDisk = { count: list.length, size: 0, sharedSize: 0, uniqueSize: 0, disk: 0, untagged: { count: 0, size: 0 }, list };
  let maxShared = 0;
  for (const img of list) {
    const shared = Math.min(img.size, img.sharedSize ?? 0);
    agg.size += img.size;
    agg.sharedSize += shared;
    agg.uniqueSize += img.size - shared;
    maxShared = Math.max(maxShared, shared);
    if (img.untagged) {
      agg.untagged.count++;
      agg.untagged.size += img.size;
    }
  }
  agg.disk = agg.uniqueSize + maxShared;
  return agg;
}

/** Validates the engine's `/system/df` answer. */
export function parseDockerDf(raw: unknown): DockerDf {
  const r = DockerDfSchema.safeParse(raw);
  if (!r.success) {
    throw new SandstackError('SANDSTACK_INTERNAL', `The engine's disk usage answer (/system/df) has an unexpected shape: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
      hint: 'Check the engine version (`sandstack --version -v`); sandstack expects Docker Engine API 1.41 or later.',
    });
  }
  return r.data;
}

const own = (labels: Record<string, string> | null | undefined, homeLabel: string): labels is Record<string, string> => labels?.[LABELS.home] === homeLabel;

/**
 * The instances of this home: the registered ones plus those whose containers or volumes carry the
 * instance label and this home's label. (Images alone do not make an instance exist.)
 */
export function instanceIdsOf(df: DockerDf, homeLabel: string, registered: string[]): string[] {
  const ids = new Set(registered);
  for (const r of [...(df.Containers ?? []), ...(df.Volumes ?? [])]) {
    const id = r.Labels?.[LABELS.instance];
    if (id && own(r.Labels, homeLabel)) ids.add(id);
  }
  return [...ids].sort();
}

export interface AggregateInput {
  df: DockerDf;
  home: string;
  /** homeLabelValue(home). */
  homeLabel: string;
  /** Ids of the registry's instances. */
  registered: string[];
  /** Sizes of the instances' state dirs (missing: not measured, counted as 0). */
  stateDirs?: Map<string, DirDisk>;
  /** Snapshots of this home (count and archive bytes). */
  snapshots?: { count: number; size: number };
}

/** Aggregates a `/system/df` answer and the registry into per-instance and total usage (pure). */
export function aggregateDiskUsage(input: AggregateInput): Omit<DfResult, 'durationMs'> {
  const { df, home, homeLabel } = input;
  const registered = new Set(input.registered);
  const ids = instanceIdsOf(df, homeLabel, input.registered);
  const notices: string[] = [];
  const byId = new Map<string, InstanceDisk>(
    ids.map((id) => [
      id,
      {
        id,
        registered: registered.has(id),
        containers: { count: 0, size: 0 },
        volumes: { count: 0, size: 0, unknown: [] },
        images: sumImages([]),
        stateDir: input.stateDirs?.get(id) ?? { path: instancePaths(home, id).dir, exists: false, size: 0, files: 0, unreadable: 0 },
        total: 0,
      },
    ]),
  );

  const seen = new Set<string>();
  const once = (key: string): boolean => (seen.has(key) ? false : (seen.add(key), true));

  for (const c of df.Containers ?? []) {
    const id = c.Labels?.[LABELS.instance];
    if (!id || !own(c.Labels, homeLabel) || !once(`c:${c.Id}`)) continue;
    const inst = byId.get(id)!;
    inst.containers.count++;
    inst.containers.size += Math.max(0, c.SizeRw ?? 0);
  }
  for (const v of df.Volumes ?? []) {
    const id = v.Labels?.[LABELS.instance];
    if (!id || !own(v.Labels, homeLabel) || !once(`v:${v.Name}`)) continue;
    const inst = byId.get(id)!;
    inst.volumes.count++;
    const size = v.UsageData?.Size;
    if (size === undefined || size < 0) inst.volumes.unknown.push(v.Name);
    else inst.volumes.size += size;
  }
  // A shared (content-addressed) image carries no instance label: it counts for the first instance
  // (by id) whose containers use it, once.
  const usersOf = new Map<string, string[]>();
  for (const c of df.Containers ?? []) {
    const id = c.Labels?.[LABELS.instance];
    if (id && c.ImageID && own(c.Labels, homeLabel)) usersOf.set(c.ImageID, [...new Set([...(usersOf.get(c.ImageID) ?? []), id])].sort());
  }
  const imagesOf = new Map<string, ImageDisk[]>();
  const unattributedList: ImageDisk[] = [];
  const gone = new Set<string>();
  for (const img of df.Images ?? []) {
    if (!own(img.Labels, homeLabel) || !once(`i:${img.Id}`)) continue;
    const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const instance = img.Labels[LABELS.instance] ?? (img.Labels[LABELS.content] ? usersOf.get(img.Id)?.[0] : undefined);
    const view: ImageDisk = {
      id: img.Id,
      tags,
      size: Math.max(0, img.Size),
      ...(img.SharedSize !== undefined && img.SharedSize >= 0 ? { sharedSize: img.SharedSize } : {}),
      untagged: tags.length === 0,
      ...(instance ? { instance } : {}),
    };
    if (instance && byId.has(instance)) imagesOf.set(instance, [...(imagesOf.get(instance) ?? []), view]);
    else {
      if (instance) gone.add(instance);
      unattributedList.push(view);
    }
  }
  for (const [id, list] of imagesOf) byId.get(id)!.images = sumImages(list);
  const unattributed = sumImages(unattributedList);

  const instances = [...byId.values()];
  for (const i of instances) i.total = i.containers.size + i.volumes.size + i.images.disk + i.stateDir.size;
  const unknownVolumes = instances.flatMap((i) => i.volumes.unknown);
  if (unknownVolumes.length > 0) notices.push(`The engine could not tell the size of ${unknownVolumes.length} volume(s) (${unknownVolumes.join(', ')}: a driver other than local); they are not counted.`);
  const unreadable = instances.filter((i) => i.stateDir.unreadable > 0);
  if (unreadable.length > 0) notices.push(`Some files under ${unreadable.map((i) => i.stateDir.path).join(', ')} could not be read; they are not counted.`);

  const sum = (f: (i: InstanceDisk) => number) => instances.reduce((n, i) => n + f(i), 0);
  // Home-wide, layers shared between instances' images count once too.
  const all = sumImages([...instances.flatMap((i) => i.images.list), ...unattributed.list]);
  const images = { count: all.count, size: all.size, sharedSize: all.sharedSize, uniqueSize: all.uniqueSize, disk: all.disk, untagged: all.untagged };
  const total = {
    containers: { count: sum((i) => i.containers.count), size: sum((i) => i.containers.size) },
    volumes: { count: sum((i) => i.volumes.count), size: sum((i) => i.volumes.size), unknown: unknownVolumes.length },
    images,
    stateDirs: sum((i) => i.stateDir.size),
    snapshots: input.snapshots ?? { count: 0, size: 0 },
    size: 0,
  };
  total.size = total.containers.size + total.volumes.size + images.disk + total.stateDirs + total.snapshots.size;

  // As `docker system df` counts it: shared records are not the cache's own; in-use ones are not reclaimable.
  let size = 0;
  let inUse = 0;
  let shared = 0;
  const records = df.BuildCache ?? [];
  for (const r of records) {
    if (r.Shared) shared += r.Size;
    else {
      size += r.Size;
      if (r.InUse) inUse += r.Size;
    }
  }
  return {
    home,
    homeLabel,
    instances,
    unattributed: { images: unattributed, instances: [...gone].sort(), total: unattributed.disk },
    total,
    buildCache: {
      scope: 'engine',
      note: BUILD_CACHE_NOTE,
      size,
      reclaimable: Math.max(0, size - inUse),
      inUse,
      shared,
      records: records.length,
      untaggedImages: { scope: 'home', count: images.untagged.count, size: images.untagged.size },
    },
    notices,
  };
}

/** Apparent size of the files under a folder (not following symlinks; hard links counted once). */
export async function dirSize(dir: string): Promise<DirDisk> {
  const out: DirDisk = { path: dir, exists: false, size: 0, files: 0, unreadable: 0 };
  try {
    if (!(await lstat(dir)).isDirectory()) return out;
  } catch {
    return out;
  }
  out.exists = true;
  const inodes = new Set<string>();
  const queue = [dir];
  while (queue.length > 0) {
    const batch = queue.splice(0, 16);
    await Promise.all(
      batch.map(async (d) => {
        let names: string[];
        try {
          names = await readdir(d);
        } catch {
          out.unreadable++;
          return;
        }
        for (let i = 0; i < names.length; i += 64) {
          await Promise.all(
            names.slice(i, i + 64).map(async (name) => {
              const p = path.join(d, name);
              try {
                const st = await lstat(p);
                if (st.isDirectory()) queue.push(p);
                else {
                  const key = `${st.dev}:${st.ino}`;
                  if (st.nlink > 1 && inodes.has(key)) return;
                  inodes.add(key);
                  out.size += st.size;
                  out.files++;
                }
              } catch (e) {
                if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.unreadable++;
              }
            }),
          );
        }
      }),
    );
  }
  return out;
}

/**
 * Disk usage of this state home's instances: one `/system/df` call, the registry, and a walk of each
 * instance's state dir (which holds its data root).
 */
export async function diskUsage(ctx: Context): Promise<DfResult> {
  const t0 = Date.now();
  const homeLabel = homeLabelValue(ctx.home);
  const [raw, { result: registry, notices: registryNotices }] = await Promise.all([ctx.engine.docker.df() as Promise<unknown>, readRegistrySnapshot(registryOptions(ctx))]);
  const df = parseDockerDf(raw);
  const registered = Object.keys(registry.instances);
  const ids = instanceIdsOf(df, homeLabel, registered);
  const stateDirs = new Map<string, DirDisk>();
  for (const id of ids) stateDirs.set(id, await dirSize(instancePaths(ctx.home, id).dir));
  const snapshots = (await listSnapshots(ctx.home)).reduce((a, x) => ({ count: a.count + 1, size: a.size + x.bytes }), { count: 0, size: 0 });
  const r = aggregateDiskUsage({ df, home: ctx.home, homeLabel, registered, stateDirs, snapshots });
  return { ...r, notices: [...registryNotices, ...r.notices], durationMs: Date.now() - t0 };
}

export interface BudgetCheck {
  /** budget.disk of the user config, in bytes (undefined: no budget set). */
  budgetBytes?: number;
  /** What sandstack holds in this state home (DfResult.total.size); undefined when not measured. */
  usedBytes?: number;
  exceeded: boolean;
  /** usedBytes as a percentage of the budget, rounded. */
  percent?: number;
  /** The user config file the budget comes from. */
  file: string;
  /** Set when the budget is exceeded: what to tell the user. */
  notice?: string;
}

/** Compares usage with the user config's budget (pure). */
export function budgetStatus(user: LoadedUserConfig, usage: Pick<DfResult, 'total'> | undefined): BudgetCheck {
  const budgetBytes = user.config.budget?.disk ?? undefined;
  if (budgetBytes === undefined || usage === undefined) return { budgetBytes, exceeded: false, file: user.file };
  const usedBytes = usage.total.size;
  const exceeded = usedBytes > budgetBytes;
  const check: BudgetCheck = { budgetBytes, usedBytes, exceeded, percent: Math.round((usedBytes / budgetBytes) * 100), file: user.file };
  if (exceeded) {
    check.notice =
      `disk budget exceeded: sandstack holds ${formatSize(usedBytes)} in this state home, ${formatSize(usedBytes - budgetBytes)} over the budget of ${formatSize(budgetBytes)} ` +
      `(budget.disk in ${user.file}). See \`sandstack df\`; free space with \`sandstack destroy\` of unused instances or \`sandstack gc\`.`;
  }
  return check;
}

/**
 * The disk budget check of the user config. Without a budget it reads only the user config (no
 * engine call). `usage` avoids a second `/system/df` when the caller has one.
 */
export async function checkBudget(ctx: Context, usage?: DfResult): Promise<BudgetCheck> {
  const user = await loadUserConfig(ctx.env);
  if (user.config.budget?.disk == null) return budgetStatus(user, undefined);
  return budgetStatus(user, usage ?? (await diskUsage(ctx)));
}

/**
 * For `up`: the budget notice when the budget is exceeded, else nothing. Never fails: an invalid user
 * config, an engine error or a df slower than `timeoutMs` give no notice. Without a budget, only the
 * user config is read.
 */
export async function budgetNotices(ctx: Context, timeoutMs = 15_000): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
    timer.unref();
  });
  try {
    // An invalid user config is said (it turns the budget off), never the start's failure.
    const check = await Promise.race([checkBudget(ctx).catch((e: Error) => ({ notice: `disk budget not checked: ${e.message}` })), timeout]);
    return check?.notice ? [check.notice] : [];
  } finally {
    clearTimeout(timer);
  }
}
