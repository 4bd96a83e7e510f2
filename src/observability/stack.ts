/**
 * The shared observability stack (`sandstack obs up|down|status`): Prometheus, Grafana and Jaeger as
 * one Compose project of their own, shared by every instance of a state home.
 *
 * - Prometheus is built locally from Debian's package; Grafana and Jaeger are pinned upstream images.
 *   An image that is neither present nor pullable is reported as missing and the rest starts.
 * - Every port is published on 127.0.0.1 only. Grafana has no anonymous access; its admin password
 *   is generated once and stored owner-only (shown on request), and reaches Compose through its
 *   process environment only.
 * - Its volumes (Prometheus and Grafana data) survive `obs down` unless `--volumes` is given.
 * - It joins each instance's telemetry network (see wiring.ts): instances never share a network.
 * - Each engine has its own stack (`obs up --engine <name>`): instances join the stack of the engine
 *   they run on. A remote engine's stack mounts copies of its files synced to the engine's host,
 *   publishes on the host's 127.0.0.1 at ports Docker picks, and is reached here through forwards to
 *   the local ports kept in its obs.json; images it lacks are copied from this machine's engine.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import type Docker from 'dockerode';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { stringifyModel } from '../compose/yaml.js';
import writeFileAtomic from 'write-file-atomic';
import { composeErrorText, detectCompose, runCompose, type ComposeProject } from '../compose/cli.js';
import { TELEMETRY_NETWORK } from '../compose/render.js';
import { assertDockerAvailable, copyImage, createDocker, imagePresent, type DockerClient } from '../engine/docker.js';
import type { Engine, PortForward } from '../engine/engine.js';
import { SandstackError } from '../errors.js';
import { COMPOSE_SERVICE_LABEL, LABELS } from '../identity/identity.js';
import type { Context } from '../lifecycle/context.js';
import { findPortHolder, isPortFree } from '../ports/probe.js';
import { ensureSecrets, loadSecrets } from '../secrets/secrets.js';
import { composeCacheFile, sandstackHome } from '../state/paths.js';
import {
  grafanaDashboardProvider,
  grafanaDatasources,
  instanceDashboard,
  OBS_IMAGES,
  OBS_VERSIONS,
  OTLP_ALIAS,
  OTLP_HTTP_PORT,
  prometheusConfig,
  prometheusDockerfile,
} from './assets.js';

export const OBS_COMPONENTS = ['prometheus', 'grafana', 'jaeger'] as const;
export type ObsComponent = (typeof OBS_COMPONENTS)[number];

/** Host ports of the stack (all on 127.0.0.1), kept in `<home>/obs/obs.json` so links stay stable. */
export interface ObsPorts {
  prometheus: number;
  grafana: number;
  jaeger: number;
  otlp: number;
}
export const DEFAULT_OBS_PORTS: ObsPorts = { prometheus: 9090, grafana: 3000, jaeger: 16686, otlp: OTLP_HTTP_PORT };

const GRAFANA_PASSWORD = 'GRAFANA_ADMIN_PASSWORD';
const GRAFANA_USER = 'admin';

export interface ObsPaths {
  dir: string;
  compose: string;
  settings: string;
  prometheusDir: string;
  targetsDir: string;
  buildDir: string;
  grafanaProvisioning: string;
  grafanaDashboards: string;
}

/** The stack's files here: `<home>/obs` for the local engine, `<home>/obs/engines/<name>` for another. */
export function obsPaths(home: string, engine = 'local'): ObsPaths {
  const dir = engine === 'local' ? path.join(home, 'obs') : path.join(home, 'obs', 'engines', engine.replace(/[^A-Za-z0-9._-]/g, '_'));
  return {
    dir,
    compose: path.join(dir, 'compose.yaml'),
    settings: path.join(dir, 'obs.json'),
    prometheusDir: path.join(dir, 'prometheus'),
    targetsDir: path.join(dir, 'targets'),
    buildDir: path.join(dir, 'build', 'prometheus'),
    grafanaProvisioning: path.join(dir, 'grafana', 'provisioning'),
    grafanaDashboards: path.join(dir, 'grafana', 'dashboards'),
  };
}

/**
 * The stack's Compose project name: `sandstack-obs` for the default state home; another home (a
 * test sandbox, a second user setup) gets its own stack, `sandstack-obs-<hash of the home>`.
 */
