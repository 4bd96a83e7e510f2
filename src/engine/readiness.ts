/**
 * Readiness: decides from container states whether an instance's services are ready, still
 * starting, or failed, and waits for that with Docker events (so a crash is noticed within a second
 * or two, not at the deadline). The decision is a pure function, unit-tested without Docker.
 */
import type Docker from 'dockerode';
import { SandstackError } from '../errors.js';
import { containerLogTail, instanceContainers, watchInstanceEvents, type ContainerView } from './docker.js';

export interface ServiceFailure {
  service: string;
  container: string;
  reason: 'exited' | 'unhealthy' | 'restarting' | 'oom-killed' | 'dead' | 'missing';
  exitCode?: number;
  message: string;
}

export interface ReadinessVerdict {
  ready: string[];
  waiting: { service: string; state: string }[];
  failure?: ServiceFailure;
}

/**
 * @param expected services that must be ready
 * @param since containers that stopped before this moment are left over from an earlier run and
 *   are not counted as failures of this one
 * @param upFinished whether `compose up` has returned (a missing container is a failure only then)
 */
export function evaluateReadiness(expected: string[], containers: ContainerView[], opts: { since: number; upFinished: boolean }): ReadinessVerdict {
  const verdict: ReadinessVerdict = { ready: [], waiting: [] };
  for (const service of expected) {
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
      if (c.health === 'unhealthy') {
        verdict.failure ??= { service, container: c.name, reason: 'unhealthy', message: `service ${service} is unhealthy (its healthcheck keeps failing)` };
      } else if (c.health === 'starting') {
        verdict.waiting.push({ service, state: 'health: starting' });
      } else {
        verdict.ready.push(service);
      }
    } else if (c.state === 'restarting') {
      verdict.failure ??= { service, container: c.name, reason: 'restarting', exitCode: c.exitCode, message: `service ${service} is crash-looping (restarting, last exit code ${c.exitCode})` };
    } else if ((c.state === 'exited' || c.state === 'dead') && stoppedThisRun) {
      if (c.oomKilled) {
        verdict.failure ??= { service, container: c.name, reason: 'oom-killed', exitCode: c.exitCode, message: `service ${service} was killed for running out of memory (exit code ${c.exitCode})` };
      } else if (c.exitCode === 0 && c.state === 'exited') {
        verdict.ready.push(service); // a one-shot service that finished its job
      } else {
        verdict.failure ??= { service, container: c.name, reason: c.state === 'dead' ? 'dead' : 'exited', exitCode: c.exitCode, message: `service ${service} exited with code ${c.exitCode}` };
      }
    } else {
      verdict.waiting.push({ service, state: c.state });
    }
  }
  return verdict;
}

export interface WaitOptions {
  docker: Docker;
  instanceId: string;
  expected: string[];
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
}

export async function diagnose(docker: Docker, instanceId: string, failure: ServiceFailure): Promise<FailureDiagnosis> {
  const containers = await instanceContainers(docker, instanceId).catch(() => []);
  const c = containers.find((x) => x.name === failure.container) ?? containers.find((x) => x.service === failure.service);
  return {
    ...failure,
    logTail: c ? await containerLogTail(docker, c.id, 50) : [],
    healthLog: c?.healthLog.slice(-5) ?? [],
  };
}

/**
 * Waits until every expected service is ready; throws SANDSTACK_SERVICE_FAILED as soon as one fails,
 * SANDSTACK_TIMEOUT at the deadline (naming what it waited for), SANDSTACK_INTERRUPTED on abort.
 */
export async function waitForReadiness(opts: WaitOptions): Promise<ReadinessVerdict> {
  const { docker, instanceId } = opts;
  let lastKey = '';
  // An event sets `pending` (so one that arrives while we inspect is not lost) and ends a sleep.
  let pending = false;
  let wakeSleeper: (() => void) | undefined;
  const wake = () => {
    pending = true;
    wakeSleeper?.();
  };
  const stop = await watchInstanceEvents(docker, instanceId, wake);
  const deadline = Date.now() + opts.deadlineMs;
  opts.upDone?.then(
    () => wake(),
    () => wake(),
  );
  try {
    for (;;) {
      if (opts.signal?.aborted) throw new SandstackError('SANDSTACK_INTERRUPTED', 'Interrupted while waiting for services.');
      const containers = await instanceContainers(docker, instanceId);
      const verdict = evaluateReadiness(opts.expected, containers, { since: opts.since, upFinished: opts.upFinished() });
      const key = JSON.stringify([verdict.ready, verdict.waiting]);
      if (key !== lastKey) {
        lastKey = key;
        opts.onChange?.(verdict);
      }
      if (verdict.failure) {
        const d = await diagnose(docker, instanceId, verdict.failure);
        throw new SandstackError('SANDSTACK_SERVICE_FAILED', d.message, {
          hint: hintFor(d),
          details: { failure: d },
        });
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
      // Sleep until an event arrives, compose up returns, a 1 s tick (health changes emit events
      // too, but a tick keeps us honest), the deadline, or an abort.
      if (!pending) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            opts.signal?.removeEventListener('abort', done);
            wakeSleeper = undefined;
            resolve();
          };
          const t = setTimeout(done, Math.min(1000, remaining));
          opts.signal?.addEventListener('abort', done, { once: true });
          wakeSleeper = done;
        });
      }
      pending = false;
    }
  } finally {
    stop();
  }
}

export function hintFor(d: FailureDiagnosis): string {
  const text = d.logTail.join('\n');
  if (d.reason === 'oom-killed') return `Give ${d.service} more memory (mem_limit) or reduce its usage.`;
  if (/address already in use|port is already allocated/i.test(text)) return `A port ${d.service} needs is taken by another process; free it or change the port.`;
  if (/could not translate host name|connection refused|could not connect|ECONNREFUSED|Name or service not known/i.test(text)) {
    return `${d.service} cannot reach a service it depends on; check host names and depends_on conditions.`;
  }
  if (d.reason === 'unhealthy') return `Look at the healthcheck output below and at \`sandstack logs ${d.service}\`.`;
  return `Look at the log lines below, or run \`sandstack logs ${d.service}\`.`;
}
