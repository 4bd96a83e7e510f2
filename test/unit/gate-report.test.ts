import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { saveGateReport, StageRecorder, withReport, type GateReport } from '../../src/gate/report.js';
import type { ProgressEvent } from '../../src/lifecycle/context.js';

function recorder() {
  const events: ProgressEvent[] = [];
  const rec = new StageRecorder((e) => events.push(e));
  return { rec, events };
}

const INSTANCE = { id: 'feat-a', worktree: '/w/feat-a', kind: 'local' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('StageRecorder', () => {
  it('records a passed stage with its details, timing and return value', async () => {
    const { rec, events } = recorder();
    const value = await rec.run('config', async (s) => {
      s.details.services = ['web'];
      s.details.summary = '1 services';
      await sleep(20);
      return 42;
    });
    expect(value).toBe(42);
    expect(rec.stages).toHaveLength(1);
    const st = rec.stages[0]!;
    expect(st).toMatchObject({ name: 'config', status: 'passed', details: { services: ['web'], summary: '1 services' } });
    expect(st.durationMs).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(Date.parse(st.startedAt))).toBe(false);
    expect(events).toEqual([
      { type: 'stage', name: 'config', status: 'running' },
      { type: 'stage', name: 'config', status: 'passed', durationMs: st.durationMs, message: '1 services' },
    ]);
  });

  it('marks a stage with warnings as warning, and the report still passes', async () => {
    const { rec, events } = recorder();
    await rec.run('config', async (s) => {
      s.warn('unset variables interpolated as blank: FOO');
      s.warn('second');
    });
    expect(rec.stages[0]).toMatchObject({ status: 'warning', details: { warnings: ['unset variables interpolated as blank: FOO', 'second'] } });
    expect(events.map((e) => (e.type === 'stage' ? e.status : e.type))).toEqual(['running', 'warning']);
    expect(rec.report('up', INSTANCE, 180).passed).toBe(true);
  });

  it('records a skipped stage with its reason and no running event', () => {
    const { rec, events } = recorder();
    rec.skip('build', 'checking a running instance');
    expect(rec.stages[0]).toMatchObject({ name: 'build', status: 'skipped', details: { reason: 'checking a running instance' } });
    expect(rec.stages[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'stage', name: 'build', status: 'skipped' });
    expect(rec.report('check', INSTANCE, 180).passed).toBe(true);
  });

  it('records a failing stage, rethrows, and captures the failure from details.failure', async () => {
    const { rec, events } = recorder();
    const err = new SandstackError('SANDSTACK_SERVICE_FAILED', 'db exited with code 1', {
      hint: 'Check the db logs.',
      details: { failure: { service: 'db', exitCode: 1, logTail: ['FATAL: bad config'], healthLog: [{ exitCode: 1, output: 'no' }] } },
    });
    await rec.run('config', async () => undefined);
    await expect(rec.run('healthy', async () => Promise.reject(err))).rejects.toBe(err);

    expect(rec.stages.map((s) => [s.name, s.status])).toEqual([
      ['config', 'passed'],
      ['healthy', 'failed'],
    ]);
    expect(rec.stages[1]!.details.error).toEqual(err.toJSON());
    expect(rec.failure).toEqual({
      stage: 'healthy',
      code: 'SANDSTACK_SERVICE_FAILED',
      message: 'db exited with code 1',
      hint: 'Check the db logs.',
      service: 'db',
      exitCode: 1,
      logTail: ['FATAL: bad config'],
      healthLog: [{ exitCode: 1, output: 'no' }],
    });
    expect(events.filter((e) => e.type === 'stage').map((e) => `${e.name}:${e.status}`)).toEqual(['config:running', 'config:passed', 'healthy:running', 'healthy:failed']);

    const report = rec.report('up', INSTANCE, 60);
    expect(report.passed).toBe(false);
    expect(report.failure?.stage).toBe('healthy');
    expect(report.failure?.code).toBe('SANDSTACK_SERVICE_FAILED');
  });

  it('captures a plain Error as SANDSTACK_INTERNAL', async () => {
    const { rec } = recorder();
    await expect(
      rec.run('probes', async () => {
        throw new Error('kaboom');
      }),
    ).rejects.toThrow('kaboom');
    expect(rec.stages[0]!.details.error).toEqual({ code: 'SANDSTACK_INTERNAL', message: 'kaboom' });
    expect(rec.failure).toEqual({ stage: 'probes', code: 'SANDSTACK_INTERNAL', message: 'kaboom' });
  });

  it('a SandstackError without details.failure has no service/exitCode/logTail', async () => {
    const { rec } = recorder();
    await rec.run('start', async () => Promise.reject(new SandstackError('SANDSTACK_TIMEOUT', 'too slow'))).catch(() => undefined);
    expect(rec.failure).toMatchObject({ stage: 'start', code: 'SANDSTACK_TIMEOUT', message: 'too slow' });
    expect(rec.failure?.service).toBeUndefined();
    expect(rec.failure?.exitCode).toBeUndefined();
    expect(rec.failure?.logTail).toBeUndefined();
  });

  it('keeps the first failure when later stages fail too', async () => {
    const { rec } = recorder();
    await rec.run('probes', async () => Promise.reject(new SandstackError('SANDSTACK_PROBE_FAILED', 'first'))).catch(() => undefined);
    await rec.run('teardown', async () => Promise.reject(new SandstackError('SANDSTACK_DESTROY_INCOMPLETE', 'second'))).catch(() => undefined);
    expect(rec.failure).toMatchObject({ stage: 'probes', code: 'SANDSTACK_PROBE_FAILED', message: 'first' });
    expect(rec.stages.map((s) => s.status)).toEqual(['failed', 'failed']);
  });

  it('fail() records a failed stage and fails the report', () => {
    const { rec, events } = recorder();
    rec.fail('config', new SandstackError('SANDSTACK_CONFIG_INVALID', 'sandstack.yaml is invalid', { hint: 'fix it' }));
    expect(rec.stages).toHaveLength(1);
    expect(rec.stages[0]).toMatchObject({ name: 'config', status: 'failed' });
    expect((rec.stages[0]!.details.error as { code: string }).code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(events).toEqual([{ type: 'stage', name: 'config', status: 'failed', durationMs: rec.stages[0]!.durationMs, message: undefined }]);
    const report = rec.report('check', INSTANCE, 0);
    expect(report.passed).toBe(false);
    expect(report.failure).toMatchObject({ stage: 'config', code: 'SANDSTACK_CONFIG_INVALID', hint: 'fix it' });
  });

  it('report.passed is false when a failure is recorded even if no stage says failed', () => {
    const { rec } = recorder();
    rec.skip('build', 'x');
    rec.failure = { stage: 'start', code: 'SANDSTACK_INTERRUPTED', message: 'Ctrl-C' };
    expect(rec.report('fresh', INSTANCE, 10).passed).toBe(false);
  });

  it('builds the report with all stages in order, mode, instance and timing', async () => {
    const { rec } = recorder();
    await rec.run('config', async () => undefined);
    rec.skip('build', 'not asked');
    await rec.run('start', async () => sleep(5));
    const report = rec.report('fresh', { ...INSTANCE, baseId: 'feat' }, 180);
    expect(report).toMatchObject({ passed: true, mode: 'fresh', instance: { id: 'feat-a', baseId: 'feat' }, deadlineSeconds: 180, startedAt: rec.startedAt });
    expect(report.failure).toBeUndefined();
    expect(report.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['config:passed', 'build:skipped', 'start:passed']);
    // The whole report spans at least its longest stage (no wall-clock thresholds: timers may fire early).
    expect(report.durationMs).toBeGreaterThanOrEqual(Math.max(...report.stages.map((s) => s.durationMs)));
    for (const s of report.stages) expect(s.durationMs).toBeGreaterThanOrEqual(0);
    // a copy: recording more stages does not change an earlier report
    rec.skip('teardown', 'later');
    expect(report.stages).toHaveLength(3);
  });
});

describe('saveGateReport', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'sandstack-report-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  function report(over: Partial<GateReport> = {}): GateReport {
    return {
      passed: false,
      mode: 'check',
      instance: INSTANCE,
      startedAt: '2025-01-02T03:04:05.678Z',
      durationMs: 1234,
      deadlineSeconds: 180,
      stages: [{ name: 'config', status: 'failed', startedAt: '2025-01-02T03:04:05.678Z', durationMs: 3, details: { error: { code: 'SANDSTACK_CONFIG_INVALID' } } }],
      failure: { stage: 'config', code: 'SANDSTACK_CONFIG_INVALID', message: 'bad' },
      ...over,
    };
  }

  it('writes gate-<time>.json and gate-latest.json (0600) under <home>/reports/<id>/', async () => {
    const file = await saveGateReport(home, 'feat-a', report());
    const dir = path.join(home, 'reports', 'feat-a');
    expect(file).toBe(path.join(dir, 'gate-2025-01-02T03-04-05-678Z.json'));
    expect((await readdir(dir)).sort()).toEqual(['gate-2025-01-02T03-04-05-678Z.json', 'gate-latest.json']);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, 'gate-latest.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o077).toBe(0);

    const saved = JSON.parse(await readFile(file, 'utf8')) as GateReport;
    expect(saved).toEqual({ ...report(), reportFile: file });
    expect(await readFile(path.join(dir, 'gate-latest.json'), 'utf8')).toBe(await readFile(file, 'utf8'));
  });

  it('keeps earlier reports and points gate-latest.json at the newest', async () => {
    await saveGateReport(home, 'feat-a', report());
    const second = await saveGateReport(home, 'feat-a', report({ startedAt: '2025-01-02T04:00:00.000Z', passed: true, failure: undefined }));
    const dir = path.join(home, 'reports', 'feat-a');
    expect((await readdir(dir)).sort()).toEqual(['gate-2025-01-02T03-04-05-678Z.json', 'gate-2025-01-02T04-00-00-000Z.json', 'gate-latest.json']);
    const latest = JSON.parse(await readFile(path.join(dir, 'gate-latest.json'), 'utf8')) as GateReport;
    expect(latest.passed).toBe(true);
    expect(latest.reportFile).toBe(second);
  });

  it('makes a previously world-readable gate-latest.json 0600', async () => {
    const dir = path.join(home, 'reports', 'feat-a');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'gate-latest.json'), '{}');
    await chmod(path.join(dir, 'gate-latest.json'), 0o644);
    await saveGateReport(home, 'feat-a', report());
    expect((await stat(path.join(dir, 'gate-latest.json'))).mode & 0o777).toBe(0o600);
  });
});

describe('withReport', () => {
  it('attaches the report to a SandstackError, keeping code, hint and details', () => {
    const { rec } = recorder();
    rec.skip('build', 'x');
    const r = rec.report('up', INSTANCE, 1);
    const e = new SandstackError('SANDSTACK_BUILD_FAILED', 'nope', { hint: 'h', details: { step: 'RUN make' } });
    const out = withReport(e, r) as SandstackError;
    expect(out).toBeInstanceOf(SandstackError);
    expect(out).not.toBe(e);
    expect(out).toMatchObject({ code: 'SANDSTACK_BUILD_FAILED', message: 'nope', hint: 'h', cause: e });
    expect(out.details).toEqual({ step: 'RUN make', gate: r });
  });

  it('returns other errors unchanged', () => {
    const e = new Error('x');
    expect(withReport(e, recorder().rec.report('up', INSTANCE, 1))).toBe(e);
  });
});
