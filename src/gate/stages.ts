/**
 * The gate's stages, shared by `up`, `gate` and `gate --fresh`: config, build, start, healthy,
 * probes, isolation. Each is a plain function over a prepared instance; the StageRecorder times and
 * records them. Failures throw typed errors carrying a diagnosis.
 */
import path from 'node:path';
import { composeErrorText, runCompose } from '../compose/cli.js';
import { composeFilesOf } from '../compose/resolve.js';
import { instanceContainers } from '../engine/docker.js';
import { diagnose, evaluateReadiness, hintFor, waitForReadiness } from '../engine/readiness.js';
import { SandstackError } from '../errors.js';
import type { Context } from '../lifecycle/context.js';
import { prepareInstance, releaseInstance, type PreparedInstance, type ResolvedInstance } from '../lifecycle/instance.js';
import { findPortHolder, isPortFree } from '../ports/probe.js';
import { interpolationEnv } from '../compose/render.js';
import { checkIsolation } from './isolation.js';
import { runProbes, validateProbes } from './probes.js';
import type { StageContext } from './report.js';
import { findMissingVariables } from './required-env.js';

/** Whole-gate deadline: `Date.now()` value after which every wait fails. */
export interface Deadline {
  at: number;
  seconds: number;
}

export function deadlineFrom(seconds: number): Deadline {
  return { at: Date.now() + seconds * 1000, seconds };
}

function remaining(d: Deadline, what: string): number {
  const ms = d.at - Date.now();
  if (ms <= 0) {
    throw new SandstackError('SANDSTACK_TIMEOUT', `The gate deadline of ${d.seconds} s passed before ${what}.`, {
      hint: 'Raise gate.timeoutSeconds in sandstack.yaml if the stack is just slow.',
    });
  }
  return ms;
}

/**
 * config: sandstack.yaml and the compose model are valid, required variables are set, probes make
 * sense; registers the instance and writes the isolated model when `persist`.
 */
export async function configStage(ctx: Context, s: StageContext, opts: { persist: boolean; inst: ResolvedInstance }): Promise<PreparedInstance> {
  const { inst } = opts;
  const files = await composeFilesOf({ projectDir: inst.projectDir, files: inst.loaded.config.compose.files?.map((f) => path.resolve(inst.projectDir, f)) ?? [] });
  // Variables sandstack itself passes to Compose count as set (port values are not known yet).
  const provided = interpolationEnv(
    inst.identity,
    inst.loaded.config.ports.publish.map((p) => ({ service: p.service, containerPort: p.port, protocol: 'tcp' as const, hostPort: 0, scheme: 'tcp' as const })),
    inst.paths.dataRoot,
  );
  const missing = await findMissingVariables({ projectDir: inst.projectDir, composeFiles: files, required: inst.loaded.config.env.required, env: { ...ctx.env, ...provided } });
  if (missing.length > 0) {
    throw new SandstackError(
      'SANDSTACK_MISSING_ENV',
      `Missing required environment variable${missing.length > 1 ? 's' : ''}: ${missing.map((m) => `${m.name} (required by ${m.requiredBy}${m.message ? `: ${m.message}` : ''})`).join(', ')}.`,
      { hint: `Set ${missing.map((m) => m.name).join(', ')} in the environment or in the project's .env file.`, details: { missing } },
    );
  }
  const prepared = await prepareInstance(ctx, { persist: opts.persist, inst });
  try {
    validateProbes(inst.loaded.config.gate.probes, prepared.record.leases, prepared.services);
  } catch (e) {
    if (opts.persist && prepared.createdRecord) await releaseInstance(ctx, inst.identity.id).catch(() => undefined);
    throw e;
  }
  s.details.instance = inst.identity.id;
  s.details.configFile = inst.loaded.file ?? null;
  s.details.composeFiles = files;
  s.details.compose = `${prepared.project.cli.argv.join(' ')} ${prepared.project.cli.version}`;
  s.details.services = prepared.services;
  s.details.published = prepared.report.published;
  s.details.removedContainerNames = prepared.report.removedContainerNames;
  s.details.droppedPorts = prepared.report.droppedPorts;
  if (prepared.unsetVariables.length) s.warn(`unset variables interpolated as blank: ${prepared.unsetVariables.join(', ')}`);
  s.details.summary = `${prepared.services.length} services, ${prepared.record.leases.length} published port(s)`;
  return prepared;
}

