/**
 * The parts of a resolved Compose model sandstack reads or changes, validated with loose schemas
 * (everything else passes through untouched). Both v1's and v2's `config` output shapes are accepted.
 */
import * as z from 'zod';

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const stringMapOrList = z.union([z.record(z.string(), scalar), z.array(z.string())]);

const LongPort = z.looseObject({
  target: z.union([z.number(), z.string()]),
  published: z.union([z.number(), z.string()]).optional(),
  host_ip: z.string().optional(),
  protocol: z.string().optional(),
});

export const ServiceSchema = z.looseObject({
  image: z.string().optional(),
  build: z.union([z.string(), z.looseObject({ labels: stringMapOrList.optional() })]).optional(),
  container_name: z.string().optional(),
  ports: z.array(z.union([z.string(), z.number(), LongPort])).optional(),
  environment: stringMapOrList.optional(),
  labels: stringMapOrList.optional(),
  profiles: z.array(z.string()).optional(),
  networks: z.union([z.array(z.string()), z.record(z.string(), z.unknown())]).optional(),
  network_mode: z.string().optional(),
  healthcheck: z.looseObject({ disable: z.boolean().optional() }).optional(),
  logging: z.looseObject({ driver: z.string().optional(), options: z.record(z.string(), scalar).optional() }).optional(),
});
export type ComposeService = z.output<typeof ServiceSchema>;

const External = z.union([z.boolean(), z.looseObject({ name: z.string().optional() })]);
export const TopResourceSchema = z.union([
  z.looseObject({ external: External.optional(), name: z.string().optional(), labels: stringMapOrList.optional() }),
  z.null(),
]);

export const ComposeModelSchema = z.looseObject({
  name: z.string().optional(),
  version: z.string().optional(),
  services: z.record(z.string(), ServiceSchema),
  volumes: z.record(z.string(), TopResourceSchema).optional(),
  networks: z.record(z.string(), TopResourceSchema).optional(),
});
export type ComposeModel = z.output<typeof ComposeModelSchema>;

export interface PortMapping {
  target: number;
  published?: number;
  hostIp?: string;
  protocol: 'tcp' | 'udp';
  /** The entry as written, for reports. */
  raw: string;
}

function expandRange(s: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) return [];
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  const out: number[] = [];
  for (let p = a; p <= b && out.length < 1000; p++) out.push(p);
  return out;
}

/** Parses a `ports:` entry in short (`[ip:][host:]container[/proto]`) or long form. */
export function parsePortEntry(entry: string | number | z.output<typeof LongPort>): PortMapping[] {
  if (typeof entry === 'number') return [{ target: entry, protocol: 'tcp', raw: String(entry) }];
  if (typeof entry === 'object') {
    const protocol = entry.protocol === 'udp' ? 'udp' : 'tcp';
    const raw = JSON.stringify(entry);
    const targets = expandRange(String(entry.target));
    const published = entry.published === undefined || entry.published === '' ? [] : expandRange(String(entry.published));
    return targets.map((target, i) => ({ target, published: published[i], hostIp: entry.host_ip, protocol, raw }));
  }
  let spec = entry.trim();
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    protocol = spec.slice(slash + 1) === 'udp' ? 'udp' : 'tcp';
    spec = spec.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(spec);
  if (v6) {
    hostIp = v6[1];
    spec = v6[2]!;
  }
  const parts = spec.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  const targetPart = parts.pop() ?? '';
  const publishedPart = parts.pop();
  const targets = expandRange(targetPart);
  const published = publishedPart ? expandRange(publishedPart) : [];
  return targets.map((target, i) => ({ target, published: published[i], hostIp: hostIp || undefined, protocol, raw: entry }));
}

export function toRecord(v: z.output<typeof stringMapOrList> | undefined): Record<string, string | null> {
  if (!v) return {};
  if (Array.isArray(v)) {
    const out: Record<string, string | null> = {};
    for (const item of v) {
      const eq = item.indexOf('=');
      if (eq < 0) out[item] = null;
      else out[item.slice(0, eq)] = item.slice(eq + 1);
    }
    return out;
  }
  const out: Record<string, string | null> = {};
  for (const [k, val] of Object.entries(v)) out[k] = val === null ? null : String(val);
  return out;
}

/** Does this service attach to the project's default network? */
export function usesDefaultNetwork(svc: ComposeService): boolean {
  if (svc.network_mode) return false;
  if (!svc.networks) return true;
  return Array.isArray(svc.networks) ? svc.networks.includes('default') : 'default' in svc.networks;
}

/** Services that `up` starts with the given profiles active. */
export function activeServices(model: ComposeModel, profiles: string[]): string[] {
  return Object.entries(model.services)
    .filter(([, s]) => !s.profiles || s.profiles.length === 0 || s.profiles.some((p) => profiles.includes(p)))
    .map(([name]) => name);
}

/** A service's mount as the resolved model gives it (v2: long syntax; v1: `source:target[:mode]`). */
export interface ServiceMount {
  type: 'volume' | 'bind' | 'tmpfs' | string;
  /** Volume key, or host path; undefined for an anonymous volume or tmpfs. */
  source?: string;
  target: string;
  readOnly: boolean;
}

/** The mounts of a service in a resolved model, long or short syntax. */
export function serviceMounts(service: unknown): ServiceMount[] {
  const list = (service as { volumes?: unknown } | undefined)?.volumes;
  if (!Array.isArray(list)) return [];
  const out: ServiceMount[] = [];
  for (const v of list) {
    if (typeof v === 'string') {
      const parts = v.split(':');
      if (parts.length === 1) {
        out.push({ type: 'volume', target: parts[0]!, readOnly: false });
        continue;
      }
      const [source, target, mode] = parts as [string, string, string | undefined];
      out.push({ type: /^[./~]/.test(source) ? 'bind' : 'volume', source, target, readOnly: (mode ?? '').split(',').includes('ro') });
    } else if (v && typeof v === 'object') {
      const m = v as { type?: string; source?: string; target?: string; read_only?: boolean };
      if (typeof m.target !== 'string') continue;
      out.push({ type: m.type ?? 'volume', ...(m.source ? { source: m.source } : {}), target: m.target, readOnly: m.read_only === true });
    }
  }
  return out;
}
