/**
 * Reaping orphans: throwaway instances (gate --fresh, verify) whose owning sandstack process is gone
 * (killed, its machine rebooted), and instances past their expiry (`--ttl`), are removed by the
 * next sandstack that starts something, so that nothing they created outlives them. Only resources carrying sandstack's owner label and this
 * state home's label are looked at; an instance whose owner still runs is never touched.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import ms from 'ms';
import { labelledResources, removeInstanceImages, sweepInstance, type LabelledResources } from '../engine/docker.js';
import { homeLabelValue, LABELS } from '../identity/identity.js';
import { removeTargets } from '../observability/wiring.js';
import { instancePaths } from '../state/paths.js';
import { ownerAlive, parseOwner } from '../state/owner.js';
import { engineNameOf, expiresAt, readRegistrySnapshot, type Registry } from '../state/registry.js';
import type { Context } from './context.js';
import { registryOptions, releaseInstance, removeFromEngine } from './instance.js';

export interface ReapedInstance {
  id: string;
  /** The owner label value (`<pid>@<start>@<boot id>`). */
  owner: string;
  why: string;
  removed: { containers: number; volumes: number; networks: number; images: number; processes: number; leases: number };
}

export interface ReapResult {
  reaped: ReapedInstance[];
  /** Throwaway instances looked at (alive owners included). */
  checked: number;
  durationMs: number;
}

/** Compose processes (`... -p <project> ...`, v1 or v2) whose project name matches: pid and project. */
export async function composeProcesses(match: (project: string) => boolean): Promise<{ pid: number; project: string }[]> {
  const out: { pid: number; project: string }[] = [];
  const entries = await readdir('/proc').catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
      .map(async (e) => {
        const argv = (await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')).split('\0');
        const p = argv.indexOf('-p');
        const project = p >= 0 ? argv[p + 1] : argv.find((a) => a.startsWith('--project-name='))?.slice('--project-name='.length);
        if (project && match(project) && argv.some((a) => /(^|\/)docker-compose(-v1)?$|^compose$/.test(a))) out.push({ pid: Number(e), project });
      }),
  );
  return out;
}

/** Compose processes still running for one project: their pids. */
export async function composeProcessesOf(projectName: string): Promise<number[]> {
  return (await composeProcesses((p) => p === projectName)).map((x) => x.pid);
}

/** What carries this state home's labels, and the registry, as the sweeps see them. */
export interface HomeSnapshot extends LabelledResources {
  registry: Registry;
}

/**
 * Lists this home's labelled resources on the context's engine (optionally only those with
 * `extraLabel`) and reads the registry, keeping the records of instances on that engine.
 */
export async function homeSnapshot(ctx: Context, extraLabel?: string): Promise<HomeSnapshot> {
  const [resources, registry] = await Promise.all([
    labelledResources(ctx.engine.docker, { labels: [`${LABELS.home}=${homeLabelValue(ctx.home)}`, ...(extraLabel ? [extraLabel] : [])] }),
    readRegistrySnapshot(registryOptions(ctx)),
  ]);
  const here = Object.fromEntries(Object.entries(registry.result.instances).filter(([, r]) => engineNameOf(r) === ctx.engine.name));
  return { ...resources, registry: { ...registry.result, instances: here } };
}

/** Throwaway instances whose owner is gone: from the owner label, or the registry record alone. */
export async function findOrphans(snap: HomeSnapshot): Promise<{ id: string; owner: string; pid: number }[]> {
  const owners = new Map<string, string>();
  for (const r of [...snap.containers, ...snap.volumes, ...snap.networks]) {
    const id = r.labels[LABELS.instance];
    const owner = r.labels[LABELS.owner];
    if (id && owner) owners.set(id, owner);
  }
  // Handed over (an instance created with a ttl, started): its record has no owner any more.
  for (const rec of Object.values(snap.registry.instances)) if (!rec.owner) owners.delete(rec.id);
  // Killed before Docker had anything: only the registry record (and its leases) remains.
  for (const rec of Object.values(snap.registry.instances)) if (rec.owner && !owners.has(rec.id)) owners.set(rec.id, rec.owner);
  const out: { id: string; owner: string; pid: number }[] = [];
  for (const [id, value] of owners) {
    const owner = parseOwner(value);
    if (owner && !(await ownerAlive(owner))) out.push({ id, owner: value, pid: owner.pid });
  }
  return out;
}

