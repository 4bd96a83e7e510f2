/**
 * The compose lint rules: the catalogue (stable ids) and the checks. The checks read a service
 * through `ValueView`, which the engine (lint.ts) builds either from the YAML as written (with
 * positions, aliases and merge keys resolved) or from the model as merged by Compose (no positions),
 * so one implementation serves both.
 */
import path from 'node:path';

export type Severity = 'error' | 'warning';

export interface Rule {
  id: string;
  name: string;
  severity: Severity;
  description: string;
  fix: string;
  /** true when sandstack's rendering neutralises it at run time (container_name, host ports, port binding, external) */
  neutralisedByRender: boolean;
}

export interface Finding {
  ruleId: string;
  rule: string;
  severity: Severity;
  service?: string;
  /** what exactly: the port spec, the mount, the variable name, the image */
  subject: string;
  message: string;
  fix: string;
  file: string;
  line?: number;
  column?: number;
  neutralisedByRender: boolean;
}

export interface LintOptions {
  projectDir: string;
  homeDir: string;
}

export const RULES: readonly Rule[] = [
  {
    id: 'SS001',
    name: 'container-name',
    severity: 'error',
    description:
      'A fixed container_name makes the container name global on the Docker host: a second instance of the stack (another worktree) cannot start, or takes over the first one’s container.',
    fix: 'Remove container_name; Compose names containers <project>-<service>-<n> and services reach each other by service name.',
    neutralisedByRender: true,
  },
  {
    id: 'SS002',
    name: 'port-not-loopback',
    severity: 'error',
    description:
      'A published port that is not bound to 127.0.0.1 (or ::1) is reachable from the network: with no host address, 0.0.0.0 or any other address, Docker opens it on every interface (and bypasses host firewalls).',
    fix: 'Bind it to loopback: "127.0.0.1:${SERVICE_PORT:-8000}:8000" (or host_ip: 127.0.0.1 in the long syntax).',
    neutralisedByRender: true,
  },
  {
    id: 'SS003',
    name: 'fixed-host-port',
    severity: 'warning',
    description:
      'A literal host port (not ${VAR}-parameterised) collides as soon as two instances of the stack run side by side.',
    fix: 'Parameterise the host port with a default: "127.0.0.1:${SERVICE_PORT:-8000}:8000"; sandstack leases a free host port per instance at run time.',
    neutralisedByRender: true,
  },
  {
    id: 'SS004',
    name: 'docker-socket',
    severity: 'error',
    description:
      'Mounting the Docker socket gives the container full control of the Docker host: every container of every instance, and root on the host.',
    fix: 'Remove the mount; if the service really needs the Docker API, put a socket proxy (e.g. tecnativa/docker-socket-proxy) in front of it that allows only the calls it needs.',
    neutralisedByRender: false,
  },
  {
    id: 'SS005',
    name: 'privileged',
    severity: 'error',
    description: 'privileged: true disables nearly all container isolation (all capabilities, all devices, no seccomp/AppArmor).',
    fix: 'Remove privileged: true; grant only the specific capability or device the service needs (cap_add, devices).',
    neutralisedByRender: false,
  },
  {
    id: 'SS006',
    name: 'dangerous-capability',
    severity: 'error',
    description:
      'cap_add grants a capability that breaks container isolation (ALL, SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_RAWIO, DAC_READ_SEARCH, SYS_TIME, BPF, PERFMON).',
    fix: 'Remove the capability from cap_add; if a narrower one (e.g. NET_BIND_SERVICE) suffices, use that.',
    neutralisedByRender: false,
  },
  {
    id: 'SS007',
    name: 'host-namespace',
    severity: 'error',
    description:
      'network_mode, pid, ipc, uts or userns_mode set to host shares a host namespace: host networking ignores port isolation entirely, host pid/ipc let the container see and signal host processes.',
    fix: 'Remove the host namespace setting; publish the ports the service needs (bound to 127.0.0.1) instead of network_mode: host.',
    neutralisedByRender: false,
  },
  {
    id: 'SS008',
    name: 'broad-host-mount',
    severity: 'error',
    description:
      'A bind mount of a broad host path (/, /home, /Users, /root, /mnt, /etc, /var/run, /run, /var/lib/docker, /proc, /sys, the user’s home or a parent of it, or a relative path escaping the project with ..) exposes host files and other worktrees to the container.',
    fix: 'Mount only the folder the service needs, inside the project (e.g. ./data:/data), or use a named volume.',
    neutralisedByRender: false,
  },
  {
    id: 'SS009',
    name: 'external-resource',
    severity: 'warning',
    description:
      'An external volume or network is shared by every instance of the stack: data and traffic leak between worktrees.',
    fix: 'Drop external so each instance gets its own (sandstack names it per instance), or allow it by name under external.volumes / external.networks in sandstack.yaml if sharing is intended.',
    neutralisedByRender: true,
  },
  {
    id: 'SS010',
    name: 'secret-literal',
    severity: 'error',
    description:
      'A secret (a secret-looking variable with a literal value, or a well-known credential format) is written into the compose file, so it ends up in git, in logs and in every evidence bundle.',
    fix: 'Take the value from the environment: NAME: ${NAME:?set NAME in .env}, keep it in an untracked .env (or a generated secret), and rotate the exposed credential.',
    neutralisedByRender: false,
  },
  {
    id: 'SS011',
    name: 'anonymous-admin',
    severity: 'error',
    description:
      'Grafana with anonymous access as Admin (or with the login form disabled while anonymous access is on) lets anyone who reaches the port administer it.',
    fix: 'Use GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer (or disable anonymous access) and keep the login form.',
    neutralisedByRender: false,
  },
  {
    id: 'SS012',
    name: 'security-opt-disabled',
    severity: 'error',
    description: 'security_opt disables a kernel confinement profile (AppArmor, seccomp or SELinux labels).',
    fix: 'Remove the unconfined/disable entry from security_opt; if a syscall is missing, use a custom seccomp profile that allows just that.',
    neutralisedByRender: false,
  },
  {
    id: 'SS013',
    name: 'unpinned-image',
    severity: 'warning',
    description:
      'An image without a tag, or tagged latest, changes under you: two instances (or today and tomorrow) run different code, and the evidence no longer says what ran.',
    fix: 'Pin a version tag (e.g. postgres:16.4) or a digest (image@sha256:…).',
    neutralisedByRender: false,
  },
];