/** Finds the service and step of a failed image build in Compose's output (v1 and v2 wording). */
export function parseBuildFailure(lines: string[]): { service?: string; step?: string; exitCode?: number } {
  const text = lines.join('\n');
  const service = /Service '([^']+)' failed to build/.exec(text)?.[1] ?? /target ([\w.-]+): failed to solve/.exec(text)?.[1] ?? /failed to build ([\w.-]+)/i.exec(text)?.[1];
  // The failing command is named in the error itself (parallel builds interleave their Step lines).
  const steps = lines.filter((l) => /^Step \d+\/\d+ : /.test(l));
  const step =
    /The command '([\s\S]+?)' returned a non-zero code/.exec(text)?.[1] ??
    /process "((?:[^"\\]|\\.)+)" did not complete/.exec(text)?.[1]?.replace(/\\"/g, '"') ??
    (steps.length ? steps[steps.length - 1]!.replace(/^Step \d+\/\d+ : /, '') : undefined);
  const code = /returned a non-zero code: (\d+)|exit code: (\d+)/.exec(text);
  return { service, step, exitCode: code ? Number(code[1] ?? code[2]) : undefined };
}

/** build: builds every image of the instance (Compose's build, in parallel on v1 too). */
export async function buildStage(ctx: Context, s: StageContext, prepared: PreparedInstance, deadline: Deadline): Promise<void> {
  const built = Object.entries(prepared.model.services).filter(([name, svc]) => svc.build !== undefined && prepared.services.includes(name)).map(([n]) => n);
  s.details.services = built;
  if (built.length === 0) {
    s.details.summary = 'nothing to build';
    return;
  }
  const r = await runCompose(prepared.project, ['build', ...(prepared.project.cli.variant === 'v1' ? ['--parallel'] : []), ...built], {
    signal: ctx.signal,
    timeoutMs: remaining(deadline, 'the build'),
    onLine: (line) => ctx.onProgress({ type: 'log', source: 'build', line }),
  });
  if (r.exitCode !== 0) {
    const f = parseBuildFailure(r.tail);
    const tail = r.tail.slice(-30);
    throw new SandstackError('SANDSTACK_BUILD_FAILED', `The image${f.service ? ` of ${f.service}` : 's'} failed to build${f.step ? ` at step: ${f.step}` : ''}${f.exitCode !== undefined ? ` (exit code ${f.exitCode})` : ''}.`, {
      hint: 'Fix that Dockerfile step; the build output is below (sandstack -v shows it live).',
      details: { failure: { service: f.service, exitCode: f.exitCode, logTail: tail, healthLog: [] }, step: f.step },
    });
  }
  s.details.summary = `built ${built.length} image(s)`;
}

/** Refuses to start when a leased host port is taken by a process other than this instance. */
export async function checkLeasedPorts(ctx: Context, prepared: PreparedInstance): Promise<void> {
  const ours = await instanceContainers(ctx.docker, prepared.identity.id);
  const heldByUs = new Set(ours.filter((c) => c.state === 'running').flatMap((c) => c.ports.map((p) => p.hostPort)));
  for (const lease of prepared.record.leases) {
    if (heldByUs.has(lease.hostPort)) continue;
    if (!(await isPortFree(lease.hostPort, lease.protocol))) {
      throw await portInUse(lease.hostPort, `${lease.service}:${lease.containerPort}`);
    }
  }
}

