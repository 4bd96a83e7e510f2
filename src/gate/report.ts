/** The gate report: stages with status, timing and details; recorded as the gate runs. */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { isSandstackError, SandstackError } from '../errors.js';
import type { ProgressEvent } from '../lifecycle/context.js';

export const STAGES = ['config', 'seed', 'build', 'rekey', 'start', 'healthy', 'probes', 'isolation', 'observability', 'teardown'] as const;
export type StageName = (typeof STAGES)[number];
export type StageStatus = 'passed' | 'failed' | 'skipped' | 'warning';

export interface StageResult {
  name: StageName;
  status: StageStatus;
  startedAt: string;
  durationMs: number;
  details: Record<string, unknown>;
}

export interface GateFailure {
  stage: StageName;
  code: string;
  message: string;
  hint?: string;
  service?: string;
  /** What happened to the service: exited, oom-killed, unhealthy, restarted, not-listening, loopback-only, not-http, ... */
  reason?: string;
  exitCode?: number;
  /**
   * For a failure caused by a container event (an exit, an OOM kill, a healthcheck turning
   * unhealthy): the time from that event, as the engine stamped it, to the gate's verdict.
   */
  detectedAfterMs?: number;
  logTail?: string[];
  healthLog?: { exitCode: number; output: string }[];
}

export interface GateReport {
  passed: boolean;
  mode: 'up' | 'check' | 'fresh';
  instance: { id: string; worktree: string; kind: string; baseId?: string };
  startedAt: string;
  durationMs: number;
  deadlineSeconds: number;
  stages: StageResult[];
  failure?: GateFailure;
  /** Orphaned throwaway instances (their owner process gone) removed before this run started. */
  reaped?: { id: string; why: string; removed: Record<string, number> }[];
  reportFile?: string;
}

export interface StageContext {
  /** Facts shown in the report for this stage. */
  details: Record<string, unknown>;
  /** Mark the stage as passed with a warning. */
  warn: (message: string) => void;
}

/** Runs stages in order, records each, and emits progress events. */
export class StageRecorder {
  readonly stages: StageResult[] = [];
  failure?: GateFailure;
  /** Orphans reaped before the run (see lifecycle/reap.ts). */
  reaped: NonNullable<GateReport['reaped']> = [];
  private readonly t0 = Date.now();
  readonly startedAt = new Date().toISOString();

  constructor(private readonly onProgress: (e: ProgressEvent) => void) {}

  async run<T>(name: StageName, fn: (s: StageContext) => Promise<T>): Promise<T> {
    const startedAt = new Date();
    const details: Record<string, unknown> = {};
    const warnings: string[] = [];
    this.onProgress({ type: 'stage', name, status: 'running' });
    try {
      const result = await fn({ details, warn: (m) => warnings.push(m) });
      if (warnings.length) details.warnings = warnings;
      this.record(name, warnings.length ? 'warning' : 'passed', startedAt, details);
      return result;
    } catch (e) {
      details.error = isSandstackError(e) ? e.toJSON() : { code: 'SANDSTACK_INTERNAL', message: (e as Error).message };
      this.record(name, 'failed', startedAt, details);
      this.failure ??= failureOf(name, e);
      throw e;
    }
  }

  /** Records a stage that failed before it could start (e.g. the config could not be loaded). */
  fail(name: StageName, e: unknown): void {
    const details = { error: isSandstackError(e) ? e.toJSON() : { code: 'SANDSTACK_INTERNAL', message: (e as Error)?.message } };
    this.record(name, 'failed', new Date(), details);
    this.failure ??= failureOf(name, e);
  }

  skip(name: StageName, reason: string): void {
    this.record(name, 'skipped', new Date(), { reason });
  }

  private record(name: StageName, status: StageStatus, startedAt: Date, details: Record<string, unknown>): void {
    const durationMs = Date.now() - startedAt.getTime();
    this.stages.push({ name, status, startedAt: startedAt.toISOString(), durationMs, details });
    this.onProgress({ type: 'stage', name, status, durationMs, message: typeof details.summary === 'string' ? details.summary : undefined });
  }

  report(mode: GateReport['mode'], instance: GateReport['instance'], deadlineSeconds: number): GateReport {
    const passed = this.failure === undefined && this.stages.every((s) => s.status !== 'failed');
    return {
      passed,
      mode,
      instance,
      startedAt: this.startedAt,
      durationMs: Date.now() - this.t0,
      deadlineSeconds,
      stages: [...this.stages],
      failure: this.failure,
      ...(this.reaped.length ? { reaped: this.reaped } : {}),
    };
  }
}

function failureOf(stage: StageName, e: unknown): GateFailure {
  if (!isSandstackError(e)) return { stage, code: 'SANDSTACK_INTERNAL', message: (e as Error)?.message ?? String(e) };
  const f = (e.details?.failure ?? {}) as { service?: string; reason?: string; exitCode?: number; eventAt?: number; logTail?: string[]; healthLog?: { exitCode: number; output: string }[] };
  const detectedAfterMs = typeof f.eventAt === 'number' ? Math.max(0, Date.now() - f.eventAt) : undefined;
  return { stage, code: e.code, message: e.message, hint: e.hint, service: f.service, reason: f.reason, exitCode: f.exitCode, detectedAfterMs, logTail: f.logTail, healthLog: f.healthLog };
}

/** Saves the report as `<home>/reports/<id>/gate-<time>.json` and `gate-latest.json` (0600). */
export async function saveGateReport(home: string, id: string, report: GateReport): Promise<string> {
  const dir = path.join(home, 'reports', id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `gate-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  const withFile = { ...report, reportFile: file };
  const text = `${JSON.stringify(withFile, null, 2)}\n`;
  await writeFileAtomic(file, text, { mode: 0o600 });
  await writeFileAtomic(path.join(dir, 'gate-latest.json'), text, { mode: 0o600 });
  return file;
}

/** Attaches the report to an error so the CLI can print and return it. */
export function withReport(e: unknown, report: GateReport): unknown {
  if (isSandstackError(e)) {
    return new SandstackError(e.code, e.message, { hint: e.hint, details: { ...(e.details ?? {}), gate: report }, cause: e });
  }
  return e;
}

/** The newest saved gate report of an instance, if any. */
export async function readLatestGateReport(home: string, id: string): Promise<GateReport | undefined> {
  try {
    return JSON.parse(await readFile(path.join(home, 'reports', id, 'gate-latest.json'), 'utf8')) as GateReport;
  } catch {
    return undefined;
  }
}
