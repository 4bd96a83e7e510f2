/**
 * Rendering: turns the resolved Compose model into the isolated model sandstack runs. Pure: it takes
 * the model, the identity and the leases and returns a new model plus a report of every change.
 */
import type { ImageAddress } from './content-hash.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SandstackError } from '../errors.js';
import { instanceEnvironment, instanceLabels, LABELS, type InstanceIdentity } from '../identity/identity.js';
import { encodeLeases, leaseKey, reachPort } from '../ports/leases.js';
import type { Lease } from '../state/registry.js';
import { parsePortEntry, toRecord, usesDefaultNetwork, type ComposeModel, type ComposeService } from './model.js';

export interface RenderInput {
  model: ComposeModel;
  identity: InstanceIdentity;
  leases: Lease[];
  allowExternal: { volumes: string[]; networks: string[] };
  /** Host variables allowed through; pass-through entries (`- NAME` without a value) of others are dropped. */
  allowEnv?: string[];
  /** Services that get no route out: attached only to the instance's internal network. */
  egressNone?: string[];
  /** Shared observability: every container gets the OTLP endpoint; `services` join the telemetry network. */
  telemetry?: {
    otlpEndpoint: string;
    services?: string[];
    obsProject: string;
    /**
     * Whether a trace receiver (Jaeger) of the shared stack runs now. When none does, containers get
     * OTEL_TRACES_EXPORTER=none: exporting to a name nobody answers only costs lookups (10 s each on
     * an internal-only network, where Docker's DNS does not answer, and a slow kill at teardown).
     */
    tracesReceiver: boolean;
  };
  /** The engine's default log driver: identity labels are added to logs only for drivers that keep them. */
  defaultLogDriver?: string;
  /**
   * data.shared of sandstack.yaml, host paths absolute (their existence is checked before rendering):
   * each is bind-mounted into each of its services, read-only unless declared rw.
   */
  sharedData?: SharedDataMount[];
  /**
   * Content addresses of the services that build (src/compose/content-hash.ts): an addressed
   * service's image is `sandstack/<project>-<service>:<hash>`, shared by every instance of the same
   * source and labelled for the state home, not the instance. Without an address, an image is the
   * instance's own.
   */
  images?: Record<string, ImageAddress>;
  /**
   * For an engine that does not see this machine's files (a remote engine): every bind-mounted host
   * path (service volumes, file secrets and configs) is rewritten to where its folder is synced on
   * the engine's host; a path `toEngine` does not map (outside the project, the instance's state
   * and the declared data.shared) is refused.
   */
  engineFiles?: { engine: string; toEngine: (localPath: string) => string | undefined };
}

/** A shared dataset to mount (see src/data/shared.ts DeclaredDataset). */
export interface SharedDataMount {
  name: string;
  host: string;
  services: string[];
  target: string;
  mode: 'ro' | 'rw';
}

/** What rendering did about one shared dataset in one service. */
export interface SharedDataRendered {
  dataset: string;
  service: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** added: rendering mounted it; present: the compose file mounts it as declared; made-read-only: the compose file mounted a ro dataset read-write. */
  action: 'added' | 'present' | 'made-read-only';
}