async function portInUse(port: number, leasedTo?: string): Promise<SandstackError> {
  const holder = await findPortHolder(port);
  const who = holder ? `process ${holder.pid} (${holder.command})` : 'another process';
  return new SandstackError('SANDSTACK_PORT_IN_USE', `Host port ${port}${leasedTo ? `, leased to ${leasedTo},` : ''} is in use by ${who}.`, {
    hint: holder ? `Stop process ${holder.pid}, or destroy this instance to give up the lease (a new port is chosen on the next up).` : 'Free the port, or destroy this instance to give up the lease.',
    details: { port, leasedTo, holder },
  });
}

export interface StartHandle {
  /** Resolves when every service is ready; rejects on the first failure. */
  readiness: Promise<unknown>;
  /** Stops compose up and the watcher. */
  abort: () => void;
  /** Settles when compose up has exited. */
  composeDone: Promise<unknown>;
}

/**
 * start: `compose up -d` while Docker events are watched, so that a container that exits or turns
 * unhealthy fails the stage at once. Returns a handle whose `readiness` the healthy stage awaits.
 */
export async function startStage(ctx: Context, s: StageContext, prepared: PreparedInstance, deadline: Deadline): Promise<StartHandle> {
  const id = prepared.identity.id;
  await checkLeasedPorts(ctx, prepared);
  const since = Date.now() - 1000;
  const upAbort = new AbortController();
  const onOuterAbort = () => upAbort.abort();
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let upFinished = false;
  const composeRun = runCompose(prepared.project, ['up', '-d', '--no-build', '--remove-orphans'], {
    signal: upAbort.signal,
    timeoutMs: remaining(deadline, 'the services started'),
    onLine: (line) => ctx.onProgress({ type: 'log', source: 'compose', line }),
  }).finally(() => {
    upFinished = true;
  });
  const composeChecked = composeRun.then(async (r) => {
    if (r.exitCode === 0) return;
    const verdict = evaluateReadiness(prepared.services, await instanceContainers(ctx.docker, id), { since, upFinished: false });
    if (verdict.failure) {
      const d = await diagnose(ctx.docker, id, verdict.failure);
      throw new SandstackError('SANDSTACK_SERVICE_FAILED', d.message, { hint: hintFor(d), details: { failure: d, compose: composeErrorText(r.stderr) } });
    }
    const text = composeErrorText(r.stderr) || r.tail.slice(-25).join('\n');
    const port = /(?:Bind for [\d.:[\]]+:(\d+) failed: port is already allocated)|(?:listen tcp[46]? [\d.:[\]]+:(\d+): bind: address already in use)/.exec(text);
    if (port) throw await portInUse(Number(port[1] ?? port[2]));
    throw new SandstackError('SANDSTACK_COMPOSE_FAILED', `compose up failed for ${id}:\n${text}`, {
      hint: /pull access denied|manifest unknown|not found: manifest|failed to resolve reference/i.test(text)
        ? 'An image is neither built by the project nor present locally, and it cannot be pulled.'
        : 'Read the Compose output above; `sandstack logs` shows service output.',
      details: { compose: text },
    });
  });
  const readiness = waitForReadiness({
    docker: ctx.docker,
    instanceId: id,
    expected: prepared.services,
    since,
    deadlineMs: remaining(deadline, 'the services started'),
    signal: upAbort.signal,
    upFinished: () => upFinished,
    upDone: composeRun,
    onChange: (v) => ctx.onProgress({ type: 'services', ready: v.ready, waiting: v.waiting }),
  }).finally(() => ctx.signal?.removeEventListener('abort', onOuterAbort));
  readiness.catch(() => undefined);
  const handle: StartHandle = { readiness, abort: () => upAbort.abort(), composeDone: composeRun.catch(() => undefined) };
  try {
    // The stage ends when compose up returns; a service failing meanwhile ends it at once.
    await Promise.race([composeChecked, readiness.then(() => composeChecked)]);
  } catch (e) {
    handle.abort();
    await handle.composeDone;
    // A service that started but turned unhealthy (Compose waits on healthchecks of dependencies)
    // is the healthy stage's failure: the start stage did its part.
    const failure = e instanceof SandstackError ? (e.details?.failure as { reason?: string } | undefined) : undefined;
    if (failure?.reason === 'unhealthy') {
      s.details.summary = 'containers started; a service turned unhealthy while Compose waited for it';
      const rejected = Promise.reject(e);
      rejected.catch(() => undefined);
      return { ...handle, readiness: rejected };
    }
    throw e;
  }
  s.details.services = prepared.services;
  s.details.summary = `compose up returned for ${prepared.services.length} services`;
  return handle;
}