const RULES_BY_ID = new Map(RULES.map((r) => [r.id, r]));

export function ruleById(id: string): Rule {
  const r = RULES_BY_ID.get(id);
  if (!r) throw new Error(`unknown lint rule ${id}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Views over a compose document (as written or merged)
// ---------------------------------------------------------------------------------------------

/** 1-based position in the file as written. */
export interface Pos {
  line: number;
  column: number;
}

export type ScalarValue = string | number | boolean | null;

export interface EntryView {
  key: string;
  /** Position of the key node (as written only). */
  keyPos?: Pos;
  value: ValueView;
}

export interface ValueView {
  readonly kind: 'map' | 'seq' | 'scalar';
  /** Position of the node (as written only). */
  readonly pos?: Pos;
  /** The scalar's value; undefined for maps and sequences. */
  scalar(): ScalarValue | undefined;
  /** Map entries with merge keys resolved (explicit keys win); [] for non-maps. */
  entries(): EntryView[];
  get(key: string): EntryView | undefined;
  /** Sequence items; [] for non-sequences. */
  items(): ValueView[];
}

export interface CheckContext {
  /** 'written': values may contain ${VAR} interpolation; 'merged': Compose already interpolated. */
  mode: 'written' | 'merged';
  projectDir: string;
  homeDir: string;
  /**
   * Merged mode only: the model went through interpolation, so a secret-named variable's value may
   * come from the environment or .env and is not known to be written literally.
   */
  interpolated: boolean;
}

/** A finding before the engine adds the rule's metadata and the file. */
export interface RawFinding {
  ruleId: string;
  service?: string;
  subject: string;
  message: string;
  fix: string;
  pos?: Pos;
}

// ---------------------------------------------------------------------------------------------
// Interpolation (${VAR}, ${VAR:-default}, ${VAR:?err}, $VAR, $$)
// ---------------------------------------------------------------------------------------------

export type Segment =
  | { t: 'lit'; s: string }
  | { t: 'var'; name: string; op?: ':-' | '-' | ':?' | '?' | ':+' | '+'; arg?: Segment[] };

/** Index of the `}` closing the `${` that starts at `open`, or -1. */
function closingBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

export function parseInterpolation(s: string): Segment[] {
  const out: Segment[] = [];
  let lit = '';
  const flush = () => {
    if (lit) out.push({ t: 'lit', s: lit });
    lit = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      lit += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      lit += '$';
      i += 2;
    } else if (next === '{') {
      const close = closingBrace(s, i);
      if (close < 0) {
        lit += s.slice(i);
        break;
      }
      const inner = s.slice(i + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(:-|-|:\?|\?|:\+|\+)?/.exec(inner);
      flush();
      if (!m) {
        out.push({ t: 'var', name: inner });
      } else {
        const op = m[2] as Extract<Segment, { t: 'var' }>['op'];
        out.push(op ? { t: 'var', name: m[1]!, op, arg: parseInterpolation(inner.slice(m[0].length)) } : { t: 'var', name: m[1]! });
      }
      i = close + 1;
    } else if (next !== undefined && /[A-Za-z_]/.test(next)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1))!;
      flush();
      out.push({ t: 'var', name: m[0] });
      i += 1 + m[0].length;
    } else {
      lit += '$';
      i++;
    }
  }
  flush();
  return out;
}

export interface Evaluated {
  /** The value with every variable unset (defaults applied). */
  value: string;
  /** A variable without a default contributes: the real value is not known from the file. */
  unknown: boolean;
  /** Contains any variable reference. */
  parameterised: boolean;
}

function evalSegments(segs: Segment[]): Evaluated {
  let value = '';
  let unknown = false;
  let parameterised = false;
  for (const seg of segs) {
    if (seg.t === 'lit') {
      value += seg.s;
      continue;
    }
    parameterised = true;
    if (seg.op === ':-' || seg.op === '-') {
      const d = evalSegments(seg.arg ?? []);
      value += d.value;
      unknown ||= d.unknown;
    } else {
      unknown = true;
    }
  }
  return { value, unknown, parameterised };
}

/** Evaluates a string as written with every variable unset (defaults applied). */
export function evaluate(s: string): Evaluated {
  return evalSegments(parseInterpolation(s));
}

/** Does the text as written contain a literal value (not just ${VAR} / ${VAR:?…} references)? */
function hasLiteral(segs: Segment[]): boolean {
  return segs.some((seg) =>
    seg.t === 'lit' ? seg.s.length > 0 : (seg.op === ':-' || seg.op === '-' || seg.op === ':+' || seg.op === '+') && hasLiteral(seg.arg ?? []),
  );
}

/** Variable names referenced anywhere in `s` (including inside defaults). */
export function referencedVariables(s: string): string[] {
  const out: string[] = [];
  const walk = (segs: Segment[]) => {
    for (const seg of segs) {
      if (seg.t !== 'var') continue;
      out.push(seg.name);
      if (seg.arg) walk(seg.arg);
    }
  };
  walk(parseInterpolation(s));
  return out;
}

/** A string value in the current mode: as written, with defaults applied; merged, as is. */
function valueOf(raw: string, ctx: CheckContext): Evaluated {
  if (ctx.mode === 'merged') return { value: raw, unknown: false, parameterised: false };
  return evaluate(raw);
}

function scalarText(v: ValueView | undefined): string | undefined {
  if (!v || v.kind !== 'scalar') return undefined;
  const s = v.scalar();
  if (s === null || s === undefined) return undefined;
  return String(s);
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(true|yes|on|1)$/i.test(v.trim());
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/** Splits on `sep` outside `${…}` and `[…]`. */
function splitTop(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let brace = 0;
  let bracket = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '$' && s[i + 1] === '{') {
      brace++;
      cur += '${';
      i++;
      continue;
    }
    if (c === '}' && brace > 0) brace--;
    else if (c === '[' && brace === 0) bracket++;
    else if (c === ']' && brace === 0 && bracket > 0) bracket--;
    else if (c === sep && brace === 0 && bracket === 0) {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

/** Index of the last `/` outside `${…}`, or -1. */
function lastTopSlash(s: string): number {
  let brace = 0;
  let found = -1;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '{') {
      brace++;
      i++;
    } else if (s[i] === '}' && brace > 0) brace--;
    else if (s[i] === '/' && brace === 0) found = i;
  }
  return found;
}

export interface ShortPortParts {
  /** Host address as written, without [ ] brackets. */
  ip?: string;
  published?: string;
  target: string;
  /** Protocol suffix as written (without the slash). */
  proto?: string;
}

/** Splits a short-syntax port (`[ip:][host:]container[/proto]`) as written; undefined when it cannot. */
export function splitShortPort(raw: string): ShortPortParts | undefined {
  let spec = raw.trim();
  let proto: string | undefined;
  const slash = lastTopSlash(spec);
  if (slash >= 0) {
    proto = spec.slice(slash + 1);
    spec = spec.slice(0, slash);
  }
  const parts = splitTop(spec, ':');
  const unbracket = (ip: string) => (ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip);
  if (parts.length === 1) return { target: parts[0]!, proto };
  if (parts.length === 2) return { published: parts[0]!, target: parts[1]!, proto };
  if (parts.length === 3) return { ip: unbracket(parts[0]!), published: parts[1]!, target: parts[2]!, proto };
  return undefined;
}

export interface PortInfo {
  syntax: 'short' | 'long';
  /** The entry as written (short syntax) or a compact rendering (long syntax). */
  display: string;
  /** Normalised spec used as the finding subject: `[ip:][published:]target[/proto]`. */
  canonical: string;
  /** Evaluated host address ('' when none). */
  hostIp: string;
  hostIpUnknown: boolean;
  /** Published (host) port as written, '' when none. */
  publishedRaw: string;
  /** Evaluated published port ('' when none). */
  published: string;
  publishedParameterised: boolean;
  publishedUnknown: boolean;
  /** Container port as written / evaluated. */
  targetRaw: string;
  target: string;
  /** Protocol as written ('' when none). */
  protoRaw: string;
  protocol: string;
}

function canonicalPort(ip: string, published: string, target: string, protocol: string): string {
  const ipPart = ip ? `${ip.includes(':') ? `[${ip}]` : ip}:` : '';
  const pubPart = published ? `${published}:` : ip ? ':' : '';
  const proto = protocol && protocol !== 'tcp' ? `/${protocol}` : '';
  return `${ipPart}${pubPart}${target}${proto}`;
}

/** Reads a `ports:` entry (short or long syntax); undefined when it is not understood. */
export function portInfo(entry: ValueView, ctx: CheckContext): PortInfo | undefined {
  if (entry.kind === 'scalar') {
    const raw = scalarText(entry);
    if (raw === undefined) return undefined;
    const parts = splitShortPort(raw);
    if (!parts) return undefined;
    const ip = parts.ip !== undefined ? valueOf(parts.ip, ctx) : undefined;
    const pub = parts.published !== undefined ? valueOf(parts.published, ctx) : undefined;
    const target = valueOf(parts.target, ctx);
    const protoRaw = parts.proto ?? '';
    const protocol = (valueOf(protoRaw, ctx).value || 'tcp').toLowerCase();
    const info: PortInfo = {
      syntax: 'short',
      display: raw.trim(),
      canonical: '',
      hostIp: ip?.value.trim() ?? '',
      hostIpUnknown: ip?.unknown ?? false,
      publishedRaw: parts.published ?? '',
      published: pub?.value.trim() ?? '',
      publishedParameterised: pub?.parameterised ?? false,
      publishedUnknown: pub?.unknown ?? false,
      targetRaw: parts.target,
      target: target.value.trim(),
      protoRaw,
      protocol,
    };
    info.canonical = canonicalPort(info.hostIp, info.published || (info.publishedUnknown ? info.publishedRaw : ''), info.target, protocol);
    return info;
  }
  if (entry.kind !== 'map') return undefined;
  const targetRaw = scalarText(entry.get('target')?.value);
  if (targetRaw === undefined) return undefined;
  const pubRaw = scalarText(entry.get('published')?.value) ?? '';
  const ipRaw = scalarText(entry.get('host_ip')?.value) ?? '';
  const protoRaw = scalarText(entry.get('protocol')?.value) ?? '';
  const ip = valueOf(ipRaw, ctx);
  const pub = valueOf(pubRaw, ctx);
  const protocol = (valueOf(protoRaw, ctx).value || 'tcp').toLowerCase();
  const target = valueOf(targetRaw, ctx).value.trim();
  const published = pub.value.trim();
  const hostIp = ip.value.trim();
  const canonical = canonicalPort(hostIp, published || (pub.unknown ? pubRaw : ''), target, protocol);
  return {
    syntax: 'long',
    display: canonical,
    canonical,
    hostIp,
    hostIpUnknown: ip.unknown,
    publishedRaw: pubRaw,
    published,
    publishedParameterised: pub.parameterised,
    publishedUnknown: pub.unknown,
    targetRaw,
    target,
    protoRaw,
    protocol,
  };
}

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1']);

export function isLoopback(ip: string): boolean {
  return LOOPBACK_ADDRESSES.has(ip.trim());
}

/** Upper-cased, non-alphanumerics → `_`, usable as a variable name. */
export function envNameOf(service: string): string {
  const base = service.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(base) ? `_${base}` : base;
}

/**
 * Chooses the variable of each parameterised host port: `<SERVICE>_PORT` for a service's first
 * fixed port, `<SERVICE>_<CONTAINERPORT>_PORT` for later ones, never a name already in use.
 */
export class PortNamer {
  private readonly used: Set<string>;
  private readonly perService = new Map<string, number>();

  constructor(used: Iterable<string> = []) {
    this.used = new Set(used);
  }

  next(service: string, target: string, protocol: string): string {
    const base = envNameOf(service);
    const n = this.perService.get(service) ?? 0;
    this.perService.set(service, n + 1);
    const port = target.replace(/[^0-9A-Za-z]/g, '_');
    const candidates = n === 0 ? [`${base}_PORT`] : [];
    candidates.push(`${base}_${port}_PORT`, `${base}_${port}_${protocol.toUpperCase()}_PORT`);
    let name = candidates.find((c) => !this.used.has(c));
    for (let i = 2; !name; i++) if (!this.used.has(`${base}_${port}_PORT_${i}`)) name = `${base}_${port}_PORT_${i}`;
    this.used.add(name);
    return name;
  }
}

export interface PortPlan {
  service: string;
  entry: ValueView;
  info: PortInfo;
  /** SS002: not bound to loopback. */
  notLoopback: boolean;
  /** SS003: literal host port (written only). */
  fixedHostPort: boolean;
  /** The replacement short-syntax spec (short syntax), or undefined when there is none (ranges). */
  replacement?: string;
  /** For the long syntax: what to set. */
  longAdvice?: string;
}

const isRange = (s: string) => /^\d+-\d+$/.test(s.trim());

/**
 * Analyses every port of every service in order. The lint engine and the fixer both call this on
 * the same view, so the suggested variable names in findings match what the fixer writes.
 */
export function planPorts(services: { name: string; view: ValueView }[], ctx: CheckContext): PortPlan[] {
  const used: string[] = [];
  if (ctx.mode === 'written') {
    for (const s of services) {
      for (const it of s.view.get('ports')?.value.items() ?? []) {
        const texts = it.kind === 'scalar' ? [scalarText(it)] : [scalarText(it.get('published')?.value), scalarText(it.get('host_ip')?.value)];
        for (const t of texts) if (t) used.push(...referencedVariables(t));
      }
    }
  }
  const namer = new PortNamer(used);
  const plans: PortPlan[] = [];
  for (const s of services) {
    for (const entry of s.view.get('ports')?.value.items() ?? []) {
      const info = portInfo(entry, ctx);
      if (!info) continue;
      const notLoopback = !info.hostIpUnknown && !isLoopback(info.hostIp);
      const fixedHostPort = ctx.mode === 'written' && info.publishedRaw.trim() !== '' && !info.publishedParameterised;
      if (!notLoopback && !fixedHostPort) continue;
      const plan: PortPlan = { service: s.name, entry, info, notLoopback, fixedHostPort };
      const ip = isLoopback(info.hostIp) ? (info.hostIp.includes(':') ? `[${info.hostIp}]` : info.hostIp) : '127.0.0.1';
      const pubRaw = info.publishedRaw.trim();
      let hostPart = '';
      let replaceable = true;
      if (pubRaw !== '') {
        if (info.publishedParameterised) hostPart = pubRaw;
        else if (isRange(info.published)) replaceable = false;
        else hostPart = `\${${namer.next(s.name, info.target, info.protocol)}:-${info.published}}`;
      }
      if (info.syntax === 'short') {
        if (replaceable) plan.replacement = `${ip}:${hostPart}:${info.targetRaw.trim()}${info.protoRaw ? `/${info.protoRaw}` : ''}`;
      } else {
        const advice = [`host_ip: ${ip.replace(/^\[|\]$/g, '')}`];
        if (hostPart && !info.publishedParameterised) advice.push(`published: "${hostPart}"`);
        plan.longAdvice = advice.join(' and ');
      }
      plans.push(plan);
    }
  }
  return plans;
}

function portFindings(plan: PortPlan): RawFinding[] {
  const { info, service } = plan;
  const out: RawFinding[] = [];
  const pos = portPos(plan);
  const suggestion = plan.replacement
    ? `"${plan.replacement}"`
    : plan.longAdvice
      ? `set ${plan.longAdvice}`
      : `bind the range to 127.0.0.1 and parameterise it, e.g. "127.0.0.1:\${${envNameOf(service)}_PORTS:-${info.published || info.target}}:${info.target}"`;
  if (plan.notLoopback) {
    const where =
      info.hostIp === ''
        ? 'on all addresses'
        : info.hostIp === '0.0.0.0' || info.hostIp === '::'
          ? `on all addresses (${info.hostIp})`
          : `on ${info.hostIp}, not on loopback`;
    const what = info.published || info.publishedUnknown ? info.display : `container port ${info.target} on a random host port`;
    out.push({
      ruleId: 'SS002',
      service,
      subject: info.canonical,
      message: `service ${service} publishes ${what} ${where}`,
      fix: plan.replacement || plan.longAdvice ? `bind it to 127.0.0.1: ${suggestion}` : suggestion,
      pos: info.syntax === 'long' ? (plan.entry.get('host_ip')?.keyPos ?? pos) : pos,
    });
  }
  if (plan.fixedHostPort) {
    out.push({
      ruleId: 'SS003',
      service,
      subject: info.canonical,
      message: `service ${service} publishes the fixed host port ${info.published} (${info.display}): a second instance cannot bind it`,
      fix: `parameterise the host port: ${suggestion} (sandstack leases a free host port per instance at run time)`,
      pos: info.syntax === 'long' ? (plan.entry.get('published')?.keyPos ?? pos) : pos,
    });
  }
  return out;
}

function portPos(plan: PortPlan): Pos | undefined {
  if (plan.entry.kind === 'map') return plan.entry.entries()[0]?.keyPos ?? plan.entry.pos;
  return plan.entry.pos;
}

// ---------------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------------

interface Mount {
  /** The source as written. */
  raw: string;
  /** Absolute host path. */
  resolved: string;
  relative: boolean;
  pos?: Pos;
}

function normalisePath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function isInside(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(`${parent}/`);
}

function bindMounts(svc: ValueView, ctx: CheckContext): Mount[] {
  const out: Mount[] = [];
  const add = (raw: string, pos: Pos | undefined) => {
    const ev = valueOf(raw, ctx);
    if (ev.unknown) return;
    const src = ev.value.trim();
    if (!/^[./~]/.test(src)) return; // a named volume (or a Windows path)
    let resolved: string;
    if (src === '~' || src.startsWith('~/')) resolved = normalisePath(path.posix.join(ctx.homeDir, src.slice(1)));
    else if (src.startsWith('/')) resolved = normalisePath(src);
    else if (src.startsWith('~')) return; // ~otheruser: not resolvable here
    else resolved = normalisePath(path.posix.resolve(ctx.projectDir, src));
    out.push({ raw: raw.trim(), resolved, relative: src.startsWith('.'), pos });
  };
  for (const v of svc.get('volumes')?.value.items() ?? []) {
    if (v.kind === 'scalar') {
      const raw = scalarText(v);
      if (raw === undefined) continue;
      const parts = splitTop(raw, ':');
      if (parts.length < 2) continue; // an anonymous volume: container path only
      add(parts[0]!, v.pos);
    } else if (v.kind === 'map') {
      const type = scalarText(v.get('type')?.value);
      const source = v.get('source');
      const raw = scalarText(source?.value);
      if (raw === undefined) continue;
      if (type !== undefined && type !== 'bind') continue;
      add(raw, source?.keyPos ?? v.pos);
    }
  }
  return out;
}

const BROAD_PATHS = new Set(['/', '/home', '/Users', '/root', '/mnt', '/etc', '/var/run', '/run', '/var/lib/docker', '/proc', '/sys']);

function mountFindings(service: string, svc: ValueView, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const home = normalisePath(ctx.homeDir);
  const project = normalisePath(ctx.projectDir);
  for (const m of bindMounts(svc, ctx)) {
    const shown = m.raw === m.resolved ? m.raw : `${m.raw} (${m.resolved})`;
    if (path.posix.basename(m.resolved) === 'docker.sock') {
      out.push({
        ruleId: 'SS004',
        service,
        subject: m.resolved,
        message: `service ${service} mounts the Docker socket ${shown}: it controls every container on the host, including other instances`,
        fix: ruleById('SS004').fix,
        pos: m.pos,
      });
      continue;
    }
    let why: string | undefined;
    if (BROAD_PATHS.has(m.resolved)) why = 'a broad host path';
    else if (m.resolved.startsWith('/var/lib/docker/')) why = 'Docker’s own data (every container’s files)';
    else if (m.resolved === home) why = 'your home folder';
    else if (isInside(home, m.resolved)) why = 'a parent of your home folder';
    else if (m.relative && !isInside(m.resolved, project)) why = 'outside the project (it escapes with ..)';
    else if (m.resolved !== project && isInside(project, m.resolved)) why = 'a parent of the project';
    if (!why) continue;
    out.push({
      ruleId: 'SS008',
      service,
      subject: m.resolved,
      message: `service ${service} bind-mounts ${shown}, ${why}`,
      fix: ruleById('SS008').fix,
      pos: m.pos,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

interface EnvEntry {
  name: string;
  /** Value as written (or merged); undefined for pass-through entries and null values. */
  raw?: string;
  pos?: Pos;
}

function envEntries(svc: ValueView): EnvEntry[] {
  const env = svc.get('environment')?.value;
  if (!env) return [];
  if (env.kind === 'map') {
    return env.entries().map((e) => ({ name: e.key, raw: scalarText(e.value), pos: e.keyPos }));
  }
  const out: EnvEntry[] = [];
  for (const it of env.items()) {
    const s = scalarText(it);
    if (s === undefined) continue;
    const eq = s.indexOf('=');
    out.push(eq < 0 ? { name: s.trim(), pos: it.pos } : { name: s.slice(0, eq).trim(), raw: s.slice(eq + 1), pos: it.pos });
  }
  return out;
}

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|_KEY$)/i;
/** Names that merely point at a secret (a file, a path, an address) rather than hold one. */
const NOT_A_SECRET_NAME = /_(FILE|PATH|DIR|URL|URI|HOST|PORT)$/i;

const SECRET_FORMATS: { kind: string; re: RegExp }[] = [
  { kind: 'an AWS access key id', re: /\bAKIA[0-9A-Z]{16}\b/ },
  { kind: 'a GitHub token', re: /\bgh[pousr]_[A-Za-z0-9]{36,}/ },
  { kind: 'a Slack token', re: /\bxox[abprs]-[A-Za-z0-9-]+/ },
  { kind: 'a Stripe live secret key', re: /\bsk_live_[0-9a-zA-Z]{16,}/ },
  { kind: 'a private key', re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { kind: 'a Google API key', re: /\bAIza[0-9A-Za-z_-]{35}/ },
];

export function secretKindOf(value: string): string | undefined {
  return SECRET_FORMATS.find((f) => f.re.test(value))?.kind;
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_A_SECRET_NAME.test(name);
}

function envFindings(service: string, svc: ValueView, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const entries = envEntries(svc);
  for (const e of entries) {
    if (e.raw === undefined || e.raw.trim() === '') continue;
    const kind = secretKindOf(e.raw);
    const fix = `take it from the environment: ${e.name}: \${${e.name}:?set ${e.name} in .env}, keep the value in an untracked .env, and rotate it if it was ever committed`;
    if (kind) {
      out.push({
        ruleId: 'SS010',
        service,
        subject: e.name,
        message: `service ${service}: the value of ${e.name} contains ${kind}`,
        fix,
        pos: e.pos,
      });
      continue;
    }
    if (!isSecretName(e.name)) continue;
    let literal: boolean;
    let how = 'a literal value';
    if (ctx.mode === 'written' || !ctx.interpolated) {
      const segs = parseInterpolation(e.raw);
      literal = hasLiteral(segs);
      if (literal && !segs.some((s) => s.t === 'lit' && s.s.length > 0)) how = 'a literal default (${…:-…})';
    } else {
      literal = false; // interpolated model: the value may come from the environment or .env
    }
    if (!literal) continue;
    const ev = valueOf(e.raw, ctx);
    if (/^(true|false)$/i.test(ev.value.trim())) continue; // a switch, not a secret
    out.push({
      ruleId: 'SS010',
      service,
      subject: e.name,
      message: `service ${service} sets the secret-looking variable ${e.name} to ${how}`,
      fix,
      pos: e.pos,
    });
  }
  // SS011: Grafana anonymous admin.
  const byName = new Map(entries.map((e) => [e.name.toUpperCase(), e]));
  const val = (n: string) => {
    const e = byName.get(n);
    if (!e || e.raw === undefined) return undefined;
    const ev = valueOf(e.raw, ctx);
    return ev.unknown ? undefined : ev.value.trim();
  };
  if (isTrue(val('GF_AUTH_ANONYMOUS_ENABLED'))) {
    if ((val('GF_AUTH_ANONYMOUS_ORG_ROLE') ?? '').toLowerCase() === 'admin') {
      out.push({
        ruleId: 'SS011',
        service,
        subject: 'GF_AUTH_ANONYMOUS_ORG_ROLE',
        message: `service ${service} gives anonymous users the Grafana Admin role (GF_AUTH_ANONYMOUS_ENABLED with GF_AUTH_ANONYMOUS_ORG_ROLE=Admin)`,
        fix: 'set GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer, or GF_AUTH_ANONYMOUS_ENABLED: "false"',
        pos: byName.get('GF_AUTH_ANONYMOUS_ORG_ROLE')?.pos,
      });
    }
    if (isTrue(val('GF_AUTH_DISABLE_LOGIN_FORM'))) {
      out.push({
        ruleId: 'SS011',
        service,
        subject: 'GF_AUTH_DISABLE_LOGIN_FORM',
        message: `service ${service} disables the Grafana login form while anonymous access is on`,
        fix: 'remove GF_AUTH_DISABLE_LOGIN_FORM (keep the login form) or disable anonymous access',
        pos: byName.get('GF_AUTH_DISABLE_LOGIN_FORM')?.pos,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Service and top-level checks
// ---------------------------------------------------------------------------------------------

const DANGEROUS_CAPS = new Set(['ALL', 'SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE', 'SYS_MODULE', 'SYS_RAWIO', 'DAC_READ_SEARCH', 'SYS_TIME', 'BPF', 'PERFMON']);
const HOST_NAMESPACE_KEYS = ['network_mode', 'pid', 'ipc', 'uts', 'userns_mode'];
const SECURITY_OPT_DISABLED = /^(apparmor[:=]unconfined|seccomp[:=]unconfined|label[:=]disable)$/;

/** Splits an image reference: tag (after the last `:` of the last path segment) and digest. */
export function imageTag(image: string): { tag?: string; digest?: string } {
  const at = image.indexOf('@');
  const digest = at >= 0 ? image.slice(at + 1) : undefined;
  const name = at >= 0 ? image.slice(0, at) : image;
  const last = name.slice(name.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return { tag: colon >= 0 ? last.slice(colon + 1) : undefined, digest };
}

/** `name:tag` with the implicit `latest` made explicit (digests kept as they are). */
function normaliseImage(image: string): string {
  const { tag, digest } = imageTag(image);
  return tag || digest ? image : `${image}:latest`;
}

/** Images that services with `build` produce: local names, not pulled. */
export function builtImages(services: { view: ValueView }[], ctx: CheckContext): Set<string> {
  const out = new Set<string>();
  for (const s of services) {
    const raw = scalarText(s.view.get('image')?.value);
    if (raw === undefined || !s.view.get('build')) continue;
    const ev = valueOf(raw, ctx);
    if (!ev.unknown) out.add(normaliseImage(ev.value.trim()));
  }
  return out;
}

export function checkService(service: string, svc: ValueView, ctx: CheckContext, localImages: Set<string> = new Set()): RawFinding[] {
  const out: RawFinding[] = [];

  const cn = svc.get('container_name');
  const cnRaw = scalarText(cn?.value);
  if (cn && cnRaw !== undefined) {
    const ev = valueOf(cnRaw, ctx);
    const name = ev.unknown ? cnRaw : ev.value;
    out.push({
      ruleId: 'SS001',
      service,
      subject: name,
      message: `service ${service} has the fixed container_name "${name}": a second instance of the stack cannot create it`,
      fix: `remove the container_name line; Compose names it <project>-${service}-1 and other services reach it as "${service}"`,
      pos: cn.keyPos,
    });
  }

  out.push(...mountFindings(service, svc, ctx));

  const priv = svc.get('privileged');
  if (priv && isTrue(scalarText(priv.value))) {
    out.push({
      ruleId: 'SS005',
      service,
      subject: 'privileged',
      message: `service ${service} runs privileged: nearly all container isolation is off`,
      fix: ruleById('SS005').fix,
      pos: priv.keyPos,
    });
  }

  for (const it of svc.get('cap_add')?.value.items() ?? []) {
    const raw = scalarText(it);
    if (raw === undefined) continue;
    const cap = raw.trim().toUpperCase().replace(/^CAP_/, '');
    if (!DANGEROUS_CAPS.has(cap)) continue;
    out.push({
      ruleId: 'SS006',
      service,
      subject: cap,
      message: `service ${service} adds the capability ${cap}, which breaks container isolation`,
      fix: `remove ${raw.trim()} from cap_add${cap === 'NET_ADMIN' ? ' (NET_BIND_SERVICE suffices to bind low ports)' : ''}`,
      pos: it.pos,
    });
  }

  for (const key of HOST_NAMESPACE_KEYS) {
    const e = svc.get(key);
    const raw = scalarText(e?.value);
    if (!e || raw === undefined) continue;
    const ev = valueOf(raw, ctx);
    if (ev.unknown || ev.value.trim().toLowerCase() !== 'host') continue;
    out.push({
      ruleId: 'SS007',
      service,
      subject: `${key}: host`,
      message: `service ${service} uses the host's ${key === 'network_mode' ? 'network' : key === 'userns_mode' ? 'user' : key} namespace (${key}: host)`,
      fix:
        key === 'network_mode'
          ? 'remove network_mode: host and publish the ports the service needs, bound to 127.0.0.1'
          : `remove ${key}: host`,
      pos: e.keyPos,
    });
  }

  for (const it of svc.get('security_opt')?.value.items() ?? []) {
    const raw = scalarText(it);
    if (raw === undefined) continue;
    const norm = raw.replace(/\s+/g, '').toLowerCase();
    if (!SECURITY_OPT_DISABLED.test(norm)) continue;
    const subject = norm.replace('=', ':');
    out.push({
      ruleId: 'SS012',
      service,
      subject,
      message: `service ${service} disables its ${subject.split(':')[0] === 'label' ? 'SELinux labelling' : `${subject.split(':')[0]} profile`} (security_opt ${raw.trim()})`,
      fix: `remove ${raw.trim()} from security_opt`,
      pos: it.pos,
    });
  }

  out.push(...envFindings(service, svc, ctx));

  const img = svc.get('image');
  const imgRaw = scalarText(img?.value);
  if (img && imgRaw !== undefined && !svc.get('build')) {
    const ev = valueOf(imgRaw, ctx);
    if (!ev.unknown) {
      const image = ev.value.trim();
      const { tag, digest } = imageTag(image);
      if (!digest && (!tag || tag === 'latest') && !localImages.has(normaliseImage(image))) {
        const name = tag ? image.slice(0, image.length - tag.length - 1) : image;
        out.push({
          ruleId: 'SS013',
          service,
          subject: image,
          message: `service ${service} uses the image ${image}, ${tag ? 'tagged latest' : 'without a tag'}: what runs changes from one pull to the next`,
          fix: `pin a version tag or a digest: ${name}:<version> or ${name}@sha256:<digest>`,
          pos: img.keyPos,
        });
      }
    }
  }
  return out;
}

