/**
 * `sandstack gc`: removes what sandstack left behind in this state home, and only that: orphaned
 * throwaway instances (owner process gone), instances past their expiry (ttl), instances whose worktree folder is gone (reported;
 * removed with `worktreeGone`, an interactive `local` one only when named), registry records and
 * leases of instances that exist nowhere any more, scrape targets and (with `evidenceOlderThanMs`)
 * evidence folders of instances that do not exist, images built for instances that are gone, and
 * (with `images`) shared content-addressed images and untagged images of this home that no
 * container uses.
 * Everything is found by sandstack's labels and this home's label; `dryRun` only lists.
 */
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { removeInstanceImages, removeUnusedContentImages } from '../engine/docker.js';
import { homeLabelValue, LABELS } from '../identity/identity.js';
import { obsPaths } from '../observability/stack.js';
import type { Context } from './context.js';
import { ownerAlive, parseOwner } from '../state/owner.js';
import { readRegistrySnapshot } from '../state/registry.js';
import { registryOptions, releaseInstance } from './instance.js';
import { findExpired, findOrphans, homeSnapshot, removeInstanceByLabel } from './reap.js';

export type GcKind = 'orphan' | 'expired' | 'worktree-gone' | 'stale-record' | 'targets' | 'evidence' | 'image';

export interface GcItem {
  kind: GcKind;
  /** The instance it belongs to. */
  id: string;
  /** What it is (an instance, a file, an image tag). */
  subject: string;
  why: string;
  /** Removed (false: listed only, with --dry-run or because removing needs a flag). */
  removed: boolean;
  /** When it is listed but not removed: what would remove it. */
  hint?: string;
  /** The engine it is on (`local`, or a remote engine's name). */
  engine?: string;
}

export interface GcOptions {
  dryRun?: boolean;
  /** Remove instances whose worktree folder no longer exists (sandbox ones; local ones only when named). */
  worktreeGone?: boolean;
  /** Instances named by the user (`--instance`): local ones among them may be removed too. */
  named?: string[];
  /** Remove evidence folders of instances that do not exist when older than this. */
  evidenceOlderThanMs?: number;
  /** Also remove shared (content-addressed) and untagged images of this home that no container uses. */
  images?: boolean;
}

export interface GcResult {
  items: GcItem[];
  dryRun: boolean;
  durationMs: number;
}

/**
 * Collects on the context's engine (the local one), then on every remote engine an instance of this
 * state home runs on: orphans, expired instances and images are per engine; scrape targets and
 * evidence are this machine's. A remote engine that does not answer has its instances whose owner
 * is gone listed (not removed), to be collected when it answers again.
 */
export async function gc(ctx: Context, opts: GcOptions = {}): Promise<GcResult> {
  const t0 = Date.now();
  const all = (await readRegistrySnapshot(registryOptions(ctx))).result.instances;
  const items: GcItem[] = [];
  await gcOnEngine(ctx, opts, items, new Set(Object.keys(all)));
  if (Object.values(all).some((r) => r.engine)) {
    const { openRecordedEngines } = await import('../engine/select.js');
    for (const [name, engine] of await openRecordedEngines(Object.values(all), { home: ctx.home, env: ctx.env, signal: ctx.signal })) {
      if (!(engine instanceof Error)) {
        await gcOnEngine({ ...ctx, engine }, opts, items);
        continue;
      }
      for (const rec of Object.values(all).filter((r) => r.engine?.name === name)) {
        const owner = parseOwner(rec.owner);
        if (!owner || (await ownerAlive(owner))) continue;
        items.push({ kind: 'orphan', id: rec.id, subject: `instance ${rec.id}`, why: `its owner, sandstack process ${owner.pid}, is gone`, removed: false, engine: name, hint: `engine ${name} does not answer (${engine.message.split('\n')[0]}); run sandstack gc again when it does` });
      }
    }
  }
  return { items, dryRun: opts.dryRun === true, durationMs: Date.now() - t0 };
}

