/**
 * Invariants of sandstack's rendered model (pure functions: each returns the violations it found,
 * as messages naming the service/key and the offending value).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Model = Record<string, any>;

export interface InvariantContext {
  id: string;
  kind: string;
  range: { from: number; to: number };
  /** ports.publish of sandstack.yaml. */
  publish: { service: string; port: number; protocol: string }[];
  allowExternal: { volumes: string[]; networks: string[] };
  /** Compose's config of the source (all profiles), to compare services and own attributes. */
  source?: Model;
}

export const INSTANCE_LABELS = ['dev.sandstack.instance', 'dev.sandstack.worktree', 'dev.sandstack.kind', 'dev.sandstack.managed'];

/** A list (`- K=V`) or map of labels/environment as a map. */
export function asRecord(v: unknown): Record<string, unknown> {
  if (!v) return {};
  if (Array.isArray(v)) {
    const out: Record<string, unknown> = {};
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq < 0) out[s] = null;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  if (typeof v === 'object') return v as Record<string, unknown>;
  return {};
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v instanceof Date ? `Date(${v.toISOString()})` : JSON.stringify(v) ?? String(v));
const services = (m: Model): [string, Model][] => Object.entries((m.services ?? {}) as Record<string, Model>);

export interface PortBinding {
  hostIp: string | undefined;
  hostPort: string | undefined;
  target: string;
  protocol: string;
  raw: unknown;
}

/** Parses a short (`ip:host:container/proto`) or long port entry as written in the rendered file. */
export function parsePort(entry: unknown): PortBinding | string {
  if (entry !== null && typeof entry === 'object') {
    const e = entry as Record<string, unknown>;
    return {
      hostIp: e.host_ip === undefined ? undefined : String(e.host_ip),
      hostPort: e.published === undefined ? undefined : String(e.published),
      target: String(e.target),
      protocol: String(e.protocol ?? 'tcp'),
      raw: entry,
    };
  }
  if (typeof entry !== 'string') return `port entry ${show(entry)} is a ${typeof entry}, not a string or mapping (YAML 1.1 would read "a:b" with b < 60 as a number)`;
  let spec = entry;
  let protocol = 'tcp';
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    protocol = spec.slice(slash + 1);
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
  const target = parts.pop()!;
  const hostPort = parts.pop();
  return { hostIp, hostPort, target, protocol, raw: entry };
}