/** healthy: every service healthy, or running without a healthcheck, or a one-shot that exited 0. */
export async function healthyStage(ctx: Context, s: StageContext, prepared: PreparedInstance, handle: StartHandle): Promise<void> {
  try {
    await handle.readiness;
  } catch (e) {
    handle.abort();
    throw e;
  }
  const containers = await instanceContainers(ctx.docker, prepared.identity.id);
  s.details.services = containers.map((c) => ({ service: c.service, state: c.state, health: c.health ?? null }));
  s.details.summary = `${prepared.services.length}/${prepared.services.length} ready`;
}

/** healthy, for a running instance (`gate` without --fresh): waits out services still starting. */
export async function healthyCheckStage(ctx: Context, s: StageContext, prepared: PreparedInstance, deadline: Deadline): Promise<void> {
  const containers = await instanceContainers(ctx.docker, prepared.identity.id);
  if (!containers.some((c) => c.state === 'running')) {
    throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${prepared.identity.id} is not running.`, {
      hint: 'Start it with `sandstack up`, or run the whole gate on a throwaway instance with `sandstack gate --fresh`.',
    });
  }
  await waitForReadiness({
    docker: ctx.docker,
    instanceId: prepared.identity.id,
    expected: prepared.services,
    since: 0,
    deadlineMs: remaining(deadline, 'the services were ready'),
    signal: ctx.signal,
    upFinished: () => true,
  });
  s.details.services = (await instanceContainers(ctx.docker, prepared.identity.id)).map((c) => ({ service: c.service, state: c.state, health: c.health ?? null }));
  s.details.summary = `${prepared.services.length}/${prepared.services.length} ready`;
}

/** probes: the checks declared in sandstack.yaml. */
export async function probesStage(ctx: Context, s: StageContext, prepared: PreparedInstance, deadline: Deadline): Promise<void> {
  const probes = prepared.loaded.config.gate.probes;
  if (probes.length === 0) {
    s.warn('no probes declared in sandstack.yaml (gate.probes): only health was checked');
    s.details.probes = [];
    return;
  }
  try {
    const results = await runProbes(probes, {
      docker: ctx.docker,
      instanceId: prepared.identity.id,
      leases: prepared.record.leases,
      projectDir: prepared.projectDir,
      env: { ...ctx.env, ...interpolationEnv(prepared.identity, prepared.record.leases, prepared.paths.dataRoot) },
      deadline: deadline.at,
      signal: ctx.signal,
    });
    s.details.probes = results;
    s.details.summary = `${results.length}/${results.length} probes passed`;
  } catch (e) {
    if (e instanceof SandstackError && e.details?.probes) s.details.probes = e.details.probes;
    throw e;
  }
}

/** isolation: ports on 127.0.0.1 as Docker reports them, no fixed container names, labels present. */
export async function isolationStage(ctx: Context, s: StageContext, prepared: PreparedInstance): Promise<void> {
  const result = checkIsolation(prepared.identity.id, await instanceContainers(ctx.docker, prepared.identity.id));
  s.details.published = result.published;
  s.details.containers = result.containers;
  if (!result.passed) {
    throw new SandstackError('SANDSTACK_ISOLATION_FAILED', `Isolation check failed: ${result.problems.join('; ')}.`, {
      hint: 'Something outside sandstack changed the containers, or the compose model bypasses rendering (network_mode: host?).',
      details: { problems: result.problems },
    });
  }
  s.details.summary = `${result.published.length} published port(s), all on 127.0.0.1; ${result.containers.length} containers, none with a fixed name`;
}
