/**
 * Status of one instance and the list of all instances, from Docker (truth) and the registry (intent).
 * `sandstack ls` loads this module alone: lifecycle/instance.ts (config, Compose, rendering) is imported
 * only when the registry must be rebuilt or an unregistered instance adopted.
 */
import { instanceContainers, type ContainerView, type LabelledResources } from '../engine/docker.js';
import path from 'node:path';
import { COMPOSE_SERVICE_LABEL, homeLabelValue, LABELS } from '../identity/identity.js';
import { leaseKey, reachPort } from '../ports/leases.js';
import type { InstanceRecord, Lease, RegistryOptions } from '../state/registry.js';
import { engineNameOf, expiresAt, readRegistrySnapshot, withRegistry } from '../state/registry.js';
import type { Context } from './context.js';
import { versionReport } from '../version.js';

export interface ServicePort {
  container: number;
  protocol: string;
  host: number | null;
  hostIp: string | null;
  url: string | null;
}

export interface ServiceStatus {
  name: string;
  state: string;
  health: string | null;
  exitCode: number | null;
  container: string | null;
  ports: ServicePort[];
}

/** `unknown`: its engine (a remote one) did not answer. */
export type InstanceState = 'running' | 'partial' | 'stopped' | 'down' | 'unknown';

export interface InstanceSummary {
  id: string;
  worktree: string;
  projectDir: string;
  kind: string;
  branch?: string;
  stateDir?: string;
  registered: boolean;
  state: InstanceState;
  /** The engine it runs on (`local`, or a remote engine's name), and where that is (remote only). */
  engine?: string;
  engineEndpoint?: string;
  /** With a ttl: when it expires (ISO time) and how long is left (ms, 0 when past). */
  expiresAt?: string;
  expiresInMs?: number;
}

export function urlFor(lease: Pick<Lease, 'scheme' | 'hostPort' | 'localPort'> | undefined, hostIp: string, hostPort: number): string | null {
  if (!lease || (lease.scheme !== 'http' && lease.scheme !== 'https')) return null;
  // On a remote engine the service answers here through its forward.
  if (lease.localPort) return `${lease.scheme}://127.0.0.1:${lease.localPort}`;
  const host = hostIp === '0.0.0.0' || hostIp === '' ? '127.0.0.1' : hostIp.includes(':') ? `[${hostIp}]` : hostIp;
  return `${lease.scheme}://${host}:${hostPort}`;
}

/** Ports of a service: what Docker reports for a running container, else the leases. */
export function servicePorts(service: string, container: ContainerView | undefined, leases: Lease[]): ServicePort[] {
  const mine = leases.filter((l) => l.service === service);
  if (container && container.state === 'running' && container.ports.length > 0) {
    return container.ports.map((p) => {
      const lease = mine.find((l) => l.containerPort === p.containerPort && l.protocol === p.protocol);
      return { container: p.containerPort, protocol: p.protocol, host: lease?.localPort ?? p.hostPort, hostIp: lease?.localPort ? '127.0.0.1' : p.hostIp, url: urlFor(lease, p.hostIp, p.hostPort), ...(lease?.localPort ? { enginePort: p.hostPort } : {}) };
    });
  }
  return mine.map((l) => ({ container: l.containerPort, protocol: l.protocol, host: reachPort(l), hostIp: '127.0.0.1', url: urlFor(l, '127.0.0.1', l.hostPort), ...(l.localPort ? { enginePort: l.hostPort } : {}) }));
}

/**
 * The instance's state from its services' containers: `running` when every service runs (a service
 * in `mayFinish` that exited 0 is done, not down), `partial` when some do, `stopped` when containers
 * exist but none runs, `down` when there are none. A restarting, paused, dead or exited container
 * is never counted as running.
 */
export function summarizeState(services: { name?: string; state: string; exitCode?: number | null }[], mayFinish: string[] = []): InstanceState {
  if (services.length === 0) return 'down';
  const present = services.filter((s) => s.state !== 'not created').length;
  if (present === 0) return 'down';
  const running = services.filter((s) => s.state === 'running').length;
  const finished = services.filter((s) => s.name !== undefined && mayFinish.includes(s.name) && s.state === 'exited' && s.exitCode === 0).length;
  if (running + finished === services.length && running > 0) return 'running';
  return running === 0 ? 'stopped' : 'partial';
}

