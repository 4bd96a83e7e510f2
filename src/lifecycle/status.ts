/** Status of one instance and the list of all instances, from Docker (truth) and the registry (intent). */
import { instanceContainers, labelledResources, type ContainerView } from '../engine/docker.js';
import { homeLabelValue, LABELS } from '../identity/identity.js';
import { leaseKey } from '../ports/leases.js';
import type { InstanceRecord, Lease } from '../state/registry.js';
import { expiresAt, readRegistrySnapshot } from '../state/registry.js';
import type { Context } from './context.js';
import { registryOptions } from './instance.js';
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

export type InstanceState = 'running' | 'partial' | 'stopped' | 'down';

export interface InstanceSummary {
  id: string;
  worktree: string;
  projectDir: string;
  kind: string;
  branch?: string;
  stateDir?: string;
  registered: boolean;
  state: InstanceState;
  /** With a ttl: when it expires (ISO time) and how long is left (ms, 0 when past). */
  expiresAt?: string;
  expiresInMs?: number;
}

export function urlFor(lease: Pick<Lease, 'scheme' | 'hostPort'> | undefined, hostIp: string, hostPort: number): string | null {
  if (!lease || (lease.scheme !== 'http' && lease.scheme !== 'https')) return null;
  const host = hostIp === '0.0.0.0' || hostIp === '' ? '127.0.0.1' : hostIp.includes(':') ? `[${hostIp}]` : hostIp;
  return `${lease.scheme}://${host}:${hostPort}`;
}

/** Ports of a service: what Docker reports for a running container, else the leases. */
export function servicePorts(service: string, container: ContainerView | undefined, leases: Lease[]): ServicePort[] {
  const mine = leases.filter((l) => l.service === service);
  if (container && container.state === 'running' && container.ports.length > 0) {
    return container.ports.map((p) => {
      const lease = mine.find((l) => l.containerPort === p.containerPort && l.protocol === p.protocol);
      return { container: p.containerPort, protocol: p.protocol, host: p.hostPort, hostIp: p.hostIp, url: urlFor(lease, p.hostIp, p.hostPort) };
    });
  }
  return mine.map((l) => ({ container: l.containerPort, protocol: l.protocol, host: l.hostPort, hostIp: '127.0.0.1', url: urlFor(l, '127.0.0.1', l.hostPort) }));
}

export function summarizeState(services: { state: string }[]): InstanceState {
  if (services.length === 0) return 'down';
  const running = services.filter((s) => s.state === 'running').length;
  const present = services.filter((s) => s.state !== 'not created').length;
  if (present === 0) return 'down';
  if (running === services.length) return 'running';
  return running === 0 ? 'stopped' : 'partial';
}

export async function serviceStatuses(ctx: Context, id: string, expected: string[], leases: Lease[]): Promise<ServiceStatus[]> {
  const containers = await instanceContainers(ctx.docker, id);
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
}

export function expiry(rec: InstanceRecord | undefined): { expiresAt?: string; expiresInMs?: number } {
  const at = rec ? expiresAt(rec) : undefined;
  return at === undefined ? {} : { expiresAt: new Date(at).toISOString(), expiresInMs: Math.max(0, at - Date.now()) };
}

/** Every instance known to the registry or found in Docker by label. */
export async function listInstances(ctx: Context): Promise<{ instances: ListedInstance[]; notices: string[] }> {
  const [{ result: registry, notices }, resources] = await Promise.all([readRegistrySnapshot(registryOptions(ctx)), labelledResources(ctx.docker)]);
  const containersById = new Map<string, { running: number; total: number }>();
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
  const all = await ctx.docker.listContainers({ all: true, filters: { label: [LABELS.instance] } });
  for (const c of all) {
    const id = c.Labels?.[LABELS.instance];
    if (!id || !ownLabels(c.Labels)) continue;
    const agg = containersById.get(id) ?? { running: 0, total: 0 };
    agg.total++;
    if (c.State === 'running') agg.running++;
    containersById.set(id, agg);
  }
  const ids = new Set<string>([...Object.keys(registry.instances), ...containersById.keys()]);
  for (const v of resources.volumes) if (v.labels[LABELS.instance] && ownLabels(v.labels)) ids.add(v.labels[LABELS.instance]!);
  for (const id of ids) foreign.delete(id);
  if (foreign.size > 0) notices.push(`Not listed: ${foreign.size} instance(s) of another state home on this engine (${[...foreign].sort().join(', ')}); run sandstack with that SANDSTACK_HOME to see them.`);
  const instances: ListedInstance[] = [...ids].sort().map((id) => {
    const rec = registry.instances[id];
    const counts = containersById.get(id) ?? { running: 0, total: 0 };
    const labels = resources.containers.find((c) => c.labels[LABELS.instance] === id)?.labels ?? resources.volumes.find((v) => v.labels[LABELS.instance] === id)?.labels ?? {};
    const state: InstanceState = counts.total === 0 ? 'down' : counts.running === counts.total ? 'running' : counts.running === 0 ? 'stopped' : 'partial';
    return {
      id,
      worktree: rec?.worktree ?? labels[LABELS.worktree] ?? '',
      projectDir: rec?.projectDir ?? labels[LABELS.worktree] ?? '',
      kind: rec?.kind ?? labels[LABELS.kind] ?? 'local',
      branch: rec?.branch,
      registered: rec !== undefined,
      state,
      containers: counts,
      ...expiry(rec),
      ports: (rec?.leases ?? []).map((l) => ({ service: l.service, container: l.containerPort, protocol: l.protocol, host: l.hostPort, url: urlFor(l, '127.0.0.1', l.hostPort), name: l.name })),
    };
  });
  return { instances, notices };
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
  const r = await versionReport({ env: ctx.env, home: ctx.home, docker: ctx.docker });
  return { sandstack: r.sandstack, compose: r.compose && { variant: r.compose.variant, version: r.compose.version }, engine: r.engine };
}

export { leaseKey };