export function obsProjectName(home: string, env: NodeJS.ProcessEnv = process.env, engine?: Pick<Engine, 'remote'>): string {
  // A remote engine may serve several machines and state homes: the name says which one.
  if (engine?.remote) return `sandstack-obs-${createHash('sha256').update(`${os.hostname()}\0${path.resolve(home)}`).digest('hex').slice(0, 8)}`;
  const defaultHome = sandstackHome({ ...env, SANDSTACK_HOME: undefined });
  if (path.resolve(home) === path.resolve(defaultHome)) return 'sandstack-obs';
  return `sandstack-obs-${createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 8)}`;
}

/** The shared stack of the context's engine: its Compose project name and its files on this machine. */
export function obsOf(ctx: Pick<Context, 'home' | 'env' | 'engine'>): { project: string; paths: ObsPaths } {
  return { project: obsProjectName(ctx.home, ctx.env, ctx.engine), paths: obsPaths(ctx.home, ctx.engine.name) };
}

/**
 * Where a remote engine's stack finds its mounted folders on the engine's host (the same layout
 * under the engine's files root); this machine's paths for the local engine.
 */
export function mountedPaths(engine: Engine, p: ObsPaths): ObsPaths {
  const root = engine.filesRoot(p.dir);
  if (!root) return p;
  const map = (local: string) => path.posix.join(root, path.relative(p.dir, local).split(path.sep).join('/'));
  return { ...p, prometheusDir: map(p.prometheusDir), targetsDir: map(p.targetsDir), grafanaProvisioning: map(p.grafanaProvisioning), grafanaDashboards: map(p.grafanaDashboards) };
}

/** Copies the folders a remote engine's stack mounts to the engine's host (nothing on the local engine). */
export async function syncObsFiles(engine: Engine, p: ObsPaths, which: 'all' | 'targets' = 'all', signal?: AbortSignal): Promise<void> {
  if (!engine.remote) return;
  const remote = mountedPaths(engine, p);
  const keys = which === 'targets' ? (['targetsDir'] as const) : (['prometheusDir', 'targetsDir', 'grafanaProvisioning', 'grafanaDashboards'] as const);
  await engine.sync(
    keys.map((k) => ({ local: p[k], remote: remote[k], mode: 'mirror' as const })),
    signal,
  );
}

/** Labels on every resource of the stack (never the instance label: instance sweeps never touch it). */
export function obsLabels(project: string): Record<string, string> {
  return { [LABELS.managed]: 'true', [LABELS.obs]: project };
}

interface ObsSettings {
  ports: ObsPorts;
  /** A remote engine's stack: the forwards open from the local ports to the ports Docker published there. */
  forwards?: PortForward[];
}

export async function readSettings(p: ObsPaths): Promise<ObsSettings | undefined> {
  try {
    const parsed = JSON.parse(await readFile(p.settings, 'utf8')) as Partial<ObsSettings>;
    return { ports: { ...DEFAULT_OBS_PORTS, ...(parsed.ports ?? {}) }, ...(parsed.forwards ? { forwards: parsed.forwards } : {}) };
  } catch {
    return undefined;
  }
}

/** A port the OS says is free on 127.0.0.1. */
function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The stack's host ports: the stored ones (or the usual defaults on first use). A port that is taken
 * by something other than the stack itself is replaced by a free one, with a notice naming the holder.
 */
async function choosePorts(stored: ObsPorts | undefined, running: Set<ObsComponent>, notices: string[], remote: boolean): Promise<ObsPorts> {
  // A remote engine's stack is reached through forwards: on first use it takes free local ports
  // rather than the usual ones (which the local stack is likely to hold), without a notice.
  const anyPort = !stored && remote;
  const ports = { ...(stored ?? DEFAULT_OBS_PORTS) };
  const owner: Record<keyof ObsPorts, ObsComponent> = { prometheus: 'prometheus', grafana: 'grafana', jaeger: 'jaeger', otlp: 'jaeger' };
  const used = new Set<number>();
  for (const key of Object.keys(ports) as (keyof ObsPorts)[]) {
    const port = ports[key];
    if (!anyPort && running.has(owner[key]) && !used.has(port)) {
      used.add(port);
      continue;
    }
    if (!anyPort && !used.has(port) && (await isPortFree(port))) {
      used.add(port);
      continue;
    }
    let next = await ephemeralPort();
    while (used.has(next)) next = await ephemeralPort();
    ports[key] = next;
    used.add(next);
    if (anyPort) continue;
    const holder = await findPortHolder(port);
    notices.push(`port ${port} for ${key} is in use${holder ? ` by pid ${holder.pid} (${holder.command})` : ''}; using 127.0.0.1:${next} instead (kept in obs.json)`);
  }
  return ports;
}