export async function serviceStatuses(ctx: Context, id: string, expected: string[], leases: Lease[]): Promise<ServiceStatus[]> {
  const containers = await instanceContainers(ctx.engine.docker, id);
  const names = [...new Set([...expected, ...containers.map((c) => c.service)])].sort();
  return names.map((name) => {
    const c = containers.filter((x) => x.service === name).sort((a, b) => Date.parse(b.startedAt ?? '') - Date.parse(a.startedAt ?? ''))[0];
    return {
      name,
      state: c?.state ?? 'not created',
      health: c?.health ?? null,
      exitCode: c && c.state !== 'running' ? c.exitCode : null,
      container: c?.name ?? null,
      ports: servicePorts(name, c, leases),
    };
  });
}

export interface ListedInstance extends InstanceSummary {
  containers: { running: number; total: number };
  ports: { service: string; container: number; protocol: string; host: number; url: string | null; name?: string }[];
  /** Where the registry and Docker's labels disagree, in words (empty when they agree). */
  drift: string[];
}

export function expiry(rec: InstanceRecord | undefined): { expiresAt?: string; expiresInMs?: number } {
  const at = rec ? expiresAt(rec) : undefined;
  return at === undefined ? {} : { expiresAt: new Date(at).toISOString(), expiresInMs: Math.max(0, at - Date.now()) };
}

/** One container as `docker ps -a` lists it, reduced to what the instance list needs. */
export interface ListedContainer {
  labels: Record<string, string>;
  /** running, exited, restarting, paused, created, dead, removing */
  state: string;
  /** Docker's status text (`Exited (0) 2 minutes ago`). */
  status: string;
  created: number;
  ports: { containerPort: number; protocol: string; hostPort?: number }[];
}

/** The exit code in Docker's status text (`Exited (137) 5 seconds ago`), if it shows one. */
export function exitCodeOf(status: string): number | null {
  const m = /^Exited \((-?\d+)\)/.exec(status);
  return m ? Number(m[1]) : null;
}

/**
 * The state of one instance from its containers (the newest per service), the services its last
 * start ran (missing ones count as not created) and those that may finish; and where the registry
 * record and the labels disagree.
 */
export function listedState(id: string, containers: ListedContainer[], rec: InstanceRecord | undefined): { state: InstanceState; containers: { running: number; total: number }; drift: string[] } {
  const newest = new Map<string, ListedContainer>();
  for (const c of containers) {
    const service = c.labels[COMPOSE_SERVICE_LABEL] ?? '?';
    const cur = newest.get(service);
    if (!cur || c.created > cur.created) newest.set(service, c);
  }
  const names = [...new Set([...(rec?.services ?? []), ...newest.keys()])];
  const services = names.map((name) => {
    const c = newest.get(name);
    return { name, state: c?.state ?? 'not created', exitCode: c ? exitCodeOf(c.status) : null };
  });
  const drift: string[] = [];
  const missing = (rec?.services ?? []).filter((s) => !newest.has(s));
  if (containers.length > 0 && missing.length > 0) drift.push(`no container for ${missing.join(', ')} (removed outside sandstack?)`);
  const labelled = containers[0]?.labels[LABELS.worktree];
  if (rec && labelled && rec.worktree && path.resolve(labelled) !== path.resolve(rec.worktree)) drift.push(`registry says worktree ${rec.worktree}, Docker's labels say ${labelled}`);
  for (const c of containers) {
    if (c.state !== 'running') continue;
    const service = c.labels[COMPOSE_SERVICE_LABEL] ?? '?';
    for (const p of c.ports) {
      const lease = rec?.leases.find((l) => l.service === service && l.containerPort === p.containerPort && l.protocol === p.protocol);
      if (p.hostPort && lease && lease.hostPort !== p.hostPort) drift.push(`${service}:${p.containerPort}/${p.protocol} is published on ${p.hostPort}, but its lease is ${lease.hostPort} (sandstack down && sandstack up re-publishes it on the lease)`);
    }
  }
  return {
    state: summarizeState(services, rec?.mayFinish),
    containers: { running: containers.filter((c) => c.state === 'running').length, total: containers.length },
    drift,
  };
}