/** SS009: external volumes and networks. */
export function checkTopLevel(root: ValueView): RawFinding[] {
  const out: RawFinding[] = [];
  for (const section of ['volumes', 'networks'] as const) {
    const kind = section === 'volumes' ? 'volume' : 'network';
    for (const e of root.get(section)?.value.entries() ?? []) {
      if (e.value.kind !== 'map') continue;
      const ext = e.value.get('external');
      if (!ext) continue;
      const isExternal = ext.value.kind === 'map' || isTrue(scalarText(ext.value));
      if (!isExternal) continue;
      const named = ext.value.kind === 'map' ? scalarText(ext.value.get('name')?.value) : scalarText(e.value.get('name')?.value);
      out.push({
        ruleId: 'SS009',
        subject: `${section}.${e.key}`,
        message: `${kind} ${e.key}${named && named !== e.key ? ` (${named})` : ''} is external: every instance of the stack shares it`,
        fix: `drop external so each instance gets its own ${kind}, or, if sharing is intended, allow it under external.${section} in sandstack.yaml`,
        pos: ext.keyPos,
      });
    }
  }
  return out;
}

/** Services of a compose document view, in order; [] when there are none. */
export function servicesOf(root: ValueView): { name: string; view: ValueView; keyPos?: Pos }[] {
  if (root.kind !== 'map') return [];
  const services = root.get('services')?.value;
  if (!services || services.kind !== 'map') return [];
  return services
    .entries()
    .filter((e) => e.value.kind === 'map')
    .map((e) => ({ name: e.key, view: e.value, keyPos: e.keyPos }));
}

/** Every check on a document view. */
export function checkDocument(root: ValueView, ctx: CheckContext): RawFinding[] {
  const services = servicesOf(root);
  if (services.length === 0) return [];
  const out: RawFinding[] = [];
  for (const plan of planPorts(services, ctx)) out.push(...portFindings(plan));
  const local = builtImages(services, ctx);
  for (const s of services) out.push(...checkService(s.name, s.view, ctx, local));
  out.push(...checkTopLevel(root));
  return out;
}