/** The stack's Compose model (pure). Only the services in `services` are started; all are declared. */
export function obsComposeModel(opts: { project: string; paths: ObsPaths; ports: ObsPorts; remote?: boolean }): Record<string, unknown> {
  const { paths } = opts;
  // On a remote engine Docker picks the host ports (no collision with what else runs there); the
  // stored local ports are then reached through forwards.
  const ports: Record<keyof ObsPorts, number | ''> = opts.remote ? { prometheus: '', grafana: '', jaeger: '', otlp: '' } : opts.ports;
  const labels = obsLabels(opts.project);
  const hardening = { security_opt: ['no-new-privileges:true'], cap_drop: ['ALL'] };
  return {
    services: {
      prometheus: {
        build: { context: paths.buildDir, labels },
        image: OBS_IMAGES.prometheus,
        labels,
        ports: [`127.0.0.1:${ports.prometheus}:9090`],
        volumes: [`${paths.prometheusDir}:/etc/sandstack:ro`, `${paths.targetsDir}:/etc/sandstack-targets:ro`, 'prometheus-data:/prometheus'],
        restart: 'unless-stopped',
        ...hardening,
        healthcheck: {
          // The image has bash but no curl: ask /-/ready over /dev/tcp.
          test: ['CMD', 'bash', '-c', "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /-/ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"],
          interval: '2s',
          timeout: '3s',
          retries: 30,
          start_period: '60s',
        },
      },
      grafana: {
        image: OBS_IMAGES.grafana,
        labels,
        ports: [`127.0.0.1:${ports.grafana}:3000`],
        environment: {
          GF_SECURITY_ADMIN_USER: GRAFANA_USER,
          // Interpolated by Compose from its process environment: the value is never in this file.
          GF_SECURITY_ADMIN_PASSWORD: `\${${GRAFANA_PASSWORD}}`,
          GF_AUTH_ANONYMOUS_ENABLED: 'false',
          GF_USERS_ALLOW_SIGN_UP: 'false',
          GF_ANALYTICS_REPORTING_ENABLED: 'false',
          GF_ANALYTICS_CHECK_FOR_UPDATES: 'false',
          GF_PLUGINS_PLUGIN_ADMIN_ENABLED: 'false',
          GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: '/etc/sandstack/dashboards/sandstack-instance.json',
        },
        volumes: [`${paths.grafanaProvisioning}:/etc/grafana/provisioning:ro`, `${paths.grafanaDashboards}:/etc/sandstack/dashboards:ro`, 'grafana-data:/var/lib/grafana'],
        restart: 'unless-stopped',
        security_opt: ['no-new-privileges:true'],
      },
      jaeger: {
        image: OBS_IMAGES.jaeger,
        labels,
        ports: [`127.0.0.1:${ports.jaeger}:16686`, `127.0.0.1:${ports.otlp}:${OTLP_HTTP_PORT}`],
        // In-memory trace storage, bounded: traces do not survive `obs down`.
        environment: { COLLECTOR_OTLP_ENABLED: 'true', SPAN_STORAGE_TYPE: 'memory', MEMORY_MAX_TRACES: '50000' },
        restart: 'unless-stopped',
        ...hardening,
      },
    },
    volumes: {
      'prometheus-data': { labels },
      'grafana-data': { labels },
    },
    networks: { default: { labels } },
  };
}