/** gc on one engine; with `allIds` (the local pass), also this machine's scrape targets and evidence. */
async function gcOnEngine(ctx: Context, opts: GcOptions, out: GcItem[], allIds?: Set<string>): Promise<void> {
  const dry = opts.dryRun === true;
  const items: GcItem[] = [];
  const snap = await homeSnapshot(ctx);
  const records = snap.registry.instances;
  const labelledIds = new Set([...snap.containers, ...snap.volumes, ...snap.networks].map((r) => r.labels[LABELS.instance]).filter((x): x is string => !!x));
  const gone = new Set<string>();

  for (const o of await findOrphans(snap)) {
    if (!dry) await removeInstanceByLabel(ctx, o.id, snap);
    items.push({ kind: 'orphan', id: o.id, subject: `instance ${o.id}`, why: `throwaway instance whose owner, sandstack process ${o.pid}, is gone`, removed: !dry });
    gone.add(o.id);
  }

  for (const e of await findExpired(snap)) {
    if (gone.has(e.id)) continue;
    if (!dry) await removeInstanceByLabel(ctx, e.id, snap);
    items.push({ kind: 'expired', id: e.id, subject: `instance ${e.id}`, why: e.why, removed: !dry });
    gone.add(e.id);
  }

  for (const rec of Object.values(records)) {
    if (gone.has(rec.id) || !rec.worktree || existsSync(rec.worktree)) continue;
    const inDocker = labelledIds.has(rec.id);
    if (!inDocker) {
      // Nothing in Docker, no folder: only its record (and leases) remains.
      if (!dry) await releaseInstance(ctx, rec.id);
      items.push({ kind: 'stale-record', id: rec.id, subject: `registry record of ${rec.id} (${rec.leases.length} leases)`, why: `its worktree ${rec.worktree} is gone and nothing of it is in Docker`, removed: !dry });
      gone.add(rec.id);
      continue;
    }
    const allowed = opts.worktreeGone === true && (rec.kind === 'sandbox' || (opts.named ?? []).includes(rec.id));
    if (allowed && !dry) await removeInstanceByLabel(ctx, rec.id, snap);
    items.push({
      kind: 'worktree-gone',
      id: rec.id,
      subject: `instance ${rec.id}`,
      why: `its worktree ${rec.worktree} no longer exists`,
      removed: allowed && !dry,
      ...(allowed ? {} : { hint: rec.kind === 'local' ? `an interactive (local) instance: sandstack gc --worktree-gone --instance ${rec.id}, or sandstack destroy --instance ${rec.id}` : 'sandstack gc --worktree-gone' }),
    });
    if (allowed) gone.add(rec.id);
  }

  const exists = (id: string) => !gone.has(id) && (id in records || labelledIds.has(id) || (allIds?.has(id) ?? false));

  if (allIds) await collectLocalFiles(ctx, dry, exists, opts, items);
  await collectImages(ctx, dry, exists, opts, items);
  out.push(...items.map((i) => ({ ...i, engine: ctx.engine.name })));
}

/** Scrape targets and evidence folders of instances that do not exist (this machine's files). */
async function collectLocalFiles(ctx: Context, dry: boolean, exists: (id: string) => boolean, opts: GcOptions, items: GcItem[]): Promise<void> {
  // The targets of every engine's stack (a remote engine's Prometheus sees the removal at its next sync).
  const engines = await readdir(path.join(ctx.home, 'obs', 'engines')).catch(() => [] as string[]);
  for (const targetsDir of [obsPaths(ctx.home).targetsDir, ...engines.map((e) => obsPaths(ctx.home, e).targetsDir)]) {
    for (const f of await readdir(targetsDir).catch(() => [] as string[])) {
      const id = f.replace(/\.json$/, '');
      if (!f.endsWith('.json') || exists(id)) continue;
      if (!dry) await rm(path.join(targetsDir, f), { force: true });
      items.push({ kind: 'targets', id, subject: path.join(targetsDir, f), why: `scrape targets of ${id}, which does not exist`, removed: !dry });
    }
  }

  const evidenceDir = path.join(ctx.home, 'evidence');
  for (const id of await readdir(evidenceDir).catch(() => [] as string[])) {
    if (exists(id)) continue;
    const dir = path.join(evidenceDir, id);
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    const old = opts.evidenceOlderThanMs !== undefined && age >= opts.evidenceOlderThanMs;
    if (old && !dry) await rm(dir, { recursive: true, force: true });
    items.push({
      kind: 'evidence',
      id,
      subject: dir,
      why: `evidence of ${id}, which does not exist (last written ${Math.round(age / 3_600_000)} h ago)`,
      removed: old && !dry,
      ...(old ? {} : { hint: 'kept as evidence; --evidence-older-than <duration> removes it' }),
    });
  }

}

