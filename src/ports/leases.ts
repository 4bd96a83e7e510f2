/**
 * Port leases: each published container port of an instance gets a host port from the configured
 * range that no other instance leases and no process listens on. Leases are stable across down/up
 * and released on destroy. The allocator is pure (the "is it free" probe is injected) so it is
 * unit-tested without sockets.
 */
import { createHash } from 'node:crypto';
import { SandstackError } from '../errors.js';
import type { Lease } from '../state/registry.js';

export interface PortRequest {
  service: string;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  scheme: Lease['scheme'];
  name?: string;
}

export interface PortRange {
  from: number;
  to: number;
}

export function leaseKey(l: { service: string; containerPort: number; protocol: string }): string {
  return `${l.service}:${l.containerPort}/${l.protocol}`;
}

/** The port on this machine where a leased service port answers: its forward's (remote engine), else the published one. */
export function reachPort(lease: Pick<Lease, 'hostPort' | 'localPort'>): number {
  return lease.localPort ?? lease.hostPort;
}

/** Serialises leases for the `dev.sandstack.leases` label. */
export function encodeLeases(leases: Lease[]): string {
  return leases.map((l) => `${leaseKey(l)}=${l.hostPort}`).join(',');
}

export function decodeLeases(label: string | undefined): Lease[] {
  if (!label) return [];
  const out: Lease[] = [];
  for (const part of label.split(',')) {
    const m = /^([^:]+):(\d+)\/(tcp|udp)=(\d+)$/.exec(part.trim());
    if (!m) continue;
    out.push({ service: m[1]!, containerPort: Number(m[2]), protocol: m[3] as 'tcp' | 'udp', hostPort: Number(m[4]), scheme: m[3] === 'udp' ? 'udp' : 'tcp' });
  }
  return out;
}

/** A deterministic starting point inside the range, so parallel instances rarely probe the same ports. */
export function rangeOffset(instanceId: string, range: PortRange): number {
  const size = range.to - range.from + 1;
  const h = createHash('sha256').update(instanceId).digest().readUInt32BE(0);
  return h % size;
}

export interface AllocateInput {
  instanceId: string;
  requests: PortRequest[];
  /** This instance's current leases (kept when still requested). */
  current: Lease[];
  /** Host ports leased by other instances. */
  taken: Set<number>;
  range: PortRange;
  isFree: (port: number, protocol: 'tcp' | 'udp') => Promise<boolean>;
}

export interface AllocateResult {
  leases: Lease[];
  /** Leases that were dropped because the config no longer asks for them. */
  released: Lease[];
  /** Requests that received a new host port. */
  added: Lease[];
}

export async function allocatePorts(input: AllocateInput): Promise<AllocateResult> {
  const byKey = new Map(input.current.map((l) => [leaseKey(l), l]));
  // A container port gets one host port: a repeated request for the same key is the same lease.
  const requests = input.requests.filter((r, i) => input.requests.findIndex((x) => leaseKey(x) === leaseKey(r)) === i);
  const wanted = new Set(requests.map(leaseKey));
  const released = input.current.filter((l) => !wanted.has(leaseKey(l)));
  const used = new Set<number>([...input.taken, ...input.current.filter((l) => wanted.has(leaseKey(l))).map((l) => l.hostPort)]);
  const leases: Lease[] = [];
  const added: Lease[] = [];
  const size = input.range.to - input.range.from + 1;
  const start = rangeOffset(input.instanceId, input.range);
  let cursor = 0;
  for (const req of requests) {
    const existing = byKey.get(leaseKey(req));
    if (existing) {
      leases.push({ ...existing, scheme: req.scheme, name: req.name });
      continue;
    }
    let found: number | undefined;
    while (cursor < size) {
      const port = input.range.from + ((start + cursor) % size);
      cursor++;
      if (used.has(port)) continue;
      if (await input.isFree(port, req.protocol)) {
        found = port;
        break;
      }
    }
    if (found === undefined) {
      throw new SandstackError('SANDSTACK_PORT_RANGE_EXHAUSTED', `No free host port left in ${input.range.from}-${input.range.to} for ${leaseKey(req)}.`, {
        hint: 'Destroy instances you no longer need (sandstack ls), or widen ports.range in sandstack.yaml.',
        details: { range: input.range },
      });
    }
    used.add(found);
    const lease: Lease = { service: req.service, containerPort: req.containerPort, protocol: req.protocol, hostPort: found, scheme: req.scheme, name: req.name };
    leases.push(lease);
    added.push(lease);
  }
  return { leases, released, added };
}