/** Writes every file the stack mounts or builds from (idempotent). Only the targets dir is left as is. */
async function writeAssets(p: ObsPaths, model: Record<string, unknown>): Promise<void> {
  for (const d of [p.dir, p.prometheusDir, p.targetsDir, p.buildDir, path.join(p.grafanaProvisioning, 'datasources'), path.join(p.grafanaProvisioning, 'dashboards'), p.grafanaDashboards]) {
    // Readable by the containers' unprivileged users; nothing secret is in these folders.
    await mkdir(d, { recursive: true, mode: 0o755 });
  }
  const write = (file: string, text: string) => writeFileAtomic(file, text, { mode: 0o644 });
  await write(path.join(p.buildDir, 'Dockerfile'), prometheusDockerfile());
  await write(path.join(p.prometheusDir, 'prometheus.yml'), prometheusConfig({ targetsDir: '/etc/sandstack-targets' }));
  await write(path.join(p.grafanaProvisioning, 'datasources', 'sandstack.yaml'), grafanaDatasources({ prometheusUrl: 'http://prometheus:9090', jaegerUrl: 'http://jaeger:16686' }));
  await write(path.join(p.grafanaProvisioning, 'dashboards', 'sandstack.yaml'), grafanaDashboardProvider('/etc/sandstack/dashboards'));
  await write(path.join(p.grafanaDashboards, 'sandstack-instance.json'), `${JSON.stringify(instanceDashboard(), null, 2)}\n`);
  await writeFileAtomic(p.compose, `# Generated by sandstack (obs up); edit obs.json for ports.\n${stringifyModel(model)}`, { mode: 0o644 });
}

/** How messages name the engine: "this machine", or "engine <name>". */
function engineWhere(engine: Engine): string {
  return engine.remote ? `engine ${engine.name}` : 'this machine';
}

async function obsProject(ctx: Context, project: string, p: ObsPaths, password?: string): Promise<ComposeProject> {
  const cli = await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) });
  return { cli, projectName: project, projectDir: p.dir, files: [p.compose], profiles: [], env: { [GRAFANA_PASSWORD]: password ?? '' }, allowEnv: [], engineEnv: ctx.engine.composeEnv };
}

export interface ObsComponentStatus {
  name: ObsComponent;
  image: string;
  /** running, starting, exited, missing (image not available), stopped (not created). */
  state: string;
  health?: string;
  url?: string;
  /** Why a component is missing or not running. */
  reason?: string;
}

export interface ObsHub {
  container: string;
  name: ObsComponent;
}

type StackContainer = Docker.ContainerInfo & { component: ObsComponent };

/** The stack's containers (running only, unless `all`), each with the component it runs. */
async function stackContainers(docker: DockerClient, project: string, opts: { all?: boolean } = {}): Promise<StackContainer[]> {
  const list = await docker.listContainers({ all: opts.all ?? false, filters: { label: [`${LABELS.obs}=${project}`] } });
  return list.map((c) => ({ ...c, component: c.Labels?.[COMPOSE_SERVICE_LABEL] as ObsComponent }));
}

/** The stack's running containers that join instance telemetry networks (Prometheus, Jaeger). */
export async function obsHubContainers(docker: DockerClient, project: string): Promise<ObsHub[]> {
  return (await stackContainers(docker, project))
    .map((c) => ({ container: c.Id, name: c.component }))
    .filter((h) => h.name === 'prometheus' || h.name === 'jaeger');
}

/** Network aliases a hub container gets on an instance's telemetry network. */
export function hubAliases(name: ObsComponent): string[] {
  return name === 'jaeger' ? [OTLP_ALIAS] : [];
}

/** Connects a hub container to a network (no-op if connected). */
export async function connectHub(docker: DockerClient, networkId: string, hub: ObsHub): Promise<void> {
  await docker
    .getNetwork(networkId)
    .connect({ Container: hub.container, EndpointConfig: { Aliases: hubAliases(hub.name) } })
    .catch((e: { statusCode?: number; message: string }) => {
      // 403: already connected.
      if (e.statusCode !== 403 && !/already exists/i.test(e.message)) throw e;
    });
}

/** False when the instance's containers were started with OTEL_TRACES_EXPORTER=none (no receiver then). */
export async function tracesExported(docker: DockerClient, id: string): Promise<boolean> {
  const [c] = await docker.listContainers({ filters: { label: [`${LABELS.instance}=${id}`], status: ['running'] } });
  if (!c) return false;
  const env = (await docker.getContainer(c.Id).inspect().catch(() => undefined))?.Config?.Env ?? [];
  return !env.includes('OTEL_TRACES_EXPORTER=none');
}

/**
 * Connects the running hub containers to the instance telemetry networks of this home (of one
 * instance when `instanceId` is given). Returns the hubs and the instances whose networks they joined.
 */
export async function attachHubs(docker: DockerClient, project: string, instanceId?: string): Promise<{ hubs: ObsComponent[]; instances: string[] }> {
  const hubs = await obsHubContainers(docker, project);
  if (hubs.length === 0) return { hubs: [], instances: [] };
  const label = [`${LABELS.role}=telemetry`, `${LABELS.obs}=${project}`, ...(instanceId ? [`${LABELS.instance}=${instanceId}`] : [])];
  const networks = await docker.listNetworks({ filters: { label } });
  for (const n of networks) for (const hub of hubs) await connectHub(docker, n.Id, hub);
  return { hubs: hubs.map((h) => h.name).sort(), instances: networks.map((n) => n.Labels?.[LABELS.instance] ?? n.Name).sort() };
}