export const INVARIANTS: { name: string; check: (rendered: Model, ctx: InvariantContext) => string[] }[] = [
  {
    name: 'no container_name',
    check: (m) => services(m).filter(([, s]) => s.container_name !== undefined).map(([n, s]) => `service ${n} keeps container_name ${show(s.container_name)}`),
  },
  {
    name: 'published ports on 127.0.0.1 within the lease range',
    check: (m, ctx) => {
      const out: string[] = [];
      for (const [n, s] of services(m)) {
        for (const entry of (s.ports ?? []) as unknown[]) {
          const p = parsePort(entry);
          if (typeof p === 'string') {
            out.push(`service ${n}: ${p}`);
            continue;
          }
          if (p.hostIp !== '127.0.0.1') out.push(`service ${n}: port ${show(p.raw)} is bound to ${p.hostIp ?? 'all interfaces'}, not 127.0.0.1`);
          const hp = Number(p.hostPort);
          if (p.hostPort === undefined || !/^\d+$/.test(p.hostPort)) out.push(`service ${n}: port ${show(p.raw)} has no single fixed host port (${show(p.hostPort)})`);
          else if (hp < ctx.range.from || hp > ctx.range.to) out.push(`service ${n}: port ${show(p.raw)} has host port ${hp} outside the lease range ${ctx.range.from}-${ctx.range.to}`);
        }
      }
      return out;
    },
  },
  {
    name: 'exactly the ports.publish entries are published',
    check: (m, ctx) => {
      const out: string[] = [];
      const got = new Set<string>();
      for (const [n, s] of services(m)) {
        for (const entry of (s.ports ?? []) as unknown[]) {
          const p = parsePort(entry);
          if (typeof p !== 'string') got.add(`${n}:${p.target}/${p.protocol}`);
        }
      }
      const want = new Set(ctx.publish.map((e) => `${e.service}:${e.port}/${e.protocol === 'udp' ? 'udp' : 'tcp'}`));
      for (const w of want) if (!got.has(w)) out.push(`ports.publish entry ${w} is not published in the rendered model`);
      for (const g of got) if (!want.has(g)) out.push(`${g} is published but not listed under ports.publish`);
      return out;
    },
  },
  {
    name: 'named volumes and networks scoped to the instance and labelled',
    check: (m, ctx) => {
      const out: string[] = [];
      for (const kind of ['volumes', 'networks'] as const) {
        const allowed = kind === 'volumes' ? ctx.allowExternal.volumes : ctx.allowExternal.networks;
        for (const [key, rawDef] of Object.entries((m[kind] ?? {}) as Record<string, Model | null>)) {
          const def = rawDef ?? {};
          if (def.external) {
            const name = typeof def.external === 'object' && def.external.name ? def.external.name : (def.name ?? key);
            if (!allowed.includes(name)) out.push(`${kind}.${key} is the external ${kind.slice(0, -1)} ${show(name)}, not allowed under external.${kind} (allowed: ${show(allowed)})`);
            continue;
          }
          if (def.name !== `${ctx.id}_${key}`) out.push(`${kind}.${key} has name ${show(def.name)}, expected ${show(`${ctx.id}_${key}`)}`);
          const labels = asRecord(def.labels);
          if (labels['dev.sandstack.instance'] !== ctx.id) out.push(`${kind}.${key} label dev.sandstack.instance is ${show(labels['dev.sandstack.instance'])}, expected ${show(ctx.id)}`);
          for (const l of INSTANCE_LABELS) if (labels[l] === undefined || labels[l] === null || labels[l] === '') out.push(`${kind}.${key} lacks the label ${l}`);
        }
      }
      // Every named volume a service mounts is a declared (scoped) one.
      const declared = new Set(Object.keys(m.volumes ?? {}));
      for (const [n, s] of services(m)) {
        for (const v of (s.volumes ?? []) as unknown[]) {
          const source = typeof v === 'string' ? v.split(':')[0]! : (v as Model)?.type === 'volume' ? (v as Model).source : undefined;
          if (typeof source === 'string' && source && !/^[./~$]/.test(source) && !source.startsWith('/') && !declared.has(source)) {
            out.push(`service ${n} mounts the volume ${show(source)}, which is not declared in the rendered model`);
          }
        }
      }
      return out;
    },
  },
  {
    name: 'no fixed subnets or addresses',
    check: (m, ctx) => {
      const out: string[] = [];
      for (const [key, def] of Object.entries((m.networks ?? {}) as Record<string, Model | null>)) {
        const cfg = (def?.ipam?.config ?? []) as Model[];
        const sourceSubnets = ((ctx.source?.networks?.[key]?.ipam?.config ?? []) as Model[]).map((c) => c?.subnet);
        for (const c of cfg) {
          for (const k of ['subnet', 'ip_range', 'gateway', 'aux_addresses']) {
            if (c?.[k] === undefined) continue;
            // The one documented exception: an enable_ipv6 network gets a unique-local /64 derived
            // from the instance (the engine has no IPv6 pool by default). It must not be the source's.
            const instanceUla = k === 'subnet' && def?.enable_ipv6 === true && typeof c.subnet === 'string' && /^fd[0-9a-f]{2}(:[0-9a-f]{1,4}){3}::\/64$/i.test(c.subnet) && !sourceSubnets.includes(c.subnet);
            if (!instanceUla) out.push(`networks.${key}.ipam.config has ${k} ${show(c[k])}`);
          }
        }
      }
      for (const [n, s] of services(m)) {
        if (s.networks && !Array.isArray(s.networks)) {
          for (const [net, att] of Object.entries(s.networks as Record<string, Model | null>)) {
            for (const k of ['ipv4_address', 'ipv6_address', 'link_local_ips']) if (att?.[k] !== undefined) out.push(`service ${n} network ${net} has ${k} ${show(att[k])}`);
          }
        }
      }
      return out;
    },
  },
  {
    name: 'instance environment on every service',
    check: (m, ctx) => {
      const out: string[] = [];
      for (const [n, s] of services(m)) {
        const env = asRecord(s.environment);
        if (env.SANDSTACK_INSTANCE_ID !== ctx.id) out.push(`service ${n}: SANDSTACK_INSTANCE_ID is ${show(env.SANDSTACK_INSTANCE_ID)}, expected ${show(ctx.id)}`);
        if (env.SANDSTACK_ENVIRONMENT !== ctx.kind) out.push(`service ${n}: SANDSTACK_ENVIRONMENT is ${show(env.SANDSTACK_ENVIRONMENT)}, expected ${show(ctx.kind)}`);
        const otel = typeof env.OTEL_RESOURCE_ATTRIBUTES === 'string' ? env.OTEL_RESOURCE_ATTRIBUTES.split(',').map((x) => x.trim()) : [];
        for (const want of [`sandstack.instance.id=${ctx.id}`, `deployment.environment=${ctx.kind}`]) {
          if (!otel.includes(want)) out.push(`service ${n}: OTEL_RESOURCE_ATTRIBUTES ${show(env.OTEL_RESOURCE_ATTRIBUTES)} lacks ${want}`);
        }
        // The project's own resource attributes are merged, not replaced.
        const own = asRecord(ctx.source?.services?.[n]?.environment).OTEL_RESOURCE_ATTRIBUTES;
        if (typeof own === 'string') {
          for (const pair of own.split(',').map((x) => x.trim()).filter(Boolean)) {
            if (!otel.includes(pair)) out.push(`service ${n}: the project's own OTEL_RESOURCE_ATTRIBUTES entry ${pair} was dropped (got ${show(env.OTEL_RESOURCE_ATTRIBUTES)})`);
          }
        }
      }
      return out;
    },
  },
  {
    name: 'instance labels on every service',
    check: (m, ctx) => {
      const out: string[] = [];
      for (const [n, s] of services(m)) {
        const labels = asRecord(s.labels);
        if (labels['dev.sandstack.instance'] !== ctx.id) out.push(`service ${n}: label dev.sandstack.instance is ${show(labels['dev.sandstack.instance'])}, expected ${show(ctx.id)}`);
        for (const l of INSTANCE_LABELS) if (labels[l] === undefined || labels[l] === null || labels[l] === '') out.push(`service ${n} lacks the label ${l}`);
        if (labels['dev.sandstack.kind'] !== undefined && labels['dev.sandstack.kind'] !== ctx.kind) out.push(`service ${n}: label dev.sandstack.kind is ${show(labels['dev.sandstack.kind'])}, expected ${show(ctx.kind)}`);
      }
      return out;
    },
  },
  {
    name: 'every service of the project is kept (all profiles)',
    check: (m, ctx) => {
      if (!ctx.source) return ['no Compose config of the source to compare with'];
      const want = Object.keys(ctx.source.services ?? {}).sort();
      const got = Object.keys(m.services ?? {}).sort();
      const out: string[] = [];
      for (const w of want) if (!got.includes(w)) out.push(`service ${w} of the project is missing from the rendered model`);
      for (const g of got) if (!want.includes(g)) out.push(`the rendered model adds service ${g}, which the project does not define`);
      return out;
    },
  },
];

