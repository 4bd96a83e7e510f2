/**
 * `sandstack verify`: the loop an agent runs before opening a PR, on a fresh throwaway instance:
 * the gate (without teardown), the tests, the evidence, then teardown (recorded in the evidence).
 * Passes only if everything passed; nothing is left behind in any case.
 */
import { isSandstackError, SandstackError } from '../errors.js';
import { teardownStage, throwawayContext } from '../gate/run.js';
import { saveGateReport, StageRecorder, type GateReport } from '../gate/report.js';
import type { Context } from '../lifecycle/context.js';
import { resolveInstance } from '../lifecycle/instance.js';
import { startInstance } from '../lifecycle/operations.js';
import { evidenceRoot, markLatest, newRunId, runDirFor, runTests } from '../testing/runner.js';
import type { TestRunResult } from '../testing/model.js';
import { writeEvidence, type EvidenceResult } from '../evidence/bundle.js';
import type { TeardownProof } from '../evidence/model.js';
import { mkdir } from 'node:fs/promises';

export interface VerifyResult {
  passed: boolean;
  instance: { id: string; runInstance: string };
  gate: GateReport;
  tests: TestRunResult | null;
  teardown: TeardownProof | null;
  evidence: { dir: string; summary: string; report: string } | null;
  /** What failed, in order (gate, tests, teardown, evidence). */
  problems: { step: string; code: string; message: string }[];
  /** The error that decides the exit code (the first one), if any. */
  error?: unknown;
}

function problemOf(step: string, e: unknown): VerifyResult['problems'][number] {
  return isSandstackError(e) ? { step, code: e.code, message: e.message } : { step, code: 'SANDSTACK_INTERNAL', message: (e as Error)?.message ?? String(e) };
}

export async function verify(ctx: Context, opts: { build?: boolean } = {}): Promise<VerifyResult> {
  const base = await resolveInstance(ctx);
  const freshCtx = throwawayContext(ctx, base.identity.id);
  const id = freshCtx.instanceFlag!;
  const inst = await resolveInstance(freshCtx, base);
  const rec = new StageRecorder(ctx.onProgress);
  const problems: VerifyResult['problems'] = [];
  let error: unknown;
  const fail = (step: string, e: unknown) => {
    problems.push(problemOf(step, e));
    error ??= e;
  };
  const root = evidenceRoot(ctx, base);
  const runId = newRunId();
  const runDir = runDirFor(root, base.identity.id, runId);
  await mkdir(runDir, { recursive: true, mode: 0o700 });
  await markLatest(root, base.identity.id, runId);
  ctx.onProgress({ type: 'step', message: `verify on throwaway instance ${id}; evidence in ${runDir}` });

  let tests: TestRunResult | null = null;
  let evidence: EvidenceResult | undefined;
  let teardown: TeardownProof | null = null;
  const identity = { id, worktree: inst.identity.worktree, kind: inst.identity.kind, baseId: base.identity.id };
  const deadline = inst.loaded.config.gate.timeoutSeconds;
  try {
    try {
      await startInstance(freshCtx, rec, { build: opts.build, gate: true, rollbackOnFailure: false, inst });
    } catch (e) {
      fail('gate', e);
    }
    if (!error) {
      try {
        ctx.onProgress({ type: 'step', message: 'running tests inside the stack' });
        tests = await runTests(freshCtx, { inst, evidenceInstanceId: base.identity.id, runId });
        if (!tests.passed) {
          const failed = tests.suites.filter((s) => !s.passed).map((s) => s.name);
          fail('tests', new SandstackError('SANDSTACK_TESTS_FAILED', `Tests failed: ${tests.totals.failed} failed in ${failed.join(', ')}.`, { hint: `See ${runDir}/summary.md.` }));
        }
      } catch (e) {
        fail('tests', e);
      }
    }
    // Evidence while the containers still exist (logs, images, service table)...
    try {
      evidence = await writeEvidence(ctx, { inst: base, runInstance: inst, runDir, gate: rec.report('fresh', identity, deadline) });
    } catch (e) {
      fail('evidence', e);
    }
  } finally {
    // ...then teardown, whatever happened.
    try {
      teardown = await teardownStage(rec, freshCtx);
    } catch (e) {
      fail('teardown', e);
    }
  }
  const gate = rec.report('fresh', identity, deadline);
  gate.reportFile = await saveGateReport(ctx.home, base.identity.id, gate).catch(() => undefined);
  // The final evidence: the gate report with its teardown stage, and the teardown proof.
  try {
    // The state dir is gone now: reuse the secrets found while the instance existed.
    evidence = await writeEvidence(ctx, { inst: base, runInstance: inst, runDir, gate, teardown, injectedSecrets: evidence?.secrets });
  } catch (e) {
    fail('evidence', e);
  }
  return {
    passed: problems.length === 0 && gate.passed && tests?.passed === true,
    instance: { id: base.identity.id, runInstance: id },
    gate,
    tests,
    teardown,
    evidence: evidence ? { dir: evidence.dir, summary: evidence.summaryFile, report: evidence.htmlFile } : null,
    problems,
    error,
  };
}
