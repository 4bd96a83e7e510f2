/** The isolation stage: what Docker actually reports about the instance's containers. */
import type { ContainerView } from '../engine/docker.js';
import { LABELS } from '../identity/identity.js';

export interface IsolationResult {
  passed: boolean;
  problems: string[];
  published: { service: string; container: string; containerPort: number; protocol: string; hostIp: string; hostPort: number }[];
  containers: string[];
}

const LOOPBACK = new Set(['127.0.0.1', '::1']);

/**
 * Every published port must be bound to a loopback address, every container must have a name that
 * Compose generated for this project (no fixed `container_name`), and carry the instance label.
 */
export function checkIsolation(id: string, containers: ContainerView[]): IsolationResult {
  const problems: string[] = [];
  const published: IsolationResult['published'] = [];
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
  }
  return { passed: problems.length === 0, problems, published, containers: containers.map((c) => c.name) };
}
