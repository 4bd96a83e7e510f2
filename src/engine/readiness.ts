/**
 * Readiness: decides from container states whether an instance's services are ready, still
 * starting, or failed, and waits for that on the gate's event watch (so a crash is noticed within a
 * second, not at the deadline). A long-running service is ready only once it has stayed running
 * for its stability window; a one-shot once it exited 0. The decision is a pure function,
 * unit-tested without Docker.
 */
import type Docker from 'dockerode';
import { SandstackError } from '../errors.js';
import { containerLogTail, inspectContainer, instanceContainers, type ContainerView } from './docker.js';
import type { StackWatch } from './watch.js';

export interface ServiceFailure {
  service: string;
  container: string;
  reason: 'exited' | 'unhealthy' | 'restarting' | 'restarted' | 'oom-killed' | 'dead' | 'missing';
  exitCode?: number;
  message: string;
}

/** How the gate judges one service. */
export interface ServicePolicy {
  /** How long it must stay running (since its start, without a restart) to count as ready. */
  stableMs: number;
  /** true: a one-shot job (ready when it exits 0, waited for while it runs); false: never a one-shot. */
  job?: boolean;
  /** Why the service must stay up (a dependent needs it, a published port, ...): its exit 0 is a failure. */
  mustStayUp?: string;
  /** Its restart policy, for messages. */
  restart?: string;
}
export type ServicePolicies = Record<string, ServicePolicy>;

export interface ReadinessVerdict {
  ready: string[];
  waiting: { service: string; state: string }[];
  failure?: ServiceFailure;
  /** When the verdict can change without an event (a stability window ends), in ms from `now`. */
  recheckInMs?: number;
}

export interface EvaluateOptions {
  /**
   * Containers that stopped before this moment are left over from an earlier run and are not
   * counted as failures of this one (0: judge the instance as it is, e.g. `gate` on a running one).
   */
  since: number;
  /** Whether `compose up` has returned (a missing container is a failure only then). */
  upFinished: boolean;
  /** The clock (ms since the epoch); default Date.now(). */
  now?: number;
  /** Per-service rules; a service without one is ready as soon as it runs (or is healthy). */
  policies?: ServicePolicies;
}

/**
 * @param expected services that must be ready
 */
