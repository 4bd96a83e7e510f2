/**
 * The Startability Gate as a command: `gate` checks a running instance; `gate --fresh` runs every
 * stage on a brand-new throwaway instance of the worktree and always tears it down, whatever the
 * outcome (also on Ctrl-C), verifying that nothing labelled remains.
 */
import { randomBytes } from 'node:crypto';
import { assertDockerAvailable } from '../engine/docker.js';
import { isSandstackError, SandstackError } from '../errors.js';
import { MAX_ID_LENGTH, sanitizeInstanceId } from '../identity/identity.js';
import type { Context } from '../lifecycle/context.js';
import { findRecord, resolveInstance, touchInstance, type ResolvedInstance } from '../lifecycle/instance.js';
import { destroy, runObservabilityStage, startInstance } from '../lifecycle/operations.js';
import { saveGateReport, StageRecorder, type GateReport } from './report.js';
import type { TeardownProof } from '../evidence/model.js';
import { currentOwner, formatOwner } from '../state/owner.js';
import { configStage, deadlineFrom, healthyCheckStage, isolationStage, openGateRun, probesStage, type GateRun } from './stages.js';

export interface GateOutcome {
  report: GateReport;
  /** The error that failed the gate (its exit code is the command's), if any. */
  error?: unknown;
}