/** Pulls an image; resolves with the error text on failure (no registry, unknown tag). */
async function tryPull(docker: DockerClient, ref: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const stream = await docker.pull(ref, { abortSignal: signal });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
    return undefined;
  } catch (e) {
    return ((e as Error).message ?? String(e)).split('\n')[0];
  }
}

async function componentStatuses(docker: DockerClient, project: string, ports: ObsPorts | undefined, where: string): Promise<ObsComponentStatus[]> {
  const list = await stackContainers(docker, project, { all: true });
  const out: ObsComponentStatus[] = [];
  for (const name of OBS_COMPONENTS) {
    const c = list.find((x) => x.component === name);
    const url = ports ? `http://127.0.0.1:${ports[name]}` : undefined;
    if (!c) {
      const present = await imagePresent(docker, OBS_IMAGES[name]);
      out.push({ name, image: OBS_IMAGES[name], state: present || name === 'prometheus' ? 'stopped' : 'missing', url, reason: present || name === 'prometheus' ? undefined : `image ${OBS_IMAGES[name]} is not on ${where}` });
      continue;
    }
    const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status ?? '')?.[1]?.replace('health: ', '');
    out.push({ name, image: OBS_IMAGES[name], state: c.State, health, url });
  }
  return out;
}

export interface ObsStatus {
  project: string;
  /** The engine the stack runs on (`local`, or a remote engine's name; see `sandstack engines`). */
  engine: string;
  /** running: every available component runs; partial: some do; stopped: none. */
  state: 'running' | 'partial' | 'stopped';
  components: ObsComponentStatus[];
  ports?: ObsPorts;
  grafana: { user: string; passwordFile?: string; password?: string };
  /** Instances whose scrape targets are published (files in the targets dir). */
  targets: string[];
  /** Instance telemetry networks the stack has joined. */
  attached: string[];
  /** The stack's own volumes (kept across `obs down`). */
  volumes: string[];
  paths: { dir: string; compose: string; targets: string };
  versions: typeof OBS_VERSIONS;
}