export interface RenderReport {
  removedContainerNames: { service: string; name: string }[];
  droppedPorts: { service: string; port: string }[];
  published: { service: string; containerPort: number; protocol: string; hostIp: string; hostPort: number }[];
  scopedVolumes: string[];
  scopedNetworks: string[];
  keptExternal: { kind: 'volume' | 'network'; key: string; name: string }[];
  renamedImages: { from: string; to: string }[];
  /** Per built service: its content-addressed image, or why it is built for this instance alone. */
  builtImages: { service: string; image: string; hash?: string; reason?: string }[];
  /** Pass-through environment entries dropped because the host variable is not allowed. */
  droppedEnv: { service: string; name: string }[];
  /** Services on the internal network only (egress: none). */
  egressNone: string[];
  /** Shared observability wiring (absent when observability is not enabled). */
  telemetry?: { network: string; services: string[]; otlpEndpoint: string; tracesExported: boolean; skipped: { service: string; reason: string }[] };
  /** Services whose log entries carry the instance labels (json-file and journald drivers). */
  logIdentity: string[];
  /**
   * Fixed network addresses removed (every instance would claim the same ones, so a second could not
   * create its network): ipam subnets, ranges, gateways, aux addresses, and services' fixed
   * ipv4/ipv6 addresses. An IPv6 subnet of a network with enable_ipv6 is replaced by one derived
   * from the instance (`replacement`), since the engine has no IPv6 pool to pick one from by default.
   */
  neutralised: NeutralisedAddress[];
  /** Shared datasets (data.shared) per service: mounted by rendering, already present, or made read-only. */
  sharedData: SharedDataRendered[];
}

export interface NeutralisedAddress {
  kind: 'subnet' | 'ip_range' | 'gateway' | 'aux_address' | 'ipv4_address' | 'ipv6_address';
  /** The network key in the compose model. */
  network: string;
  service?: string;
  value: string;
  replacement?: string;
}

export interface RenderResult {
  model: ComposeModel;
  report: RenderReport;
}

const LOOPBACK = '127.0.0.1';
/** The instance network with no route out, for services with egress: none. */
export const INTERNAL_NETWORK = 'sandstack_internal';
/** The instance network the shared observability stack joins (see src/observability/). */
export const TELEMETRY_NETWORK = 'sandstack_telemetry';
/**
 * internal: no forwarding out of the network; inhibit_ipv4: the host keeps no address on its
 * bridge, so the host itself (its ports, its other addresses) is out of reach too.
 */
const NO_ROUTE_NETWORK = { internal: true, driver_opts: { 'com.docker.network.bridge.inhibit_ipv4': 'true' } };
/** Log drivers that record the container labels named in the `labels` log option. */
const LABEL_LOG_DRIVERS = ['json-file', 'journald'];

/** A service's networks as a map (`default` when it declares none). */
function networkMap(svc: ComposeService): Record<string, unknown> {
  if (Array.isArray(svc.networks)) return Object.fromEntries(svc.networks.map((n) => [n, null]));
  return { ...(svc.networks ?? { default: null }) };
}

/**
 * Makes the log driver record the instance labels with every log entry (`docker logs --details`
 * shows them), when the driver supports it. Returns whether it did.
 */
function addLogIdentity(svc: ComposeService, defaultDriver: string | undefined): boolean {
  const logging = (svc.logging ?? {}) as { driver?: string; options?: Record<string, string | number | null> };
  const driver = logging.driver ?? defaultDriver;
  if (!driver || !LABEL_LOG_DRIVERS.includes(driver)) return false;
  const existing = String(logging.options?.labels ?? '').split(',').map((l) => l.trim()).filter(Boolean);
  const labels = [...new Set([...existing, LABELS.instance, LABELS.kind])].join(',');
  svc.logging = { ...logging, options: { ...(logging.options ?? {}), labels } };
  return true;
}

type NetworkDef = { enable_ipv6?: unknown; ipam?: { config?: unknown[] | null; [k: string]: unknown } | null; [k: string]: unknown };

/** A unique-local IPv6 /64 of the instance's own (fdXX:XXXX:XXXX:XXXX::/64 from a hash of id and network). */
export function instanceIpv6Subnet(id: string, network: string): string {
  const h = createHash('sha256').update(`${id}\0${network}`).digest('hex');
  return `fd${h.slice(0, 2)}:${h.slice(2, 6)}:${h.slice(6, 10)}:${h.slice(10, 14)}::/64`;
}