export function evaluateReadiness(expected: string[], containers: ContainerView[], opts: EvaluateOptions): ReadinessVerdict {
  const verdict: ReadinessVerdict = { ready: [], waiting: [] };
  const now = opts.now ?? Date.now();
  const recheck = (ms: number) => {
    verdict.recheckInMs = Math.min(verdict.recheckInMs ?? Infinity, Math.max(0, ms));
  };
  for (const service of expected) {
    const policy = opts.policies?.[service];
    const c = containers.filter((x) => x.service === service).sort((a, b) => Date.parse(b.startedAt ?? '') - Date.parse(a.startedAt ?? ''))[0];
    if (!c) {
      if (opts.upFinished) {
        verdict.failure ??= { service, container: '', reason: 'missing', message: `service ${service} has no container after compose up` };
      }
      verdict.waiting.push({ service, state: 'not created' });
      continue;
    }
    const finished = Date.parse(c.finishedAt ?? '');
    const stoppedThisRun = Number.isFinite(finished) && finished >= opts.since;
    if (c.state === 'running') {
      const started = Date.parse(c.startedAt ?? '');
      const stableFor = Number.isFinite(started) ? now - started : Infinity;
      if (c.health === 'unhealthy') {
        verdict.failure ??= { service, container: c.name, reason: 'unhealthy', message: `service ${service} is unhealthy (its healthcheck keeps failing)` };
      } else if (opts.since > 0 && c.restartCount > 0 && Number.isFinite(started) && started >= opts.since) {
        // Started by this run and already restarted: a crash loop that looks "running" between restarts.
        verdict.failure ??= {
          service,
          container: c.name,
          reason: 'restarted',
          exitCode: c.exitCode,
          message: `service ${service} restarted ${c.restartCount} time${c.restartCount > 1 ? 's' : ''} since this run started it (last exit code ${c.exitCode}): a crash loop`,
        };
      } else if (c.health === 'starting') {
        verdict.waiting.push({ service, state: 'health: starting' });
      } else if (policy?.job === true) {
        verdict.waiting.push({ service, state: 'running (a job: waiting for it to exit 0)' });
      } else if (policy && stableFor < policy.stableMs) {
        verdict.waiting.push({ service, state: `running for ${(stableFor / 1000).toFixed(1)} s of the ${policy.stableMs / 1000} s stability window` });
        recheck(policy.stableMs - stableFor);
      } else {
        verdict.ready.push(service);
      }
    } else if (c.state === 'restarting') {
      verdict.failure ??= { service, container: c.name, reason: 'exited', exitCode: c.exitCode, message: `service ${service} exited with code ${c.exitCode} and is crash-looping (its restart policy keeps restarting it)` };
    } else if ((c.state === 'exited' || c.state === 'dead') && stoppedThisRun) {
      const mustStayUp = policy?.job !== true ? policy?.mustStayUp : undefined;
      if (c.oomKilled) {
        verdict.failure ??= { service, container: c.name, reason: 'oom-killed', exitCode: c.exitCode, message: `service ${service} was killed for running out of memory (exit code ${c.exitCode})` };
      } else if (c.exitCode === 0 && c.state === 'exited' && !mustStayUp) {
        verdict.ready.push(service); // a one-shot service that finished its job
      } else {
        const why = c.exitCode === 0 && mustStayUp ? `, but it must stay up (${mustStayUp}); if it is a one-shot job, mark it with gate.services.${service}.job: true` : '';
        verdict.failure ??= { service, container: c.name, reason: c.state === 'dead' ? 'dead' : 'exited', exitCode: c.exitCode, message: `service ${service} exited with code ${c.exitCode}${why}` };
      }
    } else {
      verdict.waiting.push({ service, state: c.state });
    }
  }
  return verdict;
}

export interface WaitOptions {
  docker: Docker;
  /** The gate's event watch on the instance: its events wake the wait, its failures end it. */
  watch: StackWatch;
  expected: string[];
  policies: ServicePolicies;
  since: number;
  deadlineMs: number;
  signal?: AbortSignal;
  /** Reports whether compose up has finished; before that, only failures end the wait. */
  upFinished: () => boolean;
  onChange?: (verdict: ReadinessVerdict) => void;
  /** A promise that settles when compose up ends; re-evaluates then. */
  upDone?: Promise<unknown>;
}

export interface FailureDiagnosis extends ServiceFailure {
  logTail: string[];
  healthLog: { exitCode: number; output: string }[];
  /** The engine's OOMKilled flag of the container. */
  oomKilled?: boolean;
}

/**
 * The failed container's last log lines and healthcheck results (and the engine's OOMKilled flag).
 * With `containerId` only that container is looked at (not the whole instance).
 */
export async function diagnose(docker: Docker, instanceId: string, failure: ServiceFailure, containerId?: string): Promise<FailureDiagnosis> {
  let c: ContainerView | undefined;
  if (containerId) c = await inspectContainer(docker, containerId).catch(() => undefined);
  if (!c) {
    const containers = await instanceContainers(docker, instanceId).catch(() => []);
    c = containers.find((x) => x.name === failure.container) ?? containers.find((x) => x.service === failure.service);
  }
  return {
    ...failure,
    exitCode: failure.exitCode ?? (c && c.state !== 'running' ? c.exitCode : undefined),
    oomKilled: c?.oomKilled,
    logTail: c ? await containerLogTail(docker, c.id, 50, c.tty) : [],
    healthLog: c?.healthLog.slice(-5) ?? [],
  };
}

/**
 * Waits until every expected service is ready; throws the watch's SANDSTACK_SERVICE_FAILED as soon
 * as one fails, SANDSTACK_TIMEOUT at the deadline (naming what it waited for), SANDSTACK_INTERRUPTED
 * on abort. Each service's container is marked ready on the watch (for its RestartCount).
 */
