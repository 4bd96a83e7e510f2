/**
 * The checks of the probes stage, started as soon as what they need is ready, in parallel with
 * waiting for the other services: each published port's answer check when its service is ready,
 * each declared http/exec/tcp probe when its service(s) are, command probes once all are. The
 * probes stage then collects the results.
 */
import type Docker from 'dockerode';
import type { ProbeSpec, PublishSpec } from '../config/schema.js';
import type { Lease } from '../state/registry.js';
import { checkPortAnswers, type PortCheckResult } from './answers.js';
import { runProbe, type ProbeResult } from './probes.js';

/** How long a published port is knocked on after its service is ready, at most. */
export const PORT_ANSWER_WINDOW_MS = 15_000;

export interface ReadyChecksOptions {
  docker: Docker;
  instanceId: string;
  leases: Lease[];
  publish: PublishSpec[];
  probes: ProbeSpec[];
  projectDir: string;
  /** Environment of host command probes. */
  env: Record<string, string | undefined>;
  /** The gate deadline (ms since the epoch). */
  deadline: number;
  signal?: AbortSignal;
}

/** The services a check waits for; `undefined`: all of them. */
function needs(p: ProbeSpec): string[] | undefined {
  if (p.http) return [p.http.service];
  if (p.exec) return [p.exec.service];
  if (p.tcp) return [...new Set([p.tcp.service, p.tcp.from ?? p.tcp.service])];
  return undefined;
}

/** The leases whose ports the gate knocks on: tcp, not turned off with `check: false`. */
export function checkedLeases(leases: Lease[], publish: PublishSpec[]): Lease[] {
  return leases.filter((l) => {
    if (l.protocol !== 'tcp' || l.scheme === 'udp') return false;
    const spec = publish.find((p) => p.service === l.service && p.port === l.containerPort && p.protocol !== 'udp');
    return spec?.check !== false;
  });
}

export class ReadyChecks {
  private readonly ready = new Set<string>();
  private all = false;
  /** When every service was ready (0: not yet). */
  private allReadyAt = 0;
  private readonly ports = new Map<Lease, Promise<PortCheckResult>>();
  private readonly probes = new Map<ProbeSpec, Promise<ProbeResult>>();
  /** When each check gave its verdict. */
  private readonly doneAt = new Map<Lease | ProbeSpec, number>();
  private readonly abortController = new AbortController();
  private readonly signal: AbortSignal;

  constructor(private readonly opts: ReadyChecksOptions) {
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.abortController.signal]) : this.abortController.signal;
  }

  get declared(): number {
    return this.opts.probes.length;
  }

  /** A service became ready: start what waited only for it. */
  serviceReady(service: string): void {
    if (this.ready.has(service)) return;
    this.ready.add(service);
    this.startDue();
  }

  /** Every service is ready: start everything not started yet. */
  allReady(): void {
    if (!this.all) this.allReadyAt = Date.now();
    this.all = true;
    this.startDue();
  }

  private stamp<T>(key: Lease | ProbeSpec, run: Promise<T>): Promise<T> {
    const stamped = run.finally(() => this.doneAt.set(key, Date.now()));
    stamped.catch(() => undefined);
    return stamped;
  }

  /**
   * A check that failed while other services were still starting (under load, a slow neighbour can
   * eat its window) gets its window again once all are ready. A port seen answering wrongly
   * (loopback-only, not HTTP) is a verdict, not a timeout, and is not retried.
   */
  private async again<K extends Lease | ProbeSpec, T extends { passed: boolean; reason?: string }>(key: K, run: Promise<T>, retry: (key: K) => Promise<T>): Promise<T> {
    const r = await run;
    if (r.passed || r.reason === 'loopback-only' || r.reason === 'not-http' || this.signal.aborted) return r;
    const at = this.doneAt.get(key) ?? 0;
    if (this.allReadyAt === 0 || at >= this.allReadyAt || Date.now() >= this.opts.deadline) return r;
    return retry(key);
  }

  private startDue(): void {
    for (const lease of checkedLeases(this.opts.leases, this.opts.publish)) {
      if (this.ports.has(lease) || !(this.all || this.ready.has(lease.service))) continue;
      this.ports.set(lease, this.stamp(lease, this.checkPort(lease)));
    }
    for (const p of this.opts.probes) {
      if (this.probes.has(p)) continue;
      const waitsFor = needs(p);
      if (!(this.all || (waitsFor && waitsFor.every((s) => this.ready.has(s))))) continue;
      this.probes.set(p, this.stamp(p, this.probe(p)));
    }
  }

  private checkPort(lease: Lease): Promise<PortCheckResult> {
    const until = Math.min(this.opts.deadline, Date.now() + PORT_ANSWER_WINDOW_MS);
    return checkPortAnswers(lease, { docker: this.opts.docker, instanceId: this.opts.instanceId, until, signal: this.signal });
  }

  private probe(p: ProbeSpec): Promise<ProbeResult> {
    return runProbe(p, {
      docker: this.opts.docker,
      instanceId: this.opts.instanceId,
      leases: this.opts.leases,
      projectDir: this.opts.projectDir,
      env: this.opts.env,
      deadline: this.opts.deadline,
      signal: this.signal,
    });
  }

  /** Every check's result (call after allReady). Rejects only when interrupted. */
  async settle(): Promise<{ ports: PortCheckResult[]; probes: ProbeResult[] }> {
    this.allReady();
    const [ports, probes] = await Promise.all([
      Promise.all([...this.ports].map(([lease, run]) => this.again(lease, run, (l) => this.checkPort(l)))),
      Promise.all([...this.probes].map(([p, run]) => this.again(p, run, (q) => this.probe(q)))),
    ]);
    return { ports, probes };
  }

  /** Stops checks still retrying (the gate failed elsewhere, or ended). */
  abort(): void {
    this.abortController.abort();
  }
}