/** Drops a network's fixed ipam addresses (see RenderReport.neutralised). */
function neutraliseNetwork(id: string, key: string, def: NetworkDef, out: NeutralisedAddress[]): NetworkDef {
  const configs = def.ipam?.config;
  if (!def.ipam || !Array.isArray(configs) || configs.length === 0) return def;
  let hadIpv6 = false;
  for (const raw of configs) {
    const c = (raw ?? {}) as { subnet?: string; ip_range?: string; gateway?: string; aux_addresses?: Record<string, string> };
    if (c.subnet) {
      const v6 = c.subnet.includes(':');
      hadIpv6 ||= v6;
      out.push({ kind: 'subnet', network: key, value: c.subnet });
    }
    if (c.ip_range) out.push({ kind: 'ip_range', network: key, value: c.ip_range });
    if (c.gateway) out.push({ kind: 'gateway', network: key, value: c.gateway });
    for (const [host, addr] of Object.entries(c.aux_addresses ?? {})) out.push({ kind: 'aux_address', network: key, value: `${host}=${addr}` });
  }
  const ipam: Record<string, unknown> = { ...def.ipam };
  delete ipam.config;
  if (hadIpv6 && def.enable_ipv6 === true) {
    // Without a subnet the engine must pick an IPv6 pool, and by default it has none (engine 26:
    // "could not find an available, non-overlapping IPv6 address pool"): give the instance its own.
    const subnet = instanceIpv6Subnet(id, key);
    ipam.config = [{ subnet }];
    const first = out.find((n) => n.network === key && n.kind === 'subnet' && n.value.includes(':'));
    if (first) first.replacement = subnet;
  }
  const next: NetworkDef = { ...def, ipam };
  if (Object.keys(ipam).length === 0 || (Object.keys(ipam).length === 1 && ipam.driver === 'default')) {
    if (!ipam.config) delete next.ipam;
  }
  return next;
}

/** Drops a service's fixed addresses on its networks, keeping aliases and everything else. */
function neutraliseServiceAddresses(service: string, svc: ComposeService, out: NeutralisedAddress[]): void {
  if (!svc.networks || Array.isArray(svc.networks)) return;
  for (const [network, raw] of Object.entries(svc.networks)) {
    if (!raw || typeof raw !== 'object') continue;
    const att = { ...(raw as Record<string, unknown>) };
    let changed = false;
    for (const kind of ['ipv4_address', 'ipv6_address'] as const) {
      if (typeof att[kind] === 'string' && att[kind]) {
        out.push({ kind, network, service, value: att[kind] as string });
        delete att[kind];
        changed = true;
      }
    }
    if (changed) svc.networks[network] = Object.keys(att).length > 0 ? att : null;
  }
}

function externalName(key: string, def: { external?: unknown; name?: string }): string {
  if (def.external && typeof def.external === 'object' && 'name' in def.external && typeof def.external.name === 'string') return def.external.name;
  return def.name ?? key;
}

