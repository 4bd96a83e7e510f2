/** The isolation stage: what Docker actually reports about the instance's containers. */
import path from 'node:path';
import type { ContainerView } from '../engine/docker.js';
import { LABELS } from '../identity/identity.js';

export interface IsolationResult {
  passed: boolean;
  problems: string[];
  published: { service: string; container: string; containerPort: number; protocol: string; hostIp: string; hostPort: number }[];
  containers: string[];
  /** Bind mounts as Docker reports them, with the verdict on each (only when a mount policy is given). */
  mounts?: MountVerdict[];
  /** The problems (also in `problems`) about mounts: datasets not as declared, undeclared host folders. */
  mountProblems?: string[];
}

/** A bind mount of a container and why it is (or is not) acceptable. */
export interface MountVerdict {
  service: string;
  container: string;
  source: string;
  target: string;
  readOnly: boolean;
  /**
   * dataset: a declared shared dataset (`dataset`); project: inside the project or its worktree;
   * instance: inside the instance's own state folder (data root, secrets); allowed: outside, but
   * allowed under policy.allow (`ruleId`, `reason`); undeclared: outside, and a problem.
   */
  kind: 'dataset' | 'project' | 'instance' | 'allowed' | 'undeclared';
  dataset?: string;
  ruleId?: string;
  reason?: string;
}

/** A dataset of data.shared (host path absolute). */
export interface IsolationDataset {
  name: string;
  host: string;
  services: string[];
  target: string;
  mode: 'ro' | 'rw';
  /** The same host path with symlinks resolved, when it differs (Docker may report either). */
  realHost?: string;
}

/** What host folders an instance's containers may bind-mount. */
export interface MountPolicy {
  /** data.shared: each must be mounted in each of its services, at its target, read-only unless rw. */
  datasets: IsolationDataset[];
  /** The project folder, its worktree (git top level), the Compose project folder (symlink-resolved forms too). */
  projectRoots: string[];
  /** sandstack's per-instance state folder (holds the data root and the secrets). */
  instanceRoots: string[];
  /**
   * The lint rule the mount of `source` falls under and, when policy.allow allows that rule for
   * `service`, the written reason. Undefined: lint has no rule for it (reported as undeclared).
   */
  ruleFor?: (service: string, source: string, readOnly: boolean) => { ruleId: string; allowedReason?: string } | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', '::1']);

function normalise(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function isInside(child: string, parent: string): boolean {
  const c = normalise(child);
  const p = normalise(parent);
  if (p === '/') return true;
  return c === p || c.startsWith(`${p}/`);
}

/**
 * Every published port must be bound to a loopback address, every container must have a name that
 * Compose generated for this project (no fixed `container_name`), and carry the instance label.
 * With a mount policy, from Docker's own mount list: every declared dataset is mounted in each of
 * its services as declared, and no other bind mount comes from a host folder outside the project
 * and the instance's state folder (unless policy.allow allows the lint rule it falls under).
 */
export function checkIsolation(id: string, containers: ContainerView[], policy?: MountPolicy): IsolationResult {
  const problems: string[] = [];
  const published: IsolationResult['published'] = [];
  const mounts: MountVerdict[] = [];
  const mountProblems: string[] = [];
  for (const c of containers) {
    for (const p of c.ports) {
      published.push({ service: c.service, container: c.name, containerPort: p.containerPort, protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort });
      if (!LOOPBACK.has(p.hostIp)) {
        problems.push(`${c.name}: port ${p.containerPort}/${p.protocol} is published on ${p.hostIp || 'all addresses'}:${p.hostPort}, not on 127.0.0.1`);
      }
    }
    if (!c.name.startsWith(`${id}_`) && !c.name.startsWith(`${id}-`)) {
      problems.push(`${c.name}: container has a fixed name (Compose would name it ${id}_${c.service}_1 or ${id}-${c.service}-1)`);
    }
    if (c.labels[LABELS.instance] !== id) problems.push(`${c.name}: missing label ${LABELS.instance}=${id}`);
    if (policy) checkMounts(c, policy, mountProblems, mounts);
  }
  problems.push(...mountProblems);
  return { passed: problems.length === 0, problems, published, containers: containers.map((c) => c.name), ...(policy ? { mounts, mountProblems } : {}) };
}

function sameHost(source: string, d: IsolationDataset): boolean {
  const s = normalise(source);
  return s === normalise(d.host) || (d.realHost !== undefined && s === normalise(d.realHost));
}

function checkMounts(c: ContainerView, policy: MountPolicy, problems: string[], out: MountVerdict[]): void {
  const binds = c.mounts.filter((m) => m.type === 'bind');
  // Each declared dataset, in each of its services: mounted from its host path, at its target, read-only unless rw.
  for (const d of policy.datasets) {
    if (!d.services.includes(c.service)) continue;
    const target = normalise(d.target);
    const at = c.mounts.find((m) => normalise(m.destination) === target);
    if (!at) {
      problems.push(`${c.name}: the shared dataset ${d.name} (${d.host}) is not mounted at ${target}`);
    } else if (at.type !== 'bind' || !sameHost(at.source, d)) {
      problems.push(`${c.name}: ${target} is mounted from ${at.type === 'bind' ? at.source : `${at.type} ${at.name ?? at.source}`}, not from the shared dataset ${d.name} (${d.host})`);
    } else if (d.mode === 'ro' && at.rw) {
      problems.push(`${c.name}: the shared dataset ${d.name} (${d.host}) is mounted read-write at ${target}; data.shared declares it read-only`);
    }
  }
  for (const m of binds) {
    const base = { service: c.service, container: c.name, source: m.source, target: normalise(m.destination), readOnly: !m.rw };
    const dataset = policy.datasets.find((d) => d.services.includes(c.service) && normalise(d.target) === base.target && sameHost(m.source, d));
    if (dataset) {
      out.push({ ...base, kind: 'dataset', dataset: dataset.name });
      continue;
    }
    if (policy.projectRoots.some((r) => isInside(m.source, r))) {
      out.push({ ...base, kind: 'project' });
      continue;
    }
    if (policy.instanceRoots.some((r) => isInside(m.source, r))) {
      out.push({ ...base, kind: 'instance' });
      continue;
    }
    const rule = policy.ruleFor?.(c.service, m.source, !m.rw);
    if (rule?.allowedReason !== undefined) {
      out.push({ ...base, kind: 'allowed', ruleId: rule.ruleId, reason: rule.allowedReason });
      continue;
    }
    out.push({ ...base, kind: 'undeclared', ...(rule ? { ruleId: rule.ruleId } : {}) });
    const near = policy.datasets.find((d) => sameHost(m.source, d));
    const why = near
      ? `data.shared declares ${near.name} for ${near.services.join(', ')} at ${near.target}, ${near.services.includes(c.service) ? `not at ${base.target}` : `not for ${c.service}`}`
      : 'not declared under data.shared';
    problems.push(
      `${c.name}: bind-mounts the host path ${m.source} at ${base.target}${m.rw ? '' : ' (read-only)'}, outside the project and the instance's state folder, ${why}${rule ? ` (lint ${rule.ruleId}; allow it under policy.allow for ${c.service} with a reason if it is meant)` : ''}`,
    );
  }
}