/** Images of this home on the context's engine that no existing instance uses. */
async function collectImages(ctx: Context, dry: boolean, exists: (id: string) => boolean, opts: GcOptions, items: GcItem[]): Promise<void> {
  // Images built for instances that are gone (no record, no container, volume or network): their
  // tags and the untagged layers that carry their label.
  const images = await ctx.engine.docker.listImages({ all: true, filters: { label: [`${LABELS.home}=${homeLabelValue(ctx.home)}`] } });
  const tagsOf = (img: { RepoTags?: string[] }) => (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
  const goneImages = new Map<string, string[]>();
  for (const img of images) {
    const id = img.Labels?.[LABELS.instance];
    if (id && !exists(id)) goneImages.set(id, [...(goneImages.get(id) ?? []), ...tagsOf(img)]);
  }
  for (const [id, tags] of goneImages) {
    const removed = dry ? [] : await removeInstanceImages(ctx.engine.docker, id, [], homeLabelValue(ctx.home));
    items.push({ kind: 'image', id, subject: (dry ? tags : removed).join(', ') || 'untagged layers', why: `built for ${id}, which does not exist`, removed: !dry });
  }

  // With `images`: untagged images of this home (left by a rebuild, or layers of the classic
  // builder) that no container uses and no other image builds on.
  if (opts.images) {
    const used = new Set((await ctx.engine.docker.listContainers({ all: true })).map((c) => c.ImageID));
    const parents = new Set(images.map((i) => i.ParentId).filter(Boolean));
    // Content-addressed images (shared by the instances of one source) that no container uses,
    // removed in one call (which checks again that no container uses them).
    const unusedShared = images.filter((img) => img.Labels?.[LABELS.content] && !used.has(img.Id));
    const removedShared = new Set(
      dry || unusedShared.length === 0 ? [] : await removeUnusedContentImages(ctx.engine.docker, homeLabelValue(ctx.home), [], unusedShared.map((i) => i.Id)),
    );
    for (const img of unusedShared) {
      const tags = tagsOf(img);
      const removed = !dry && removedShared.has(tags[0] ?? img.Id);
      if (!dry && !removed) continue;
      items.push({ kind: 'image', id: '-', subject: `${tags.join(', ') || img.Id.slice(7, 19)} (${Math.round(img.Size / 1e6)} MB)`, why: 'a shared image (content-addressed) that no container uses', removed });
    }
    for (const img of images) {
      const id = img.Labels?.[LABELS.instance] ?? '';
      if (img.Labels?.[LABELS.content] || goneImages.has(id) || tagsOf(img).length > 0 || used.has(img.Id) || parents.has(img.Id)) continue;
      let removed = false;
      if (!dry) {
        removed = await ctx.engine.docker
          .getImage(img.Id)
          .remove({ noprune: false })
          .then(
            () => true,
            () => false, // in use meanwhile, or still a parent: kept
          );
        if (!removed) continue;
      }
      items.push({ kind: 'image', id: id || '-', subject: `${img.Id.slice(7, 19)} (untagged, ${Math.round(img.Size / 1e6)} MB)`, why: `an untagged image${id ? ` built for ${id}` : ''} that no container uses`, removed });
    }
  }
}