/** A container or host path without `.`/`..` segments or a trailing slash. */
function normaliseTarget(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** One entry of a service's `volumes:` as the resolved model gives it (v2: long syntax; v1: short or long). */
function readMount(entry: unknown): { type: string; source?: string; target: string; readOnly: boolean } | undefined {
  if (typeof entry === 'string') {
    const parts = entry.split(':');
    if (parts.length < 2) return { type: 'volume', target: normaliseTarget(parts[0]!), readOnly: false };
    const [source, target, opts] = parts as [string, string, string | undefined];
    return { type: /^[./~]/.test(source) ? 'bind' : 'volume', source, target: normaliseTarget(target), readOnly: (opts ?? '').split(',').includes('ro') };
  }
  if (entry && typeof entry === 'object') {
    const m = entry as { type?: string; source?: string; target?: string; read_only?: boolean };
    if (typeof m.target !== 'string') return undefined;
    return { type: m.type ?? 'volume', ...(m.source ? { source: m.source } : {}), target: normaliseTarget(m.target), readOnly: m.read_only === true };
  }
  return undefined;
}

/** Rewrites bind-mounted host paths to their place on the engine's host (RenderInput.engineFiles). */
function mapHostPaths(model: ComposeModel, files: NonNullable<RenderInput['engineFiles']>): void {
  const map = (p: string, what: string): string => {
    const mapped = path.isAbsolute(p) ? files.toEngine(p) : undefined;
    if (mapped !== undefined) return mapped;
    throw new SandstackError('SANDSTACK_CONFIG_INVALID', `${what} mounts the host path ${p}, which is outside the project; the instance runs on engine "${files.engine}", which only has the project folder, the instance's data root and secrets, and data.shared synced to it.`, {
      hint: 'Move the files into the project, or declare the folder under data.shared in sandstack.yaml (it is then synced to the engine too).',
      details: { path: p, engine: files.engine },
    });
  };
  for (const [name, svc] of Object.entries(model.services) as [string, ComposeService][]) {
    if (!Array.isArray(svc.volumes)) continue;
    svc.volumes = svc.volumes.map((entry) => {
      const m = readMount(entry);
      if (!m || m.type !== 'bind' || m.source === undefined) return entry;
      const to = map(m.source, `Service ${name}`);
      if (typeof entry === 'string') return [to, ...entry.split(':').slice(1)].join(':');
      return { ...(entry as Record<string, unknown>), source: to };
    });
  }
  for (const kind of ['secrets', 'configs'] as const) {
    const top = (model as Record<string, unknown>)[kind] as Record<string, { file?: string }> | undefined;
    for (const [name, def] of Object.entries(top ?? {})) {
      if (def && typeof def.file === 'string') def.file = map(def.file, `${kind === 'secrets' ? 'Secret' : 'Config'} ${name}`);
    }
  }
}

/** The entry made read-only, in the syntax it was written in. */
function readOnlyEntry(entry: unknown): unknown {
  if (typeof entry === 'string') {
    const parts = entry.split(':');
    const opts = (parts[2] ?? '').split(',').filter((o) => o && o !== 'rw' && o !== 'ro');
    return [parts[0], parts[1], ['ro', ...opts].join(',')].join(':');
  }
  return { ...(entry as Record<string, unknown>), read_only: true };
}

/**
 * data.shared: each dataset is bind-mounted into each of its services at its target, read-only
 * unless declared rw. A mount of the same host path at the same target in the compose file is kept
 * (made read-only when the dataset is ro); anything else at that target is a conflict.
 */
function mountSharedData(model: ComposeModel, datasets: SharedDataMount[], out: SharedDataRendered[]): void {
  // Compose file format 2.x (Compose v1 prints its `version`) has no long volume syntax.
  const shortSyntax = typeof model.version === 'string' && /^[12](\.|$)/.test(model.version);
  for (const d of datasets) {
    const source = normaliseTarget(d.host);
    const target = normaliseTarget(d.target);
    const readOnly = d.mode === 'ro';
    for (const service of d.services) {
      const svc = model.services[service] as (ComposeService & { volumes?: unknown[] }) | undefined;
      if (!svc) {
        throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `data.shared in sandstack.yaml gives the dataset ${d.name} to service "${service}", which the compose project does not define.`, {
          hint: `Known services: ${Object.keys(model.services).join(', ')}.`,
          details: { dataset: d.name, service },
        });
      }
      const volumes = Array.isArray(svc.volumes) ? [...svc.volumes] : [];
      const at = volumes.findIndex((v) => readMount(v)?.target === target);
      if (at < 0) {
        volumes.push(shortSyntax ? `${source}:${target}${readOnly ? ':ro' : ''}` : { type: 'bind', source, target, ...(readOnly ? { read_only: true } : {}) });
        svc.volumes = volumes;
        out.push({ dataset: d.name, service, source, target, readOnly, action: 'added' });
        continue;
      }
      const existing = readMount(volumes[at])!;
      if (existing.type !== 'bind' || existing.source === undefined || normaliseTarget(existing.source) !== source) {
        const what = existing.type === 'bind' ? `the host path ${existing.source}` : existing.source ? `the ${existing.type} ${existing.source}` : `a ${existing.type}`;
        throw new SandstackError('SANDSTACK_CONFIG_INVALID', `Service ${service} mounts ${what} at ${target}, where data.shared puts the dataset ${d.name} (${source}).`, {
          hint: `Give the dataset another target in sandstack.yaml, or remove that mount from the compose file (sandstack mounts ${d.name} itself).`,
          details: { dataset: d.name, service, target, existing },
        });
      }
      if (readOnly && !existing.readOnly) {
        volumes[at] = readOnlyEntry(volumes[at]);
        svc.volumes = volumes;
        out.push({ dataset: d.name, service, source, target, readOnly: true, action: 'made-read-only' });
      } else {
        out.push({ dataset: d.name, service, source, target, readOnly: existing.readOnly, action: 'present' });
      }
    }
  }
}

