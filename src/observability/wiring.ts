/**
 * Per-instance wiring to the shared observability stack.
 *
 * An instance with `observability.enabled` gets its own telemetry network (rendered, internal, see
 * render.ts). The shared Prometheus and Jaeger join that network (Jaeger under the OTLP alias), so
 * the instance's containers reach the OTLP endpoint and Prometheus reaches their metrics endpoints,
 * while no two instances ever share a network. Scrape targets are written as Prometheus file_sd files
 * (`<home>/obs/targets/<id>.json`, labels instance_id, environment, service) when the instance starts
 * and removed when it stops or is destroyed.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { RenderInput } from '../compose/render.js';
import type { SandstackConfig } from '../config/schema.js';
import { detachShared, instanceContainers } from '../engine/docker.js';
import type { StageContext } from '../gate/report.js';
import type { InstanceIdentity } from '../identity/identity.js';
import type { Context } from '../lifecycle/context.js';
import { fileSdTargets, instanceLinks, OTLP_ENDPOINT, type FileSdGroup } from './assets.js';
import { attachHubs, obsHubContainers, obsOf, obsStatus, readSettings, syncObsFiles, tracesExported, type ObsStatus } from './stack.js';

type ObservabilityConfig = SandstackConfig['observability'];

/** The render input for an instance's telemetry wiring (undefined when observability is off). */
export function telemetryInput(config: ObservabilityConfig, obsProject: string, tracesReceiver: boolean): RenderInput['telemetry'] {
  if (!config.enabled) return undefined;
  // Metrics services always join: Prometheus has to reach them.
  const services = config.services ? [...new Set([...config.services, ...config.metrics.map((m) => m.service)])] : undefined;
  return { otlpEndpoint: OTLP_ENDPOINT, services, obsProject, tracesReceiver };
}

/** The render input for an instance, asking its engine whether the shared trace receiver runs there. */
export async function telemetryFor(ctx: Context, config: ObservabilityConfig): Promise<RenderInput['telemetry']> {
  if (!config.enabled) return undefined;
  const { project } = obsOf(ctx);
  const hubs = await obsHubContainers(ctx.engine.docker, project).catch(() => []);
  return telemetryInput(config, project, hubs.some((h) => h.name === 'jaeger'));
}

/** The instance's scrape targets file, in the targets folder of its engine's stack. */
export function targetsFile(ctx: Pick<Context, 'home' | 'env' | 'engine'>, id: string): string {
  return path.join(obsOf(ctx).paths.targetsDir, `${id}.json`);
}

/**
 * A remote engine's Prometheus reads the targets from the engine's host: the folder is copied there
 * while that engine's stack is up (its forwards are recorded from `obs up --engine`, which copies all
 * targets itself, to `obs down`).
 */
async function syncTargets(ctx: Context): Promise<void> {
  if (!ctx.engine.remote) return;
  const { paths } = obsOf(ctx);
  if (!(await readSettings(paths))?.forwards?.length) return;
  await syncObsFiles(ctx.engine, paths, 'targets', ctx.signal);
}

/** Writes the instance's file_sd targets from its running containers; returns the groups written. */
export async function publishTargets(ctx: Context, identity: InstanceIdentity, config: ObservabilityConfig): Promise<FileSdGroup[]> {
  const containers = (await instanceContainers(ctx.engine.docker, identity.id)).filter((c) => c.state === 'running');
  const endpoints = config.metrics.flatMap((m) =>
    containers.filter((c) => c.service === m.service).map((c) => ({ service: m.service, host: c.name, port: m.port, path: m.path })),
  );
  const groups = fileSdTargets({ id: identity.id, kind: identity.kind }, endpoints);
  const file = targetsFile(ctx, identity.id);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  // Read by Prometheus's unprivileged user; holds container names, ports and the instance id only.
  await writeFileAtomic(file, `${JSON.stringify(groups, null, 2)}\n`, { mode: 0o644 });
  await syncTargets(ctx);
  return groups;
}

/** Removes the instance's scrape targets (Prometheus drops them within its file_sd refresh). */
export async function removeTargets(ctx: Context, id: string): Promise<void> {
  const file = targetsFile(ctx, id);
  if (!existsSync(file)) return;
  await rm(file, { force: true });
  await syncTargets(ctx);
}