async function targetInstances(p: ObsPaths): Promise<string[]> {
  try {
    return (await readdir(p.targetsDir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
  } catch {
    return [];
  }
}

async function attachedInstances(docker: DockerClient, project: string): Promise<string[]> {
  const hubs = await obsHubContainers(docker, project);
  const networks = await docker.listNetworks({ filters: { label: [`${LABELS.role}=telemetry`, `${LABELS.obs}=${project}`] } });
  const out: string[] = [];
  for (const n of networks) {
    const info = (await docker.getNetwork(n.Id).inspect().catch(() => undefined)) as { Containers?: Record<string, unknown> } | undefined;
    if (hubs.some((h) => info?.Containers && h.container in info.Containers)) out.push(n.Labels?.[LABELS.instance] ?? n.Name);
  }
  return out.sort();
}

function overallState(components: ObsComponentStatus[]): ObsStatus['state'] {
  const running = components.filter((c) => c.state === 'running').length;
  const available = components.filter((c) => c.state !== 'missing').length;
  if (running === 0) return 'stopped';
  return running === available ? 'running' : 'partial';
}

/** State of the shared stack; `showPassword` adds Grafana's admin password to the result. */
export async function obsStatus(ctx: Context, opts: { showPassword?: boolean } = {}): Promise<ObsStatus> {
  await assertDockerAvailable(ctx.engine.docker);
  const { project, paths: p } = obsOf(ctx);
  const settings = await readSettings(p);
  const components = await componentStatuses(ctx.engine.docker, project, settings?.ports, engineWhere(ctx.engine));
  const secret = (await loadSecrets(p.dir)).find((s) => s.name === GRAFANA_PASSWORD);
  return {
    project,
    engine: ctx.engine.name,
    state: overallState(components),
    components,
    ports: settings?.ports,
    grafana: {
      user: GRAFANA_USER,
      passwordFile: secret ? path.join(p.dir, 'secrets', GRAFANA_PASSWORD) : undefined,
      password: opts.showPassword ? secret?.value : undefined,
    },
    targets: await targetInstances(p),
    attached: await attachedInstances(ctx.engine.docker, project),
    volumes: ((await ctx.engine.docker.listVolumes({ filters: { label: [`${LABELS.obs}=${project}`] } })).Volumes ?? []).map((v) => v.Name).sort(),
    paths: { dir: p.dir, compose: p.compose, targets: p.targetsDir },
    versions: OBS_VERSIONS,
  };
}

export interface ObsUpResult extends ObsStatus {
  started: ObsComponent[];
  missing: { name: ObsComponent; image: string; reason: string }[];
  notices: string[];
  timings: { totalMs: number };
}

/** Waits until the started components run (Prometheus: healthy); fails at once if one exits. */
async function waitReady(ctx: Context, project: string, started: ObsComponent[], deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const list = await stackContainers(ctx.engine.docker, project, { all: true });
    const waiting: string[] = [];
    for (const name of started) {
      const c = list.find((x) => x.component === name);
      if (!c) {
        waiting.push(`${name} (not created)`);
        continue;
      }
      if (c.State === 'exited' || c.State === 'dead' || c.State === 'restarting' || /\(unhealthy\)/.test(c.Status ?? '')) {
        const logs = (await ctx.engine.docker.getContainer(c.Id).logs({ stdout: true, stderr: true, tail: 15 }).catch(() => Buffer.from(''))) as unknown as Buffer;
        throw new SandstackError('SANDSTACK_OBS_FAILED', `The shared ${name} container stopped while starting (${c.Status}).\nlast log lines:\n${logs.toString('utf8').replace(/[\x00-\x08]/g, '').trim()}`, {
          hint: `See \`docker logs ${c.Names?.[0]?.replace(/^\//, '') ?? name}\`; \`sandstack obs down\` then \`sandstack obs up\` recreates it.`,
        });
      }
      const needsHealth = name === 'prometheus';
      if (c.State !== 'running' || (needsHealth && !/\(healthy\)/.test(c.Status ?? ''))) waiting.push(`${name} (${c.Status})`);
    }
    if (waiting.length === 0) return;
    if (Date.now() > until) {
      throw new SandstackError('SANDSTACK_TIMEOUT', `The shared stack did not become ready within ${Math.round(deadlineMs / 1000)} s; waiting for ${waiting.join(', ')}.`, {
        hint: 'See `docker logs` of the waiting containers, then `sandstack obs up` again.',
      });
    }
    if (ctx.signal?.aborted) throw new SandstackError('SANDSTACK_INTERRUPTED', 'Interrupted while waiting for the shared stack.');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Starts (or updates) the shared stack: writes its assets, builds Prometheus, pulls what it can, starts
 * the components whose images are available, waits for them, and joins every instance telemetry network.
 */
export async function obsUp(ctx: Context, opts: { build?: boolean; pull?: boolean; timeoutSeconds?: number } = {}): Promise<ObsUpResult> {
  const t0 = Date.now();
  await assertDockerAvailable(ctx.engine.docker);
  const { engine } = ctx;
  const { project, paths: p } = obsOf(ctx);
  const notices: string[] = [];
  const running = new Set((await stackContainers(engine.docker, project)).map((c) => c.component));
  const stored = await readSettings(p);
  const ports = await choosePorts(stored?.ports, running, notices, engine.remote);
  const model = obsComposeModel({ project, paths: mountedPaths(engine, p), ports, remote: engine.remote });
  await writeAssets(p, model);
  await writeFileAtomic(p.settings, `${JSON.stringify({ ...stored, ports }, null, 2)}\n`, { mode: 0o644 });
  const [secret] = await ensureSecrets(p.dir, [{ name: GRAFANA_PASSWORD, length: 32 }], { persist: true });
  if (engine.remote) {
    ctx.onProgress({ type: 'step', message: `copying the stack's configuration and scrape targets to engine ${engine.name}` });
    await syncObsFiles(engine, p, 'all', ctx.signal);
  }

  const missing: ObsUpResult['missing'] = [];
  const started: ObsComponent[] = ['prometheus'];
  for (const name of ['grafana', 'jaeger'] as const) {
    const image = OBS_IMAGES[name];
    const problem = await obtainImage(ctx, image, { pull: opts.pull !== false });
    if (problem === undefined) started.push(name);
    else missing.push({ name, image, reason: problem });
  }

  const composeProject = await obsProject(ctx, project, p, secret!.value);
  const onLine = (line: string) => ctx.onProgress({ type: 'log', source: 'compose', line });
  // A remote engine gets this machine's Prometheus image when there is one (no Debian mirror needed there).
  const hasPrometheusImage = !opts.build && (await obtainImage(ctx, OBS_IMAGES.prometheus, { pull: false })) === undefined;
  if (!hasPrometheusImage) {
    ctx.onProgress({ type: 'step', message: `building ${OBS_IMAGES.prometheus} from Debian's prometheus package${engine.remote ? ` on engine ${engine.name}` : ''}` });
    const b = await runCompose(composeProject, ['build', ...(composeProject.cli.variant === 'v1' ? ['--force-rm'] : []), 'prometheus'], { onLine, signal: ctx.signal });
    if (b.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_BUILD_FAILED', `Building the Prometheus image failed:\n${composeErrorText(b.stderr || b.stdout)}`, {
        hint: 'It installs Debian\'s prometheus package FROM debian:bookworm-slim: check that the base image exists (scripts/setup-system.sh builds it) and that Debian\'s mirror is reachable.',
      });
    }
  }
  ctx.onProgress({ type: 'step', message: `starting ${started.join(', ')} (${project}${engine.remote ? ` on engine ${engine.name}` : ''})` });
  try {
    const r = await runCompose(composeProject, ['up', '-d', '--no-build', '--remove-orphans', ...started], { onLine, signal: ctx.signal });
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_COMPOSE_FAILED', `Starting the shared stack failed:\n${composeErrorText(r.stderr)}`, {
        hint: 'Fix the cause above and run `sandstack obs up` again; `sandstack obs status` shows what runs.',
      });
    }
    await waitReady(ctx, project, started, (opts.timeoutSeconds ?? 120) * 1000);
    if (engine.remote) await forwardStack(ctx, p, project, ports, stored?.forwards ?? []);
    const attached = (await attachHubs(engine.docker, project)).instances;
    if (started.includes('jaeger')) {
      const silent: string[] = [];
      for (const id of attached) if (!(await tracesExported(engine.docker, id))) silent.push(id);
      if (silent.length) notices.push(`started without a trace receiver, so not exporting traces until restarted (\`sandstack down && sandstack up\`): ${silent.join(', ')}`);
    }
  } catch (e) {
    // A stack that was not running before is not left half-started (its volumes are kept).
    if (running.size === 0) {
      ctx.onProgress({ type: 'step', message: 'removing the half-started shared stack' });
      await removeStackContainers(engine.docker, project).catch(() => undefined);
    }
    throw e;
  }
  const status = await obsStatus(ctx);
  return { ...status, started, missing, notices, timings: { totalMs: Date.now() - t0 } };
}