/**
 * The registry options of lifecycle/instance.ts (registryOptions), without importing that module
 * until the registry is missing or corrupt and must be rebuilt from Docker's labels.
 */
function lazyRegistryOptions(ctx: Context): RegistryOptions {
  return {
    home: ctx.home,
    reconcile: async () => {
      const { reconcile } = (await import('./instance.js')).registryOptions(ctx);
      return reconcile ? reconcile() : [];
    },
  };
}

/**
 * Every instance known to the registry or found in Docker by label. An instance of this state home
 * that Docker has and the registry lacks is adopted into the registry (its leases from its labels,
 * so no other instance is given its ports) and named in a notice; other disagreements are named
 * per instance (`drift`). The engine is asked twice, whatever the number of instances: one listing of
 * the labelled containers and one of the labelled volumes (networks only when an instance is adopted).
 */
export async function listInstances(ctx: Context): Promise<{ instances: ListedInstance[]; notices: string[] }> {
  const filters = { label: [LABELS.instance] };
  const [{ result: registry, notices }, all, volumeList] = await Promise.all([
    readRegistrySnapshot(lazyRegistryOptions(ctx)),
    ctx.engine.docker.listContainers({ all: true, filters }),
    ctx.engine.docker.listVolumes({ filters }),
  ]);
  const resources: LabelledResources = {
    containers: all.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''), labels: c.Labels ?? {} })),
    volumes: (volumeList.Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels ?? {}) as Record<string, string> })),
    networks: [],
  };
  // Instances of another state home (another SANDSTACK_HOME on the same engine) are not ours to list.
  const home = homeLabelValue(ctx.home);
  const foreign = new Set<string>();
  const ownLabels = (labels: Record<string, string> | undefined): boolean => {
    const h = labels?.[LABELS.home];
    if (h && h !== home) {
      if (labels?.[LABELS.instance]) foreign.add(labels[LABELS.instance]!);
      return false;
    }
    return true;
  };
  const containersById = new Map<string, ListedContainer[]>();
  for (const c of all) {
    const id = c.Labels?.[LABELS.instance];
    if (!id || !ownLabels(c.Labels)) continue;
    containersById.set(id, [...(containersById.get(id) ?? []), toListed(c)]);
  }
  const ids = new Set<string>([...Object.keys(registry.instances), ...containersById.keys()]);
  for (const v of resources.volumes) if (v.labels[LABELS.instance] && ownLabels(v.labels)) ids.add(v.labels[LABELS.instance]!);
  for (const id of ids) foreign.delete(id);
  if (foreign.size > 0) notices.push(`Not listed: ${foreign.size} instance(s) of another state home on this engine (${[...foreign].sort().join(', ')}); run sandstack with that SANDSTACK_HOME to see them.`);

  // In Docker with this home's label, not in the registry: adopt it (its leases must stay reserved).
  const unregistered = [...ids].filter((id) => !registry.instances[id]);
  if (unregistered.length > 0) {
    const mine = (r: { labels: Record<string, string> }) => unregistered.includes(r.labels[LABELS.instance] ?? '');
    const [{ recordsFromLabels, registryOptions }, networks] = await Promise.all([import('./instance.js'), ctx.engine.docker.listNetworks({ filters })]);
    resources.networks = networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }));
    const { records } = recordsFromLabels({ containers: resources.containers.filter(mine), volumes: resources.volumes.filter(mine), networks: resources.networks.filter(mine) }, home);
    if (records.length > 0) {
      const adopted = await withRegistry(registryOptions(ctx), (r) => {
        const added: InstanceRecord[] = [];
        for (const rec of records) {
          if (r.instances[rec.id]) continue;
          r.instances[rec.id] = rec;
          added.push(rec);
        }
        return added;
      }).catch(() => undefined);
      for (const rec of adopted?.result ?? []) {
        registry.instances[rec.id] = rec;
        notices.push(`${rec.id} was in Docker but not in the registry: adopted from its labels${rec.leases.length ? ` (ports ${rec.leases.map((l) => l.hostPort).join(', ')} reserved)` : ''}. Remove it with \`sandstack destroy --instance ${rec.id}\` if it is not wanted.`);
      }
    }
  }

  const remote = await listRemote(ctx, Object.values(registry.instances).filter((r) => r.engine));
  const instances: ListedInstance[] = [...ids].sort().map((id) => {
    const rec = registry.instances[id];
    const labels = resources.containers.find((c) => c.labels[LABELS.instance] === id)?.labels ?? resources.volumes.find((v) => v.labels[LABELS.instance] === id)?.labels ?? {};
    const onRemote = rec?.engine ? remote.get(rec.engine.name) : undefined;
    const seen =
      onRemote && 'error' in onRemote
        ? { state: 'unknown' as const, containers: { running: 0, total: 0 }, drift: [`its engine ${rec!.engine!.name} did not answer: ${onRemote.error}`] }
        : listedState(id, onRemote ? (onRemote.byId.get(id) ?? []) : (containersById.get(id) ?? []), rec);
    return {
      id,
      worktree: rec?.worktree ?? labels[LABELS.worktree] ?? '',
      projectDir: rec?.projectDir ?? labels[LABELS.worktree] ?? '',
      kind: rec?.kind ?? labels[LABELS.kind] ?? 'local',
      branch: rec?.branch,
      registered: rec !== undefined,
      state: seen.state,
      engine: rec ? engineNameOf(rec) : 'local',
      containers: seen.containers,
      ...expiry(rec),
      ports: (rec?.leases ?? []).map((l) => ({ service: l.service, container: l.containerPort, protocol: l.protocol, host: reachPort(l), url: urlFor(l, '127.0.0.1', l.hostPort), name: l.name, ...(l.localPort ? { enginePort: l.hostPort } : {}) })),
      drift: seen.drift,
    };
  });
  return { instances, notices };
}