export function renderIsolated(input: RenderInput): RenderResult {
  const { identity, leases } = input;
  const id = identity.id;
  const labels = instanceLabels(identity, encodeLeases(leases));
  // Volumes, networks and images get the labels that never change for an instance; containers also
  // carry the current leases (so the registry can be rebuilt from them).
  const buildLabels = instanceLabels(identity);
  // Built images carry only the instance and state-home labels (gc removes only its own home's
  // images): the classic builder adds one image layer per build label, and each is one more image
  // for destroy to remove.
  const imageLabels: Record<string, string> = { [LABELS.instance]: identity.id, ...(identity.home ? { [LABELS.home]: identity.home } : {}) };
  const model = structuredClone(input.model);
  const report: RenderReport = {
    removedContainerNames: [],
    droppedPorts: [],
    published: [],
    scopedVolumes: [],
    scopedNetworks: [],
    keptExternal: [],
    renamedImages: [],
    builtImages: [],
    droppedEnv: [],
    egressNone: [],
    logIdentity: [],
    neutralised: [],
    sharedData: [],
  };
  const egressNone = new Set(input.egressNone ?? []);
  for (const name of egressNone) {
    if (!model.services[name]) {
      throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `services.${name}.egress in sandstack.yaml names a service the compose project does not define.`, {
        hint: `Known services: ${Object.keys(model.services).join(', ')}.`,
      });
    }
    if (leases.some((l) => l.service === name)) {
      throw new SandstackError('SANDSTACK_CONFIG_INVALID', `Service ${name} has egress: none and a published port; a service on an internal network cannot publish ports.`, {
        hint: `Remove ${name} from ports.publish, or give it egress: default.`,
      });
    }
  }

  for (const lease of leases) {
    if (!model.services[lease.service]) {
      throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `ports.publish names service "${lease.service}", which the compose project does not define.`, {
        hint: `Known services: ${Object.keys(model.services).join(', ')}.`,
      });
    }
  }

  mountSharedData(model, input.sharedData ?? [], report.sharedData);
  if (input.engineFiles) mapHostPaths(model, input.engineFiles);

  // A built image gets its content address (shared by every instance of the same source), else a
  // name of the instance's own: a fixed `image:` name would be overwritten by every instance's build.
  const imageRenames = new Map<string, string>();
  const builtImage = new Map<string, string>();
  for (const [name, svc] of Object.entries(model.services)) {
    if (svc.build === undefined) continue;
    const address = input.images?.[name];
    // Unaddressed and unnamed: Compose's own name for it (<project>-<service>) is the instance's already.
    const image = address && 'tag' in address ? address.tag : svc.image ? (imageRenames.get(svc.image) ?? `${id}-${name}:sandstack`) : undefined;
    if (image) builtImage.set(name, image);
    if (image && svc.image && !imageRenames.has(svc.image)) imageRenames.set(svc.image, image);
    report.builtImages.push({ service: name, image: image ?? `${id}-${name}`, ...(address && 'hash' in address ? { hash: address.hash } : address ? { reason: address.reason } : {}) });
  }
  for (const [from, to] of imageRenames) report.renamedImages.push({ from, to });

  let anyDefault = false;
  delete model.name;
  for (const [name, svc] of Object.entries(model.services) as [string, ComposeService][]) {
    if (svc.container_name !== undefined) {
      report.removedContainerNames.push({ service: name, name: svc.container_name });
      delete svc.container_name;
    }

    const ports: string[] = [];
    const wanted = leases.filter((l) => l.service === name);
    for (const entry of svc.ports ?? []) {
      for (const m of parsePortEntry(entry)) {
        if (!wanted.some((l) => l.containerPort === m.target && l.protocol === m.protocol)) {
          report.droppedPorts.push({ service: name, port: m.raw });
        }
      }
    }
    for (const l of wanted) {
      ports.push(`${LOOPBACK}:${l.hostPort}:${l.containerPort}/${l.protocol}`);
      report.published.push({ service: name, containerPort: l.containerPort, protocol: l.protocol, hostIp: LOOPBACK, hostPort: l.hostPort });
    }
    if (ports.length > 0) svc.ports = ports;
    else delete svc.ports;

    svc.labels = { ...toRecord(svc.labels), ...labels } as Record<string, string>;
    const env = toRecord(svc.environment);
    for (const [k, v] of Object.entries(env)) {
      // `- NAME` without a value copies the host's variable into the container: only when allowed.
      if (v === null && !(input.allowEnv ?? []).includes(k)) {
        delete env[k];
        report.droppedEnv.push({ service: name, name: k });
      }
    }
    svc.environment = { ...env, ...instanceEnvironment(identity, env.OTEL_RESOURCE_ATTRIBUTES ?? undefined) };
    if (input.telemetry) {
      svc.environment.OTEL_EXPORTER_OTLP_ENDPOINT = input.telemetry.otlpEndpoint;
      svc.environment.OTEL_SERVICE_NAME ??= name;
      if (!input.telemetry.tracesReceiver) svc.environment.OTEL_TRACES_EXPORTER = 'none';
    }
    if (addLogIdentity(svc, input.defaultLogDriver)) report.logIdentity.push(name);

    if (svc.build !== undefined) {
      const build = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
      const address = input.images?.[name];
      // A content-addressed image belongs to the state home (destroy removes it with its last user).
      const labels = address && 'hash' in address ? { ...(identity.home ? { [LABELS.home]: identity.home } : {}), [LABELS.content]: address.hash } : imageLabels;
      build.labels = { ...toRecord(build.labels), ...labels } as Record<string, string>;
      svc.build = build;
      if (builtImage.has(name)) svc.image = builtImage.get(name);
    } else if (svc.image && imageRenames.has(svc.image)) svc.image = imageRenames.get(svc.image);
    neutraliseServiceAddresses(name, svc, report.neutralised);
    if (usesDefaultNetwork(svc)) anyDefault = true;
  }

  // egress: none — the service joins only `internal` (no gateway: no host, no outside); every
  // service on the default network joins it too, so the service still reaches its peers.
  if (egressNone.size > 0) {
    for (const [name, svc] of Object.entries(model.services) as [string, ComposeService][]) {
      if (egressNone.has(name)) {
        delete svc.network_mode;
        svc.networks = { [INTERNAL_NETWORK]: null };
        report.egressNone.push(name);
      } else if (usesDefaultNetwork(svc)) {
        svc.networks = { ...networkMap(svc), [INTERNAL_NETWORK]: null };
      }
    }
  }

  // Shared observability: the telemetry network is internal (it adds no route out, so egress: none
  // holds) and only the shared stack's containers join it besides the instance's own: instances never
  // share a network with each other, so `backend` of one can never resolve to another's.
  let telemetryNetwork = false;
  if (input.telemetry) {
    const wanted = input.telemetry.services ?? Object.keys(model.services);
    const joined: string[] = [];
    const skipped: { service: string; reason: string }[] = [];
    for (const name of wanted) {
      const svc = model.services[name];
      if (!svc) {
        throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `observability.services in sandstack.yaml names "${name}", which the compose project does not define.`, {
          hint: `Known services: ${Object.keys(model.services).join(', ')}.`,
        });
      }
      if (svc.network_mode) {
        skipped.push({ service: name, reason: `network_mode ${svc.network_mode}` });
        continue;
      }
      svc.networks = { ...networkMap(svc), [TELEMETRY_NETWORK]: null };
      joined.push(name);
    }
    telemetryNetwork = joined.length > 0;
    report.telemetry = { network: `${id}_${TELEMETRY_NETWORK}`, services: joined, otlpEndpoint: input.telemetry.otlpEndpoint, tracesExported: input.telemetry.tracesReceiver, skipped };
  }

  const scope = (kind: 'volume' | 'network', defs: Record<string, unknown> | undefined, allowed: string[]) => {
    const out: Record<string, unknown> = {};
    for (const [key, rawDef] of Object.entries(defs ?? {})) {
      const def = (rawDef ?? {}) as { external?: unknown; name?: string; labels?: Record<string, string> | string[] };
      if (def.external) {
        const ext = externalName(key, def);
        if (!allowed.includes(ext)) {
          throw new SandstackError('SANDSTACK_EXTERNAL_NOT_ALLOWED', `The compose project uses the external ${kind} "${ext}", which is shared across instances and is not allowed.`, {
            hint: `If sharing it is intended, add "${ext}" under external.${kind}s in sandstack.yaml; otherwise drop external: true so each instance gets its own.`,
            details: { kind, key, name: ext },
          });
        }
        out[key] = def;
        report.keptExternal.push({ kind, key, name: ext });
        continue;
      }
      out[key] = { ...def, name: `${id}_${key}`, labels: { ...toRecord(def.labels as never), ...buildLabels } };
      (kind === 'volume' ? report.scopedVolumes : report.scopedNetworks).push(`${id}_${key}`);
    }
    return out;
  };
  model.volumes = scope('volume', model.volumes ?? undefined, input.allowExternal.volumes) as ComposeModel['volumes'];
  const networks = { ...(model.networks ?? {}) } as Record<string, unknown>;
  for (const [key, def] of Object.entries(networks)) {
    if (def && typeof def === 'object' && !(def as { external?: unknown }).external) networks[key] = neutraliseNetwork(id, key, def as NetworkDef, report.neutralised);
  }
  if (anyDefault && !('default' in networks)) networks.default = {};
  if (egressNone.size > 0) networks[INTERNAL_NETWORK] = { ...NO_ROUTE_NETWORK };
  if (telemetryNetwork) networks[TELEMETRY_NETWORK] = { ...NO_ROUTE_NETWORK, labels: { [LABELS.role]: 'telemetry', [LABELS.obs]: input.telemetry!.obsProject } };
  model.networks = scope('network', networks, input.allowExternal.networks) as ComposeModel['networks'];
  if (Object.keys(model.volumes ?? {}).length === 0) delete model.volumes;
  if (Object.keys(model.networks ?? {}).length === 0) delete model.networks;
  return { model, report };
}

/** Environment variables that describe the instance to compose-file interpolation. */
export function interpolationEnv(identity: InstanceIdentity, leases: Lease[], dataRoot: string): Record<string, string> {
  const env: Record<string, string> = {
    SANDSTACK_INSTANCE_ID: identity.id,
    SANDSTACK_ENVIRONMENT: identity.kind,
    SANDSTACK_DATA_ROOT: dataRoot,
  };
  for (const l of leases) {
    const key = `SANDSTACK_PORT_${l.service}_${l.containerPort}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    // Where the port answers on this machine (a remote engine's ports are forwarded to local ones).
    env[key] = String(reachPort(l));
  }
  return env;
}

export { leaseKey };
