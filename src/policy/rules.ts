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

/** A host path declared under data.shared in sandstack.yaml: mounted on purpose into every instance. */
export interface SharedDataset {
  name: string;
  /** Absolute host path (a relative one is taken relative to projectDir). */
  host: string;
  services: string[];
  /** Path in the container. */
  target: string;
  mode: 'ro' | 'rw';
}

export interface LintOptions {
  /** The folder relative paths in the compose files resolve against (Compose's project directory). */
  projectDir: string;
  homeDir: string;
  /**
   * The git repository's top level (for a worktree: the worktree's own folder). A bind mount that
   * leaves projectDir but stays inside it (e.g. ../data) is fine. Default: projectDir. Ignored when
   * it is /, the home folder or a parent of it.
   */
  repoRoot?: string;
  /** data.shared of sandstack.yaml, hosts resolved: bind mounts matching one are accepted. */
  sharedData?: SharedDataset[];
  /**
   * Host folders sandstack itself manages per instance (its state home: SANDSTACK_DATA_ROOT,
   * SANDSTACK_SECRETS_DIR): the merged model has them resolved, and mounts inside them are fine.
   */
  ownPaths?: string[];
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
      'A bind mount of a broad host path (/, /home, /Users, /root, /mnt, /etc, /var/run, /run, /var/lib/docker, /proc, /sys, the user’s home or a parent of it, a parent of the project outside the git repository, or a relative path escaping the git repository with ..) exposes host files and other worktrees to the container.',
    fix: 'Mount only the folder the service needs, inside the repository (e.g. ./data:/data), or use a named volume.',
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
  {
    id: 'SS014',
    name: 'host-system-mount',
    severity: 'error',
    description:
      'A bind mount of a sensitive host path (under /etc, /boot, /dev, /proc, /sys, /usr, /bin, /sbin, /lib*, /var/lib, /var/log, /run, /var/run, /root, or credentials in the home folder such as ~/.ssh, ~/.aws, ~/.kube, ~/.docker), read-only or not, exposes (or lets the container change) the host’s configuration, kernel, devices, other services’ data or your credentials.',
    fix: 'Remove the mount; copy what the service needs into the image or the project (e.g. ./config/x.conf:/etc/x.conf:ro), or pass it as a Compose secret. For a host agent that really needs it (an exporter reading /proc), allow it under policy.allow with a reason.',
    neutralisedByRender: false,
  },
  {
    id: 'SS015',
    name: 'host-path-mount',
    severity: 'warning',
    description:
      'A bind mount of an absolute host path outside the project and its git repository (e.g. /mnt/datasets, /srv/data, /opt/tools; also a read-only /etc/localtime, /etc/timezone or CA certificates) ties the stack to this machine, and every instance of the stack shares (and may write) the same host folder.',
    fix: 'Mount a folder inside the repository or use a named volume; if the host data is meant to be shared, declare it under data.shared in sandstack.yaml (name, host, services, target, mode). For the time zone, set TZ instead.',
    neutralisedByRender: false,
  },
  {
    id: 'SS016',
    name: 'password-in-url',
    severity: 'error',
    description:
      'A URL with a literal password (scheme://user:password@host) in an environment value, build argument, command, entrypoint, healthcheck or label puts the credential in git, in process listings and in every evidence bundle.',
    fix: 'Interpolate the password: postgres://app:${DB_PASSWORD}@db:5432/app, with DB_PASSWORD generated per instance (secrets: in sandstack.yaml) or set in an untracked .env; rotate the exposed one.',
    neutralisedByRender: false,
  },
  {
    id: 'SS017',
    name: 'dotenv-secret',
    severity: 'warning',
    description:
      'The .env file beside the compose file sets a secret-looking variable to a literal value (or holds a well-known key format): committed with the project it leaks, and every instance of the stack shares the same credential.',
    fix: 'Declare it under secrets: in sandstack.yaml (a value generated per instance, ${NAME} in compose files), or keep .env git-ignored and never committed; rotate a value that was committed.',
    neutralisedByRender: false,
  },
  {
    id: 'SS018',
    name: 'fixed-address',
    severity: 'warning',
    description:
      'A fixed subnet, IP range or gateway (networks.<n>.ipam.config) or a fixed container address (ipv4_address, ipv6_address) makes a second instance of the stack unable to create its network (the address pool overlaps).',
    fix: 'Remove the fixed subnet and addresses; services reach each other by service name (or a network alias). sandstack drops them when it renders the model, so each instance gets a free subnet from Docker.',
    neutralisedByRender: true,
  },
  {
    id: 'SS019',
    name: 'shared-data-mode',
    severity: 'error',
    description:
      'A shared dataset declared read-only under data.shared in sandstack.yaml is mounted read-write: one instance can change (or corrupt) the data every other instance reads.',
    fix: 'Mount it read-only (":ro" in the short syntax, read_only: true in the long one), or declare it mode: rw with a reason. sandstack\'s rendering mounts it read-only as declared.',
    neutralisedByRender: true,
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
  /** See LintOptions.repoRoot (default: projectDir). */
  repoRoot?: string;
  /** See LintOptions.sharedData. */
  sharedData?: SharedDataset[];
  /** See LintOptions.ownPaths. */
  ownPaths?: string[];
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
  /** The container path (evaluated, normalised); undefined when unknown. */
  target?: string;
  readOnly: boolean;
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

/** A host path as written → absolute (undefined for named volumes, ~user and unknown values). */
function hostPathOf(raw: string, ctx: CheckContext): { resolved: string; relative: boolean } | undefined {
  const ev = valueOf(raw, ctx);
  if (ev.unknown) return undefined;
  const src = ev.value.trim();
  if (!/^[./~]/.test(src)) return undefined; // a named volume (or a Windows path)
  if (src === '~' || src.startsWith('~/')) return { resolved: normalisePath(path.posix.join(ctx.homeDir, src.slice(1))), relative: false };
  if (src.startsWith('/')) return { resolved: normalisePath(src), relative: false };
  if (src.startsWith('~')) return undefined; // ~otheruser: not resolvable here
  return { resolved: normalisePath(path.posix.resolve(ctx.projectDir, src)), relative: true };
}

function containerPathOf(raw: string | undefined, ctx: CheckContext): string | undefined {
  if (raw === undefined) return undefined;
  const ev = valueOf(raw, ctx);
  if (ev.unknown || ev.value.trim() === '') return undefined;
  return normalisePath(ev.value.trim());
}

function bindMounts(svc: ValueView, ctx: CheckContext): Mount[] {
  const out: Mount[] = [];
  const add = (raw: string, pos: Pos | undefined, target: string | undefined, readOnly: boolean) => {
    const host = hostPathOf(raw, ctx);
    if (!host) return;
    out.push({ raw: raw.trim(), ...host, target: containerPathOf(target, ctx), readOnly, pos });
  };
  for (const v of svc.get('volumes')?.value.items() ?? []) {
    if (v.kind === 'scalar') {
      const raw = scalarText(v);
      if (raw === undefined) continue;
      const parts = splitTop(raw, ':');
      if (parts.length < 2) continue; // an anonymous volume: container path only
      const opts = (parts[2] ?? '').split(',').map((o) => valueOf(o, ctx).value.trim());
      add(parts[0]!, v.pos, parts[1], opts.includes('ro'));
    } else if (v.kind === 'map') {
      const type = scalarText(v.get('type')?.value);
      const source = v.get('source');
      const raw = scalarText(source?.value);
      if (raw === undefined) continue;
      if (type !== undefined && type !== 'bind') continue;
      add(raw, source?.keyPos ?? v.pos, scalarText(v.get('target')?.value), isTrue(scalarText(v.get('read_only')?.value)));
    }
  }
  return out;
}

const BROAD_PATHS = new Set(['/', '/home', '/Users', '/root', '/mnt', '/etc', '/var/run', '/run', '/var/lib/docker', '/proc', '/sys']);

/** Host system paths: a bind mount of one of these or anything under them is SS014. */
const SYSTEM_PATHS = ['/etc', '/boot', '/dev', '/proc', '/sys', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/var/lib', '/var/log', '/var/run', '/run', '/root'];
/** Credentials in the home folder (relative to it): SS014. */
const HOME_CREDENTIALS = ['.ssh', '.aws', '.azure', '.kube', '.docker', '.gnupg', '.config/gcloud', '.netrc', '.git-credentials', '.npmrc', '.pypirc'];
/** System paths that are harmless when mounted read-only (time zone, CA certificates): SS015, not SS014. */
const HARMLESS_READ_ONLY = ['/etc/localtime', '/etc/timezone', '/usr/share/zoneinfo', '/etc/ssl/certs', '/etc/ca-certificates', '/etc/pki/ca-trust'];

/** The repository root to use: only when it holds the project and is not /, home or a parent of it. */
function effectiveRepoRoot(ctx: CheckContext, project: string, home: string): string {
  const repo = ctx.repoRoot ? normalisePath(ctx.repoRoot) : undefined;
  if (!repo || repo === '/' || isInside(home, repo) || !isInside(project, repo)) return project;
  return repo;
}

interface HostPathVerdict {
  ruleId: 'SS008' | 'SS014' | 'SS015';
  why: string;
}

/** Classifies a host path mounted into a container (after SS004 and data.shared). */
function classifyHostPath(resolved: string, relative: boolean, readOnly: boolean, ctx: CheckContext): HostPathVerdict | undefined {
  const home = normalisePath(ctx.homeDir);
  const project = normalisePath(ctx.projectDir);
  const repo = effectiveRepoRoot(ctx, project, home);
  const broad = broadPath(resolved, home);
  if (broad) return { ruleId: 'SS008', why: broad };
  if (isInside(resolved, project) || isInside(resolved, repo)) return undefined;
  if ((ctx.ownPaths ?? []).some((p) => isInside(resolved, normalisePath(p)))) return undefined;
  const cred = HOME_CREDENTIALS.find((c) => isInside(resolved, `${home}/${c}`));
  if (cred) return { ruleId: 'SS014', why: `your credentials (~/${cred})` };
  // Inside the home folder (which may itself be /root or under /var/lib), only credentials are sensitive.
  const system = isInside(resolved, home) ? undefined : SYSTEM_PATHS.find((p) => isInside(resolved, p));
  if (system) {
    if (readOnly && HARMLESS_READ_ONLY.some((p) => isInside(resolved, p))) {
      return { ruleId: 'SS015', why: 'a host path outside the project (read-only; harmless, but ties the stack to this host)' };
    }
    return { ruleId: 'SS014', why: `a host system path (under ${system})${readOnly ? ', even read-only' : ''}` };
  }
  const outside = repo === project ? 'the project' : 'the git repository';
  if (relative) return { ruleId: 'SS008', why: `outside ${outside} (it escapes with ..)` };
  if (isInside(project, resolved)) return { ruleId: 'SS008', why: 'a parent of the project' };
  return { ruleId: 'SS015', why: `a host path outside ${outside}, shared by every instance of the stack` };
}

/** Why a path is too broad to mount even when declared (SS008), or undefined. */
function broadPath(resolved: string, home: string): string | undefined {
  if (BROAD_PATHS.has(resolved)) return 'a broad host path';
  if (resolved.startsWith('/var/lib/docker/')) return 'Docker’s own data (every container’s files)';
  if (resolved === home) return 'your home folder';
  if (isInside(home, resolved)) return 'a parent of your home folder';
  return undefined;
}

/**
 * The rule lint gives a bind mount of the absolute host path `source` (as Docker reports it): SS004
 * for the Docker socket, SS008, SS014 or SS015 as for a mount written in a compose file; undefined
 * when lint accepts it (inside the project, its repository or sandstack's own folders). Used by the
 * gate's isolation stage so that a `policy.allow` entry means the same there as in lint.
 */
export function hostMountRule(source: string, readOnly: boolean, opts: LintOptions): { ruleId: 'SS004' | 'SS008' | 'SS014' | 'SS015'; why: string } | undefined {
  const resolved = normalisePath(source);
  if (path.posix.basename(resolved) === 'docker.sock') return { ruleId: 'SS004', why: 'the Docker socket' };
  return classifyHostPath(resolved, false, readOnly, { mode: 'merged', interpolated: true, ...opts });
}

function sharedDatasets(ctx: CheckContext): SharedDataset[] {
  return (ctx.sharedData ?? []).map((d) => ({ ...d, host: normalisePath(path.posix.resolve(ctx.projectDir, d.host)), target: normalisePath(d.target) }));
}

function mountFindings(service: string, svc: ValueView, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const home = normalisePath(ctx.homeDir);
  const datasets = sharedDatasets(ctx);
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
    const sameHost = datasets.filter((d) => d.host === m.resolved);
    const declared = broadPath(m.resolved, home) ? undefined : sameHost.find((d) => d.services.includes(service) && d.target === m.target);
    if (declared) {
      if (declared.mode === 'ro' && !m.readOnly) {
        out.push({
          ruleId: 'SS019',
          service,
          subject: m.resolved,
          message: `service ${service} mounts the shared dataset ${declared.name} (${shown}) read-write, but data.shared declares it read-only`,
          fix: `mount it read-only ("${m.raw}:${m.target}:ro", or read_only: true), or declare ${declared.name} with mode: rw and a reason`,
          pos: m.pos,
        });
      }
      continue;
    }
    const verdict = classifyHostPath(m.resolved, m.relative, m.readOnly, ctx);
    if (!verdict) continue;
    const near = sameHost[0];
    const hint = near
      ? ` (data.shared declares it as ${near.name} for ${near.services.join(', ')} at ${near.target}, ${near.services.includes(service) ? `not at ${m.target ?? 'this path'}` : `not for ${service}`})`
      : '';
    const rule = ruleById(verdict.ruleId);
    out.push({
      ruleId: verdict.ruleId,
      service,
      subject: m.resolved,
      message: `service ${service} bind-mounts ${shown}, ${verdict.why}${hint}`,
      fix:
        verdict.ruleId === 'SS015'
          ? `mount a folder inside the repository or a named volume; if the host data is meant to be shared, declare it in sandstack.yaml: data: { shared: [ { name: <name>, host: ${m.resolved}, services: [${service}], target: ${m.target ?? '<container path>'}${m.readOnly ? '' : ', mode: rw, reason: "…"'} } ] }`
          : rule.fix,
      pos: m.pos,
    });
  }
  return out;
}

/** Top-level volumes of the local driver that bind a host folder (driver_opts o: bind, device: /path). */
function boundVolumeFindings(root: ValueView, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const datasets = sharedDatasets(ctx);
  for (const e of root.get('volumes')?.value.entries() ?? []) {
    if (e.value.kind !== 'map') continue;
    const opts = e.value.get('driver_opts')?.value;
    if (!opts || opts.kind !== 'map') continue;
    const o = scalarText(opts.get('o')?.value);
    if (o === undefined || !valueOf(o, ctx).value.split(',').some((x) => x.trim() === 'bind')) continue;
    const device = opts.get('device');
    const raw = scalarText(device?.value);
    if (raw === undefined) continue;
    const host = hostPathOf(raw, ctx);
    if (!host) continue;
    if (datasets.some((d) => d.host === host.resolved) && !broadPath(host.resolved, normalisePath(ctx.homeDir))) continue;
    const readOnly = valueOf(o, ctx).value.split(',').some((x) => x.trim() === 'ro');
    const verdict = path.posix.basename(host.resolved) === 'docker.sock' ? { ruleId: 'SS004' as const, why: 'the Docker socket' } : classifyHostPath(host.resolved, host.relative, readOnly, ctx);
    if (!verdict) continue;
    const shown = raw.trim() === host.resolved ? host.resolved : `${raw.trim()} (${host.resolved})`;
    // Reported for each service that mounts the volume (so policy.allow can name it).
    const users = servicesOf(root).filter((svc) => namedVolumesOf(svc.view).includes(e.key));
    for (const service of users.length ? users.map((u) => u.name) : [undefined]) {
      out.push({
        ruleId: verdict.ruleId,
        ...(service !== undefined ? { service } : {}),
        subject: host.resolved,
        message: `${service !== undefined ? `service ${service} mounts ` : ''}volume ${e.key}, which binds the host path ${shown} (driver_opts o: bind), ${verdict.why}`,
        fix: ruleById(verdict.ruleId).fix,
        pos: device?.keyPos,
      });
    }
  }
  return out;
}

/** Named volumes a service mounts (short `name:/path` and long `type: volume` entries). */
function namedVolumesOf(svc: ValueView): string[] {
  const out: string[] = [];
  for (const v of svc.get('volumes')?.value.items() ?? []) {
    if (v.kind === 'scalar') {
      const parts = splitTop(scalarText(v) ?? '', ':');
      if (parts.length >= 2 && /^[A-Za-z0-9]/.test(parts[0]!.trim())) out.push(parts[0]!.trim());
    } else if (v.kind === 'map') {
      const type = scalarText(v.get('type')?.value);
      const source = scalarText(v.get('source')?.value);
      if (source !== undefined && (type === undefined || type === 'volume') && /^[A-Za-z0-9]/.test(source.trim())) out.push(source.trim());
    }
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

/** A path under /run/secrets/ (where Compose and Docker mount secrets): it points at a secret, it is not one. */
export function isSecretFilePath(value: string): boolean {
  return /^\/run\/secrets\/[^\s]+$/.test(value.trim());
}

// ---------------------------------------------------------------------------------------------
// Passwords in URLs (SS016)
// ---------------------------------------------------------------------------------------------

/** Stands for a variable reference without a literal default when looking for URL passwords. */
const UNKNOWN = '\u0001';

/** The text with every ${VAR} (no default) replaced by UNKNOWN and defaults/alternatives spelled out. */
function maskInterpolation(segs: Segment[]): string {
  let out = '';
  for (const seg of segs) {
    if (seg.t === 'lit') out += seg.s;
    else if (seg.op === ':-' || seg.op === '-' || seg.op === ':+' || seg.op === '+') {
      const arg = maskInterpolation(seg.arg ?? []);
      out += arg === '' ? UNKNOWN : arg;
    } else out += UNKNOWN;
  }
  return out;
}

const URL_USERINFO = /([A-Za-z][A-Za-z0-9+.-]*):\/\/([^\s:@/?#]*):([^\s@/?#]*)@([^\s/?#:]*)/g;

export interface UrlPassword {
  /** The URL with the password replaced by *** (and references as ${…}), e.g. postgres://app:***@db. */
  shown: string;
  scheme: string;
}

/**
 * URLs in `text` whose userinfo has a literal (non-empty, not purely ${VAR}) password. `written`:
 * the text may contain interpolation (a ${VAR:-default} default counts as literal).
 */
export function urlPasswords(text: string, written: boolean): UrlPassword[] {
  const masked = written ? maskInterpolation(parseInterpolation(text)) : text;
  const out: UrlPassword[] = [];
  for (const m of masked.matchAll(URL_USERINFO)) {
    const [, scheme, user, password] = m;
    if (!password || password.split(UNKNOWN).join('') === '') continue;
    const show = (x: string) => x.split(UNKNOWN).join('${…}');
    out.push({ shown: `${scheme}://${show(user!)}:***@${show(m[4]!)}`, scheme: scheme! });
  }
  return out;
}

function urlPasswordFindings(service: string, subject: string, raw: string | undefined, pos: Pos | undefined, ctx: CheckContext, what = subject): RawFinding[] {
  if (raw === undefined || raw === '') return [];
  // An interpolated model: the URL may have been assembled from the environment or .env.
  if (ctx.mode === 'merged' && ctx.interpolated) return [];
  return urlPasswords(raw, ctx.mode === 'written').map((u) => ({
    ruleId: 'SS016',
    service,
    subject,
    message: `service ${service}: ${what} contains a URL with a literal password (${u.shown})`,
    fix: `take the password from a variable, e.g. ${u.scheme}://user:\${DB_PASSWORD}@host (generated per instance with secrets: in sandstack.yaml, or set in an untracked .env), and rotate the exposed one`,
    pos,
  }));
}

/** SS016 outside environment: build args, command, entrypoint, healthcheck test, labels. */
function commandUrlFindings(service: string, svc: ValueView, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const scan = (subject: string, v: ValueView | undefined, what = subject) => {
    if (!v) return;
    if (v.kind === 'scalar') out.push(...urlPasswordFindings(service, subject, scalarText(v), v.pos, ctx, what));
    else if (v.kind === 'seq') for (const it of v.items()) out.push(...urlPasswordFindings(service, subject, scalarText(it), it.pos, ctx, what));
  };
  const keyed = (prefix: string, v: ValueView | undefined) => {
    if (!v) return;
    if (v.kind === 'map') {
      for (const e of v.entries()) out.push(...urlPasswordFindings(service, `${prefix}.${e.key}`, scalarText(e.value), e.keyPos, ctx));
    } else {
      for (const it of v.items()) {
        const t = scalarText(it);
        if (t === undefined) continue;
        const eq = t.indexOf('=');
        if (eq < 0) continue;
        out.push(...urlPasswordFindings(service, `${prefix}.${t.slice(0, eq).trim()}`, t.slice(eq + 1), it.pos, ctx));
      }
    }
  };
  const build = svc.get('build')?.value;
  if (build?.kind === 'map') keyed('build.args', build.get('args')?.value);
  scan('command', svc.get('command')?.value);
  scan('entrypoint', svc.get('entrypoint')?.value);
  const hc = svc.get('healthcheck')?.value;
  if (hc?.kind === 'map') scan('healthcheck.test', hc.get('test')?.value, 'the healthcheck');
  keyed('labels', svc.get('labels')?.value);
  return out;
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
    if (!isSecretName(e.name)) {
      out.push(...urlPasswordFindings(service, e.name, e.raw, e.pos, ctx));
      continue;
    }
    let literal: boolean;
    let how = 'a literal value';
    if (ctx.mode === 'written' || !ctx.interpolated) {
      const segs = parseInterpolation(e.raw);
      literal = hasLiteral(segs);
      if (literal && !segs.some((s) => s.t === 'lit' && s.s.length > 0)) how = 'a literal default (${…:-…})';
    } else {
      literal = false; // interpolated model: the value may come from the environment or .env
    }
    const ev = valueOf(e.raw, ctx);
    if (!literal || /^(true|false)$/i.test(ev.value.trim()) || isSecretFilePath(ev.value)) {
      // not a literal secret (a reference, a switch, or the path of a mounted secret file)
      out.push(...urlPasswordFindings(service, e.name, e.raw, e.pos, ctx));
      continue;
    }
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
  out.push(...commandUrlFindings(service, svc, ctx));
  out.push(...serviceAddressFindings(service, svc));

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

const ADDRESS_FIX = 'remove it: services reach each other by service name (or a network alias); sandstack drops fixed subnets and addresses when it renders the model, so each instance gets a free subnet from Docker';

/** SS018: networks.<n>.ipv4_address / ipv6_address of a service. */
function serviceAddressFindings(service: string, svc: ValueView): RawFinding[] {
  const out: RawFinding[] = [];
  const nets = svc.get('networks')?.value;
  if (!nets || nets.kind !== 'map') return out;
  for (const n of nets.entries()) {
    if (n.value.kind !== 'map') continue;
    for (const key of ['ipv4_address', 'ipv6_address']) {
      const e = n.value.get(key);
      const addr = scalarText(e?.value);
      if (!e || addr === undefined || addr.trim() === '') continue;
      out.push({
        ruleId: 'SS018',
        service,
        subject: `networks.${n.key}.${key}`,
        message: `service ${service} has the fixed address ${addr.trim()} on network ${n.key} (${key}): a second instance cannot use it; sandstack drops it on render`,
        fix: ADDRESS_FIX,
        pos: e.keyPos,
      });
    }
  }
  return out;
}

/** SS018: networks.<n>.ipam.config[].subnet / ip_range / gateway / aux_addresses. */
function networkAddressFindings(root: ValueView): RawFinding[] {
  const out: RawFinding[] = [];
  for (const n of root.get('networks')?.value.entries() ?? []) {
    if (n.value.kind !== 'map') continue;
    const ext = n.value.get('external')?.value;
    if (ext && (ext.kind === 'map' || isTrue(scalarText(ext)))) continue; // not created by Compose
    const config = n.value.get('ipam')?.value.get('config')?.value;
    config?.items().forEach((item, i) => {
      for (const key of ['subnet', 'ip_range', 'gateway', 'aux_addresses']) {
        const e = item.get(key);
        if (!e) continue;
        const v = e.value.kind === 'scalar' ? scalarText(e.value) : e.value.entries().map((x) => `${x.key}=${scalarText(x.value) ?? ''}`).join(', ');
        if (v === undefined || v.trim() === '') continue;
        out.push({
          ruleId: 'SS018',
          subject: `networks.${n.key}.ipam.config[${i}].${key}`,
          message: `network ${n.key} has the fixed ${key === 'ip_range' ? 'IP range' : key === 'aux_addresses' ? 'auxiliary addresses' : key} ${v.trim()} (ipam.config): a second instance cannot create its network (the pool overlaps); sandstack drops it on render`,
          fix: ADDRESS_FIX,
          pos: e.keyPos,
        });
      }
    });
  }
  return out;
}

/** SS009: external volumes and networks; SS018: fixed subnets; host folders bound by volume driver options. */
export function checkTopLevel(root: ValueView, ctx?: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  if (ctx) out.push(...boundVolumeFindings(root, ctx));
  out.push(...networkAddressFindings(root));
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
  out.push(...checkTopLevel(root, ctx));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The .env file beside the compose file (SS017)
// ---------------------------------------------------------------------------------------------

export interface DotEnvEntry {
  name: string;
  value: string;
  /** How the value was quoted: single quotes are taken literally, the others interpolated. */
  quote: '' | '"' | "'";
  pos: Pos;
}

/** Parses .env the way Compose reads it (KEY=value, export, quotes, # comments), with positions. */
export function parseDotEnv(text: string): DotEnvEntry[] {
  const out: DotEnvEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const pos = { line: i + 1, column: m[1]!.length + 1 };
    let rest = m[3]!;
    const q = rest[0];
    if (q === '"' || q === "'") {
      // A quoted value may span lines; it ends at the next unescaped matching quote.
      let value = '';
      let body = rest.slice(1);
      for (;;) {
        let end = -1;
        for (let k = 0; k < body.length; k++) {
          if (q === '"' && body[k] === '\\') {
            k++;
            continue;
          }
          if (body[k] === q) {
            end = k;
            break;
          }
        }
        if (end >= 0) {
          value += body.slice(0, end);
          break;
        }
        value += `${body}\n`;
        if (i + 1 >= lines.length) break;
        body = lines[++i]!;
      }
      out.push({ name: m[2]!, value, quote: q, pos });
      continue;
    }
    const hash = rest.search(/\s#/);
    if (hash >= 0) rest = rest.slice(0, hash);
    out.push({ name: m[2]!, value: rest.trim(), quote: '', pos });
  }
  return out;
}

/** SS017: secret-looking variables with literal values (and well-known key formats) in .env. */
export function checkDotEnv(text: string): RawFinding[] {
  const out: RawFinding[] = [];
  for (const e of parseDotEnv(text)) {
    if (e.value.trim() === '') continue;
    const fix = `declare ${e.name} under secrets: in sandstack.yaml (generated per instance, \${${e.name}} in compose files), or keep .env git-ignored; rotate the value if .env was ever committed`;
    const kind = secretKindOf(e.value);
    if (kind) {
      out.push({ ruleId: 'SS017', subject: e.name, message: `.env: the value of ${e.name} contains ${kind}`, fix, pos: e.pos });
      continue;
    }
    if (!isSecretName(e.name)) continue;
    const literal = e.quote === "'" ? true : hasLiteral(parseInterpolation(e.value));
    if (!literal) continue;
    const value = e.quote === "'" ? e.value : evaluate(e.value).value;
    if (/^(true|false)$/i.test(value.trim()) || isSecretFilePath(value)) continue;
    out.push({
      ruleId: 'SS017',
      subject: e.name,
      message: `.env sets the secret-looking variable ${e.name} to a literal value: every instance of the stack shares it, and it leaks with the file`,
      fix,
      pos: e.pos,
    });
  }
  return out;
}