export async function waitForReadiness(opts: WaitOptions): Promise<ReadinessVerdict> {
  const { docker, watch } = opts;
  let lastKey = '';
  // An event sets `pending` (so one that arrives while we inspect is not lost) and ends a sleep.
  let pending = false;
  let wakeSleeper: (() => void) | undefined;
  const wake = () => {
    pending = true;
    wakeSleeper?.();
  };
  const unsubscribe = watch.onWake(wake);
  const deadline = Date.now() + opts.deadlineMs;
  opts.upDone?.then(
    () => wake(),
    () => wake(),
  );
  try {
    for (;;) {
      if (watch.failure) throw watch.failure;
      if (opts.signal?.aborted) throw new SandstackError('SANDSTACK_INTERRUPTED', 'Interrupted while waiting for services.');
      const containers = await instanceContainers(docker, watch.instanceId);
      const verdict = evaluateReadiness(opts.expected, containers, { since: opts.since, upFinished: opts.upFinished(), policies: opts.policies });
      for (const service of verdict.ready) {
        const c = containers.filter((x) => x.service === service && x.state === 'running');
        for (const x of c) watch.markReady(x);
      }
      if (verdict.failure) {
        const failed = containers.find((c) => c.name === verdict.failure!.container);
        const finished = Date.parse(failed?.finishedAt ?? '');
        watch.fail(verdict.failure, Number.isFinite(finished) && finished > 0 ? finished : undefined, failed?.id);
        return await watch.failed;
      }
      const key = JSON.stringify([verdict.ready, verdict.waiting.map((w) => w.service)]);
      if (key !== lastKey) {
        lastKey = key;
        opts.onChange?.(verdict);
      }
      if (verdict.waiting.length === 0 && opts.upFinished()) return verdict;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const waiting = verdict.waiting.map((w) => `${w.service} (${w.state})`).join(', ');
        throw new SandstackError('SANDSTACK_TIMEOUT', `Services not ready after ${Math.round(opts.deadlineMs / 1000)} s; still waiting for: ${waiting || 'compose up to finish'}.`, {
          hint: 'Check `sandstack logs <service>`; raise gate.timeoutSeconds in sandstack.yaml if the stack is just slow.',
          details: { waiting: verdict.waiting, ready: verdict.ready },
        });
      }
      // Sleep until an event arrives, compose up returns, a stability window ends, a 1 s tick
      // (health changes emit events too, but a tick keeps us honest), the deadline, or an abort.
      if (!pending) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            opts.signal?.removeEventListener('abort', done);
            wakeSleeper = undefined;
            resolve();
          };
          const t = setTimeout(done, Math.min(1000, remaining, (verdict.recheckInMs ?? Infinity) + 20));
          opts.signal?.addEventListener('abort', done, { once: true });
          wakeSleeper = done;
        });
      }
      pending = false;
    }
  } finally {
    unsubscribe();
  }
}

export function hintFor(d: FailureDiagnosis): string {
  const text = d.logTail.join('\n');
  if (d.reason === 'oom-killed') return `Give ${d.service} more memory (mem_limit) or reduce its usage.`;
  if (/address already in use|port is already allocated/i.test(text)) return `A port ${d.service} needs is taken by another process; free it or change the port.`;
  if (/could not translate host name|connection refused|could not connect|ECONNREFUSED|Name or service not known/i.test(text)) {
    return `${d.service} cannot reach a service it depends on; check host names and depends_on conditions.`;
  }
  if (d.reason === 'restarted' || d.reason === 'restarting') return `${d.service} crashed and its restart policy restarted it; look at the log lines below, or run \`sandstack logs ${d.service}\`.`;
  if (d.reason === 'unhealthy') return `Look at the healthcheck output below and at \`sandstack logs ${d.service}\`.`;
  return `Look at the log lines below, or run \`sandstack logs ${d.service}\`.`;
}