/**
 * Makes an image available on the context's engine: already there; on a remote engine, copied from
 * this machine's engine when it has it; else pulled (unless `pull` is false). Returns why not.
 */
async function obtainImage(ctx: Context, image: string, opts: { pull: boolean }): Promise<string | undefined> {
  const { engine } = ctx;
  if (await imagePresent(engine.docker, image)) return undefined;
  if (engine.remote) {
    const local = createDocker();
    if (await imagePresent(local, image)) {
      ctx.onProgress({ type: 'step', message: `copying ${image} from this machine's engine to engine ${engine.name}` });
      try {
        await copyImage(local, engine.docker, image);
        return undefined;
      } catch (e) {
        if (!opts.pull) return `not on engine ${engine.name}, and copying it from this machine failed (${(e as Error).message})`;
      }
    }
  }
  if (!opts.pull) return `not on ${engineWhere(engine)} (--no-pull)`;
  ctx.onProgress({ type: 'step', message: `pulling ${image}${engine.remote ? ` on engine ${engine.name}` : ''}` });
  const error = await tryPull(engine.docker, image, ctx.signal);
  if (error === undefined) return undefined;
  return `not on ${engineWhere(engine)}${engine.remote ? ' nor on this machine' : ''} and the pull failed (${error.trim()}); load it with \`docker load -i <file>\` (or pull it where a registry is reachable), then run \`sandstack obs up\` again`;
}

/** The container port each local port of the stack leads to. */
const STACK_PORTS: Record<keyof ObsPorts, { component: ObsComponent; containerPort: number }> = {
  prometheus: { component: 'prometheus', containerPort: 9090 },
  grafana: { component: 'grafana', containerPort: 3000 },
  jaeger: { component: 'jaeger', containerPort: 16686 },
  otlp: { component: 'jaeger', containerPort: OTLP_HTTP_PORT },
};

