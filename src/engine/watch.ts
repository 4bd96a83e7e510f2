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
import { diagnose, hintFor, type FailureDiagnosis, type ServiceFailure, type ServicePolicies } from './readiness.js';

/** How long an `oom` event waits for the container's `die` (for its exit code) before failing alone. */
const OOM_DIE_GRACE_MS = 1000;
/** How long the verdict waits for a failure's log tail before going ahead without it. */
const DIAGNOSIS_WAIT_MS = 250;

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
  private readonly oomKilled = new Map<string, ServiceFailure & { at: number }>();
  private readonly readyCounts = new Map<string, { service: string; name: string; restartCount: number }>();
  private stopStream: () => void = () => undefined;
  private diagnosis?: Promise<void>;

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
      // The container's `die` (with its exit code) normally follows at once; when only a child
      // process was killed, nothing follows, and the OOM kill still fails the gate.
      const oom = { service, container: name, reason: 'oom-killed' as const, message: `a process of service ${service} was killed for running out of memory`, at: e.at };
      this.oomKilled.set(e.id, oom);
      setTimeout(() => this.fail(oom, oom.at, e.id), OOM_DIE_GRACE_MS).unref();
    } else if (relevant && action === 'die') {
      const exitCode = Number(e.attributes.exitCode ?? NaN);
      const code = Number.isFinite(exitCode) ? exitCode : undefined;
      const oom = this.oomKilled.get(e.id);
      if (oom) {
        this.fail({ ...oom, exitCode: code, message: `service ${service} was killed for running out of memory (exit code ${code ?? 'unknown'})` }, oom.at, e.id);
        this.wake();
        return;
      }
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
          this.fail({ service, container: name, reason: 'exited', exitCode: code, message: `service ${service} exited with code ${code ?? 'unknown'}${why}` }, e.at, e.id);
        }
      }
    } else if (relevant && action.startsWith('health_status') && /unhealthy/.test(action)) {
      this.fail({ service, container: name, reason: 'unhealthy', message: `service ${service} turned unhealthy (its healthcheck failed)` }, e.at, e.id);
    }
    this.wake();
  }

  /**
   * Records a failure (the first one wins) and rejects `failed` once it is diagnosed, or after
   * DIAGNOSIS_WAIT_MS without its diagnosis: the engine can hold a container's inspect and logs
   * while its restart policy restarts it, and the verdict must not wait for that. The log tail and
   * health log then arrive in the error's `details.failure` arrays later; `settle()` waits for them.
   * @param eventAt when the container event that caused it happened (ms since the epoch)
   */
  fail(failure: ServiceFailure, eventAt?: number, containerId?: string): void {
    if (this.failing) return;
    this.failing = true;
    const logTail: string[] = [];
    const healthLog: { exitCode: number; output: string }[] = [];
    const build = (d?: FailureDiagnosis): SandstackError => {
      // An exit whose container the engine reports as OOM-killed is an OOM kill (no `oom` event on some engines).
      const oom = d?.oomKilled && failure.reason !== 'oom-killed';
      const full = {
        ...failure,
        ...(d ? { exitCode: d.exitCode } : {}),
        ...(oom ? { reason: 'oom-killed' as const, message: `service ${failure.service} was killed for running out of memory (exit code ${d!.exitCode})` } : {}),
        logTail,
        healthLog,
        ...(eventAt !== undefined ? { eventAt } : {}),
      };
      return new SandstackError('SANDSTACK_SERVICE_FAILED', full.message, { hint: hintFor(full), details: { failure: full } });
    };
    const reject = (d?: FailureDiagnosis) => {
      if (this.failure) return;
      this.failure = build(d);
      this.rejectFailed(this.failure);
      this.wake();
    };
    const timer = setTimeout(() => reject(), DIAGNOSIS_WAIT_MS);
    this.diagnosis = diagnose(this.docker, this.instanceId, failure, containerId).then(
      (d) => {
        clearTimeout(timer);
        // Same arrays as in the error (and the gate report's failure, which holds them).
        logTail.push(...d.logTail);
        healthLog.push(...d.healthLog);
        reject(d);
      },
      () => {
        clearTimeout(timer);
        reject();
      },
    );
  }

  /** Waits (at most 5 s) for the diagnosis of the failure, if any: call before tearing down. */
  async settle(): Promise<void> {
    if (!this.diagnosis) return;
    await Promise.race([this.diagnosis, new Promise((r) => setTimeout(r, 5000).unref())]);
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