/** Checks the running instance of this worktree: config, healthy, probes, isolation. */
export async function gateCheck(ctx: Context): Promise<GateOutcome> {
  const rec = new StageRecorder(ctx.onProgress);
  const inst = await resolveOrReport(ctx, rec, 'check');
  if ('report' in inst) return inst;
  const identity = { id: inst.identity.id, worktree: inst.identity.worktree, kind: inst.identity.kind };
  const deadline = deadlineFrom(inst.loaded.config.gate.timeoutSeconds);
  let error: unknown;
  let run: (GateRun & { stop: () => void }) | undefined;
  try {
    await assertDockerAvailable(ctx.engine.docker);
    const { record } = await findRecord(ctx, inst.identity.id);
    if (!record) {
      throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} is not registered (never started).`, {
        hint: 'Start it with `sandstack up`, or run `sandstack gate --fresh` on a throwaway instance.',
      });
    }
    inst.projectDir = record.projectDir;
    await touchInstance(ctx, inst.identity.id);
    const prepared = await rec.run('config', (s) => configStage(ctx, s, { persist: false, inst }));
    rec.skip('build', 'checking a running instance');
    rec.skip('start', 'checking a running instance');
    // Watched from the healthy stage to the verdict: any container failing meanwhile fails the gate.
    run = await openGateRun(ctx, prepared, deadline);
    const gateRun = run;
    await rec.run('healthy', (s) => healthyCheckStage(ctx, s, prepared, gateRun));
    await rec.run('probes', (s) => probesStage(ctx, s, prepared, gateRun));
    await rec.run('isolation', (s) => isolationStage(ctx, s, prepared, gateRun));
    await runObservabilityStage(ctx, rec, prepared, gateRun);
  } catch (e) {
    error = e;
    recordOutsideStage(rec, e);
    await run?.watch.settle();
  } finally {
    run?.stop();
  }
  const report = rec.report('check', identity, deadline.seconds);
  report.reportFile = await saveGateReport(ctx.home, identity.id, report);
  return { report, error };
}

/** An error raised between stages (no Docker, instance not running) still fails the gate. */
function recordOutsideStage(rec: StageRecorder, e: unknown): void {
  if (rec.failure) return;
  rec.fail(isSandstackError(e) && e.code === 'SANDSTACK_NOT_RUNNING' ? 'healthy' : 'config', e);
}

/** Resolves the instance; a config that cannot be loaded becomes a failed config stage. */
async function resolveOrReport(ctx: Context, rec: StageRecorder, mode: GateReport['mode']): Promise<ResolvedInstance | GateOutcome> {
  try {
    return await resolveInstance(ctx);
  } catch (e) {
    rec.fail('config', e);
    return { report: rec.report(mode, { id: ctx.instanceFlag ?? '(unresolved)', worktree: ctx.cwd, kind: 'local' }, 0), error: e };
  }
}

/** A throwaway id for this worktree: `<id>-gate-<random>`, within the id length limit. */
export function freshInstanceId(baseId: string): string {
  const suffix = `-gate-${randomBytes(3).toString('hex')}`;
  return sanitizeInstanceId(`${baseId.slice(0, MAX_ID_LENGTH - suffix.length).replace(/[-_]+$/, '')}${suffix}`);
}

/** A context for a new throwaway instance of the worktree: its own id, environment kind `sandbox`, this process as owner. */
export function throwawayContext(ctx: Context, baseId: string): Context {
  return {
    ...ctx,
    instanceFlag: freshInstanceId(baseId),
    env: { ...ctx.env, SANDSTACK_INSTANCE: undefined, SANDSTACK_ENVIRONMENT: 'sandbox' },
    // Owned by this process: if it dies without tearing down, the next sandstack reaps the instance.
    owner: formatOwner(currentOwner()),
  };
}

/**
 * The teardown stage of a throwaway instance: destroy (not interruptible: a second Ctrl-C quits at
 * once), verify nothing labelled remains, and return the proof. Nothing created is not a failure.
 */
export async function teardownStage(rec: StageRecorder, throwaway: Context): Promise<TeardownProof> {
  const t0 = Date.now();
  const id = throwaway.instanceFlag!;
  return rec.run('teardown', async (s) => {
    let proof: TeardownProof;
    try {
      // A throwaway instance's own images go with it; its content-addressed ones stay for the next
      // run of the same source (gc --images, or destroy of their last user, removes them).
      const r = await destroy({ ...throwaway, signal: undefined }, { keepSharedImages: true });
      proof = { at: new Date().toISOString(), instance: id, removed: { containers: r.removed.containers, volumes: r.removed.volumes, networks: r.removed.networks }, remaining: r.verified, durationMs: Date.now() - t0 };
      s.details.removed = r.removed;
      s.details.summary = `removed ${r.removed.containers.length} containers, ${r.removed.volumes.length} volumes, ${r.removed.networks.length} networks, ${r.removed.images.length} image tags; 0 labelled resources remain`;
      for (const n of r.notices) s.warn(n);
    } catch (e) {
      if (!(isSandstackError(e) && e.code === 'SANDSTACK_INSTANCE_NOT_FOUND')) throw e;
      proof = { at: new Date().toISOString(), instance: id, removed: { containers: [], volumes: [], networks: [] }, remaining: { containers: 0, volumes: 0, networks: 0 }, durationMs: Date.now() - t0 };
      s.details.summary = 'nothing had been created';
    }
    s.details.verified = proof.remaining;
    return proof;
  });
}

/** Runs the whole gate on a new throwaway instance (kind `sandbox`) and tears it down. */
export async function gateFresh(ctx: Context, opts: { build?: boolean; from?: string } = {}): Promise<GateOutcome> {
  const rec = new StageRecorder(ctx.onProgress);
  const base = await resolveOrReport(ctx, rec, 'fresh');
  if ('report' in base) return base;
  const freshCtx = throwawayContext(ctx, base.identity.id);
  const id = freshCtx.instanceFlag!;
  const inst = await resolveInstance(freshCtx, base);
  const identity = { id, worktree: inst.identity.worktree, kind: inst.identity.kind, baseId: base.identity.id };
  ctx.onProgress({ type: 'step', message: `gate --fresh on throwaway instance ${id}` });
  let error: unknown;
  try {
    await startInstance(freshCtx, rec, { build: opts.build, gate: true, rollbackOnFailure: false, inst, from: opts.from });
  } catch (e) {
    error = e;
    recordOutsideStage(rec, e);
  }
  // Teardown runs whatever happened.
  try {
    await teardownStage(rec, freshCtx);
  } catch (e) {
    error ??= e;
  }
  const report = rec.report('fresh', identity, inst.loaded.config.gate.timeoutSeconds);
  report.reportFile = await saveGateReport(ctx.home, base.identity.id, report);
  return { report, error };
}
