/**
 * The gate's watch on an instance: one Docker event stream, open from the start stage until the
 * gate's verdict. A container that dies (non-zero, or 0 when its service must stay up), is
 * OOM-killed or turns unhealthy is a failure at the moment its event arrives, whichever stage is
 * running; the first failure wins and `failed` rejects with it (diagnosed: log tail, health log,
 * and `eventAt`, the event's own time, from which the gate report computes `detectedAfterMs`).
 * Readiness waits wake on the same stream; `assertSteady` compares each container's RestartCount
 * at the verdict with its count when it became ready.
 */
import type Docker from 'dockerode';
import { SandstackError } from '../errors.js';
import { COMPOSE_SERVICE_LABEL } from '../identity/identity.js';
import { instanceContainers, watchInstanceEvents, type ContainerView, type InstanceEvent } from './docker.js';
import { diagnose, hintFor, type ServiceFailure, type ServicePolicies } from './readiness.js';

export class StackWatch {
  /** Rejects with the first failure (a SANDSTACK_SERVICE_FAILED error); never resolves. */
  readonly failed: Promise<never>;
  /** The first failure, once diagnosed. */
  failure?: SandstackError;
  /**
   * While `compose up` runs, a container stopped with a signal (a `kill` event before its `die`) is
   * Compose replacing it, not a crash.
   */
  composeRunning = false;
  private rejectFailed!: (e: SandstackError) => void;
  private failing = false;
  private readonly listeners = new Set<() => void>();
  private readonly killed = new Set<string>();
  private readonly readyCounts = new Map<string, { service: string; name: string; restartCount: number }>();
  private stopStream: () => void = () => undefined;

  private constructor(
    private readonly docker: Docker,
    readonly instanceId: string,
    private readonly expected: string[],
    private readonly policies: ServicePolicies,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => undefined);
  }

  /** Subscribes to the instance's events; call before `compose up` so that nothing is missed. */
  static async start(docker: Docker, instanceId: string, expected: string[], policies: ServicePolicies): Promise<StackWatch> {
    const w = new StackWatch(docker, instanceId, expected, policies);
    w.stopStream = await watchInstanceEvents(docker, instanceId, (e) => w.onEvent(e));
    return w;
  }

  /** Called on every state event (and when a failure is known). Returns an unsubscribe function. */
  onWake(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private wake(): void {
    for (const fn of [...this.listeners]) fn();
  }

  private onEvent(e: InstanceEvent): void {
    const action = e.action;
    const service = e.attributes[COMPOSE_SERVICE_LABEL] ?? '';
    const name = e.attributes.name ?? e.id.slice(0, 12);
    const relevant = this.expected.includes(service);
    if (action === 'kill') this.killed.add(e.id);
    else if (action === 'start') this.killed.delete(e.id);
    else if (relevant && action === 'oom') {
      this.fail({ service, container: name, reason: 'oom-killed', message: `service ${service} was killed for running out of memory` }, e.at);
    } else if (relevant && action === 'die') {
      const exitCode = Number(e.attributes.exitCode ?? NaN);
      const code = Number.isFinite(exitCode) ? exitCode : undefined;
      const stoppedBySignal = this.killed.has(e.id);
      if (!(stoppedBySignal && this.composeRunning)) {
        const policy = this.policies[service];
        const mustStayUp = policy?.job !== true ? policy?.mustStayUp : undefined;
        if (code === 0 && !stoppedBySignal && !mustStayUp) {
          // A one-shot that finished its job; readiness takes it from here.
        } else {
          const why = stoppedBySignal
            ? ' after a stop or kill from outside sandstack during the gate'
            : code === 0
              ? `, but it must stay up (${mustStayUp}); if it is a one-shot job, mark it with gate.services.${service}.job: true`
              : policy?.restart && policy.restart !== 'no'
                ? ` (under restart: ${policy.restart} it would be restarted: a crash loop)`
                : '';
          this.fail({ service, container: name, reason: 'exited', exitCode: code, message: `service ${service} exited with code ${code ?? 'unknown'}${why}` }, e.at);
        }
      }
    } else if (relevant && action.startsWith('health_status') && /unhealthy/.test(action)) {
      this.fail({ service, container: name, reason: 'unhealthy', message: `service ${service} turned unhealthy (its healthcheck failed)` }, e.at);
    }
    this.wake();
  }

  /**
   * Records a failure (the first one wins) and rejects `failed` once it is diagnosed.
   * @param eventAt when the container event that caused it happened (ms since the epoch)
   */
  fail(failure: ServiceFailure, eventAt?: number): void {
    if (this.failing) return;
    this.failing = true;
    void diagnose(this.docker, this.instanceId, failure).then((d) => {
      // An exit whose container the engine reports as OOM-killed is an OOM kill (no `oom` event on some engines).
      const reason = d.oomKilled ? 'oom-killed' : d.reason;
      const message = d.oomKilled && d.reason !== 'oom-killed' ? `service ${d.service} was killed for running out of memory (exit code ${d.exitCode})` : d.message;
      const full = { ...d, reason, message, ...(eventAt !== undefined ? { eventAt } : {}) };
      this.failure = new SandstackError('SANDSTACK_SERVICE_FAILED', message, { hint: hintFor(full), details: { failure: full } });
      this.rejectFailed(this.failure);
      this.wake();
    });
  }

  /** Remembers the RestartCount of a container when its service became ready. */
  markReady(c: ContainerView): void {
    if (!this.readyCounts.has(c.id)) this.readyCounts.set(c.id, { service: c.service, name: c.name, restartCount: c.restartCount });
  }

  /**
   * The verdict's check: no failure so far, and every container that was ready is still there with
   * the same RestartCount (a crash loop under `restart: always` can look "running" between restarts).
   */
  async assertSteady(): Promise<void> {
    if (this.failure) throw this.failure;
    const now = new Map((await instanceContainers(this.docker, this.instanceId)).map((c) => [c.id, c]));
    for (const [id, atReady] of this.readyCounts) {
      const c = now.get(id);
      if (!c) {
        this.fail({ service: atReady.service, container: atReady.name, reason: 'missing', message: `the container of service ${atReady.service} (${atReady.name}) was removed during the gate` });
      } else if (c.restartCount > atReady.restartCount) {
        const n = c.restartCount - atReady.restartCount;
        this.fail({
          service: c.service,
          container: c.name,
          reason: 'restarted',
          exitCode: c.exitCode,
          message: `service ${c.service} restarted ${n} time${n > 1 ? 's' : ''} during the gate (RestartCount ${atReady.restartCount} when ready, ${c.restartCount} at the verdict; last exit code ${c.exitCode})`,
        });
      }
      if (this.failing) return this.failed;
    }
  }

  /** Races a stage's work against the watch: the first failure event fails the stage at once. */
  guard<T>(work: Promise<T>): Promise<T> {
    work.catch(() => undefined);
    return Promise.race([work, this.failed]);
  }

  stop(): void {
    this.stopStream();
    this.listeners.clear();
  }
}