/** A container listing as listInstances reads it. */
function toListed(c: { Labels?: Record<string, string>; State: string; Status?: string; Created?: number; Ports?: { PrivatePort: number; Type: string; PublicPort?: number }[] }): ListedContainer {
  return {
    labels: c.Labels ?? {},
    state: c.State,
    status: c.Status ?? '',
    created: c.Created ?? 0,
    ports: (c.Ports ?? []).map((p) => ({ containerPort: p.PrivatePort, protocol: p.Type, hostPort: p.PublicPort })),
  };
}

/**
 * The containers of instances on remote engines, one listing per engine (in parallel); an engine
 * that does not answer is reported as such, never waited on beyond its connect timeout.
 */
async function listRemote(ctx: Context, records: InstanceRecord[]): Promise<Map<string, { byId: Map<string, ListedContainer[]> } | { error: string }>> {
  const out = new Map<string, { byId: Map<string, ListedContainer[]> } | { error: string }>();
  if (records.length === 0) return out;
  const { openRecordedEngines } = await import('../engine/select.js');
  const engines = await openRecordedEngines(records, { home: ctx.home, env: ctx.env, signal: ctx.signal });
  await Promise.all(
    [...engines].map(async ([name, engine]) => {
      try {
        if (engine instanceof Error) throw engine;
        const list = await engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.home}=${homeLabelValue(ctx.home)}`] } });
        const byId = new Map<string, ListedContainer[]>();
        for (const c of list) {
          const id = c.Labels?.[LABELS.instance];
          if (id) byId.set(id, [...(byId.get(id) ?? []), toListed(c)]);
        }
        out.set(name, { byId });
      } catch (err) {
        out.set(name, { error: (err as Error).message });
      }
    }),
  );
  return out;
}

/** What `status` reports about the software the instance runs on. */
export interface RuntimeVersions {
  sandstack: string;
  /** The Compose sandstack runs for this instance; null when none was found. */
  compose: { variant: 'v1' | 'v2'; version: string } | null;
  /** The Docker engine; null when it did not answer. */
  engine: { version: string; apiVersion: string } | null;
}

export async function runtimeVersions(ctx: Context): Promise<RuntimeVersions> {
  const r = await versionReport({ env: ctx.env, home: ctx.home, docker: ctx.engine.docker });
  return { sandstack: r.sandstack, compose: r.compose && { variant: r.compose.variant, version: r.compose.version }, engine: r.engine };
}

export { leaseKey };