/**
 * observability (a gate stage): writes the scrape targets and joins the shared stack to the instance.
 * A shared stack that is not running (or lacks a component) is a warning, never a failure: the
 * targets are in place and the stack joins the instance when it starts.
 */
export async function observabilityStage(ctx: Context, s: StageContext, identity: InstanceIdentity, config: ObservabilityConfig): Promise<void> {
  const groups = await publishTargets(ctx, identity, config);
  const { project } = obsOf(ctx);
  const attached = await attachHubs(ctx.engine.docker, project, identity.id);
  const joined = attached.instances.length ? attached.hubs : [];
  s.details.targets = groups.map((g) => ({ service: g.labels.service, target: g.targets[0], path: g.labels.__metrics_path__ }));
  s.details.sharedStack = project;
  s.details.joined = joined;
  const missingMetrics = config.metrics.filter((m) => !groups.some((g) => g.labels.service === m.service)).map((m) => m.service);
  if (missingMetrics.length) s.warn(`no running container for metrics service(s) ${missingMetrics.join(', ')}`);
  if (joined.length === 0) {
    const obsUp = ctx.engine.remote ? `sandstack obs up --engine ${ctx.engine.name}` : 'sandstack obs up';
    s.warn(`the shared observability stack (${project}${ctx.engine.remote ? ` on engine ${ctx.engine.name}` : ''}) is not running: this instance's metrics and traces are not collected yet. Start it with \`${obsUp}\`; it picks this instance up by itself.`);
  } else if (!joined.includes('jaeger')) {
    s.warn('traces are not collected: the shared Jaeger is not running (`sandstack obs status` says why)');
  }
  const exporting = await tracesExported(ctx.engine.docker, identity.id);
  if (joined.includes('jaeger') && !exporting) {
    s.warn('traces are not exported: Jaeger was not running when this instance started (OTEL_TRACES_EXPORTER=none); `sandstack down && sandstack up` turns them on');
  }
  s.details.summary = `${groups.length} scrape target(s); shared stack: ${joined.length ? joined.join(', ') : 'not running'}`;
}

/**
 * Before an instance's containers and networks go: its scrape targets are removed and the shared
 * stack's containers leave its networks (Compose cannot remove a network that still has them).
 */
export async function leaveSharedStack(ctx: Context, id: string): Promise<void> {
  await removeTargets(ctx, id);
  await detachShared(ctx.engine.docker, id);
}

export interface InstanceObservability {
  enabled: boolean;
  /** State of the shared stack (undefined when observability is off). */
  stack?: ObsStatus['state'];
  sharedStack?: string;
  targets: { service: string; target: string }[];
  /** Links already filtered to this instance (present once the stack has been started). */
  links?: { dashboard: string; traces: string; metrics: string };
  /** Components the links point to that are not running. */
  notRunning: string[];
}

/** The instance's view of the shared stack for `status`. */
export async function instanceObservability(ctx: Context, identity: InstanceIdentity, config: SandstackConfig): Promise<InstanceObservability> {
  const obs = config.observability;
  if (!obs.enabled) return { enabled: false, targets: [], notRunning: [] };
  const st = await obsStatus(ctx);
  let targets: InstanceObservability['targets'] = [];
  try {
    const groups = JSON.parse(await readFile(targetsFile(ctx, identity.id), 'utf8')) as FileSdGroup[];
    targets = groups.map((g) => ({ service: g.labels.service, target: g.targets[0] ?? '' }));
  } catch {
    // not published (instance not running)
  }
  const traceService = obs.traceService ?? obs.metrics[0]?.service ?? config.ports.publish[0]?.service ?? obs.services?.[0] ?? '';
  const links = st.ports
    ? instanceLinks({
        grafanaUrl: `http://127.0.0.1:${st.ports.grafana}`,
        jaegerUrl: `http://127.0.0.1:${st.ports.jaeger}`,
        prometheusUrl: `http://127.0.0.1:${st.ports.prometheus}`,
        instanceId: identity.id,
        kind: identity.kind,
        traceService,
      })
    : undefined;
  return {
    enabled: true,
    stack: st.state,
    sharedStack: st.project,
    targets,
    links,
    notRunning: st.components.filter((c) => c.state !== 'running').map((c) => `${c.name} (${c.state}${c.reason ? `: ${c.reason}` : ''})`),
  };
}