/**
 * Instances past their expiry (a ttl, and no use for that long). One whose owner still runs (being
 * created, or a throwaway still in use) is not expired yet, however short its ttl.
 */
export async function findExpired(snap: HomeSnapshot, now = Date.now()): Promise<{ id: string; why: string; expiredAt: number }[]> {
  const out: { id: string; why: string; expiredAt: number }[] = [];
  for (const rec of Object.values(snap.registry.instances)) {
    const at = expiresAt(rec);
    if (at === undefined || at > now) continue;
    const owner = parseOwner(rec.owner);
    if (owner && (await ownerAlive(owner))) continue;
    out.push({ id: rec.id, expiredAt: at, why: `expired ${new Date(at).toISOString()} (ttl ${ms(rec.ttlMs!, { long: true })} without use)` });
  }
  return out;
}

/**
 * Removes everything of an instance by label: its compose processes, containers, volumes,
 * networks, images, scrape targets, state folder and registry record (leases).
 */
export async function removeInstanceByLabel(ctx: Context, id: string, snap: HomeSnapshot): Promise<ReapedInstance['removed']> {
  const processes = await composeProcessesOf(id);
  for (const pid of processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const count = (list: { labels: Record<string, string> }[]) => list.filter((r) => r.labels[LABELS.instance] === id).length;
  await removeTargets(ctx, id).catch(() => undefined);
  await sweepInstance(ctx.engine.docker, id);
  const images = await removeInstanceImages(ctx.engine.docker, id, [], homeLabelValue(ctx.home));
  // Its forwards and its files on the engine's host (a remote engine), then its state here.
  await removeFromEngine(ctx, { paths: instancePaths(ctx.home, id) }, snap.registry.instances[id]?.leases ?? [], { files: true });
  await rm(instancePaths(ctx.home, id).dir, { recursive: true, force: true });
  const leases = snap.registry.instances[id]?.leases.length ?? 0;
  await releaseInstance(ctx, id);
  return { containers: count(snap.containers), volumes: count(snap.volumes), networks: count(snap.networks), images: images.length, processes: processes.length, leases };
}

/**
 * Finds throwaway instances of this state home whose owner is gone and removes them: their compose
 * processes, containers, volumes, networks, images, scrape targets, state folder and leases.
 */
export async function reapOrphans(ctx: Context): Promise<ReapResult> {
  const t0 = Date.now();
  const snap = await homeSnapshot(ctx, LABELS.owner);
  const orphans = await findOrphans(snap);
  const reaped: ReapedInstance[] = [];
  for (const o of orphans) {
    reaped.push({ id: o.id, owner: o.owner, why: `its owner, sandstack process ${o.pid}, is gone`, removed: await removeInstanceByLabel(ctx, o.id, snap) });
  }
  for (const e of await findExpired(snap)) {
    if (reaped.some((r) => r.id === e.id)) continue;
    reaped.push({ id: e.id, owner: '', why: e.why, removed: await removeInstanceByLabel(ctx, e.id, snap) });
  }
  const checked = new Set([...snap.containers, ...snap.volumes, ...snap.networks].map((r) => r.labels[LABELS.instance])).size;
  return { reaped, checked, durationMs: Date.now() - t0 };
}

/** One line per reaped instance, for progress and notices. */
export function reapedLine(r: Pick<ReapedInstance, 'id' | 'why'> & { removed: Partial<ReapedInstance['removed']> }): string {
  const m = r.removed;
  return `reaped orphan ${r.id} (${r.why}): ${m.containers} containers, ${m.volumes} volumes, ${m.networks} networks, ${m.images} images, ${m.processes} compose processes, ${m.leases} leases`;
}

/**
 * The fast orphan sweep before anything starts: throwaway instances whose owner process is gone
 * are removed (and said so). A sweep that fails is a notice, never the operation's failure.
 */
export async function reapFirst(ctx: Context, opts: { quiet?: boolean } = {}): Promise<ReapedInstance[]> {
  try {
    const r = await reapOrphans(ctx);
    for (const x of r.reaped) ctx.onProgress({ type: 'notice', message: reapedLine(x) });
    return r.reaped;
  } catch (e) {
    if (!opts.quiet) ctx.onProgress({ type: 'notice', message: `orphan sweep skipped: ${(e as Error).message}` });
    return [];
  }
}