/**
 * A remote engine's stack: forwards each local port to the port Docker published on the engine's
 * host, closes forwards of an earlier start that no longer apply, and records them in obs.json.
 */
async function forwardStack(ctx: Context, p: ObsPaths, project: string, ports: ObsPorts, previous: PortForward[]): Promise<void> {
  const containers = await stackContainers(ctx.engine.docker, project);
  const forwards: PortForward[] = [];
  for (const key of Object.keys(STACK_PORTS) as (keyof ObsPorts)[]) {
    const { component, containerPort } = STACK_PORTS[key];
    const published = containers.find((c) => c.component === component)?.Ports?.find((x) => x.PrivatePort === containerPort && x.IP === '127.0.0.1' && x.PublicPort);
    if (published) forwards.push({ localPort: ports[key], hostPort: published.PublicPort });
  }
  const stale = previous.filter((f) => !forwards.some((n) => n.localPort === f.localPort && n.hostPort === f.hostPort));
  await ctx.engine.unforward(stale).catch(() => undefined);
  ctx.onProgress({ type: 'step', message: `forwarding ${forwards.map((f) => `127.0.0.1:${f.localPort}`).join(', ')} to engine ${ctx.engine.name}` });
  await ctx.engine.forward(forwards);
  await writeFileAtomic(p.settings, `${JSON.stringify({ ports, forwards }, null, 2)}\n`, { mode: 0o644 });
}

export interface ObsDownResult {
  project: string;
  engine: string;
  removed: { containers: string[]; volumes: string[] };
  keptVolumes: string[];
}

/**
 * Stops the stack's containers gracefully (Prometheus flushes its head block), removes them (which
 * also takes them off every instance telemetry network) and its own network. Returns the names.
 */
async function removeStackContainers(docker: DockerClient, project: string): Promise<string[]> {
  const containers = await stackContainers(docker, project, { all: true });
  await Promise.all(
    containers.map(async (c) => {
      const container = docker.getContainer(c.Id);
      await container.stop({ t: 10 }).catch(() => undefined);
      await container.remove({ force: true, v: false }).catch((e: { statusCode?: number }) => {
        if (e.statusCode !== 404) throw e;
      });
    }),
  );
  for (const n of await docker.listNetworks({ filters: { label: [`${LABELS.obs}=${project}`] } })) {
    if (n.Labels?.[LABELS.role] === 'telemetry') continue; // an instance's network
    await docker.getNetwork(n.Id).remove().catch(() => undefined);
  }
  return containers.map((c) => (c.Names?.[0] ?? c.Id).replace(/^\//, ''));
}

/** Stops and removes the stack's containers; its volumes are kept unless `volumes` is set. */
export async function obsDown(ctx: Context, opts: { volumes?: boolean } = {}): Promise<ObsDownResult> {
  await assertDockerAvailable(ctx.engine.docker);
  const { project, paths: p } = obsOf(ctx);
  const filter = { label: [`${LABELS.obs}=${project}`] };
  const containers = await removeStackContainers(ctx.engine.docker, project);
  // A remote engine's stack: its forwards close with it.
  const settings = await readSettings(p);
  if (settings?.forwards?.length) {
    await ctx.engine.unforward(settings.forwards).catch(() => undefined);
    await writeFileAtomic(p.settings, `${JSON.stringify({ ports: settings.ports }, null, 2)}\n`, { mode: 0o644 });
  }
  const volumes = (await ctx.engine.docker.listVolumes({ filters: filter })).Volumes ?? [];
  const removedVolumes: string[] = [];
  if (opts.volumes) {
    for (const v of volumes) {
      await ctx.engine.docker.getVolume(v.Name).remove();
      removedVolumes.push(v.Name);
    }
    await rm(path.join(p.dir, 'secrets'), { recursive: true, force: true });
    // ... and the copies of its files on a remote engine's host.
    const root = ctx.engine.filesRoot(p.dir);
    if (root) await ctx.engine.removeFiles(root);
  }
  return {
    project,
    engine: ctx.engine.name,
    removed: { containers, volumes: removedVolumes },
    keptVolumes: opts.volumes ? [] : volumes.map((v) => v.Name),
  };
}

export { TELEMETRY_NETWORK };