/**
 * Paths (of Compose's config output) whose string values sandstack changes on purpose: only
 * their type is compared. `*` matches one key.
 */
const VALUE_EXEMPT: string[][] = [
  ['name'],
  ['services', '*', 'container_name'],
  ['services', '*', 'ports'],
  ['services', '*', 'image'],
  ['services', '*', 'networks'],
  ['services', '*', 'network_mode'],
  ['services', '*', 'environment', 'OTEL_RESOURCE_ATTRIBUTES'],
  ['services', '*', 'logging', 'options', 'labels'],
  ['volumes', '*', 'name'],
  ['networks', '*', 'name'],
  ['networks', '*', 'ipam'],
];

function exempt(p: string[]): boolean {
  return VALUE_EXEMPT.some((pat) => pat.length <= p.length && pat.every((k, i) => k === '*' || k === p[i]));
}

/**
 * Every string of Compose's config of the source is still a string, with the same value, at the
 * same place of Compose's config of the rendered model (places sandstack removes are skipped;
 * secret values sandstack redacts in `render` are skipped).
 */
export function compareStrings(source: unknown, rendered: unknown, p: string[] = []): string[] {
  const out: string[] = [];
  const at = () => p.join('.');
  if (typeof source === 'string') {
    if (rendered === undefined || rendered === null && source === '') return out;
    if (typeof rendered !== 'string') {
      out.push(`${at()}: the source's string ${show(source)} became ${rendered instanceof Date ? 'a date' : typeof rendered} ${show(rendered)}`);
    } else if (rendered !== source && !exempt(p) && !rendered.includes('[REDACTED:')) {
      out.push(`${at()}: the source's string ${show(source)} became ${show(rendered)}`);
    }
    return out;
  }
  if (Array.isArray(source)) {
    if (!Array.isArray(rendered)) return out;
    source.forEach((v, i) => out.push(...compareStrings(v, rendered[i], [...p, String(i)])));
    return out;
  }
  if (source !== null && typeof source === 'object' && !(source instanceof Date)) {
    if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered)) return out;
    for (const [k, v] of Object.entries(source)) out.push(...compareStrings(v, (rendered as Model)[k], [...p, k]));
  }
  return out;
}
