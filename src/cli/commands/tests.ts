/** The commands of the pre-PR loop: test, evidence, verify, escalate. */
import path from 'node:path';
import { writeEvidence } from '../../evidence/bundle.js';
import { escalate as writeEscalation, readEscalationFile } from '../../evidence/escalate.js';
import { resolveInstance } from '../../lifecycle/instance.js';
import type { TestRunResult } from '../../testing/model.js';
import { runTests } from '../../testing/runner.js';
import { verify as verifyLoop } from '../../verify/verify.js';
import { gateText, table } from '../output.js';
import type { Action } from '../register.js';

function testsText(r: TestRunResult): string {
  const rows = r.suites.map((s) => [s.kind, s.name, s.where, s.passed ? 'passed' : 'FAILED', s.junit ? `${s.junit.passed}/${s.junit.tests}` : `exit ${s.exitCode}`, `${(s.durationMs / 1000).toFixed(1)}s`]);
  const failures = r.suites.flatMap((s) => (s.junit?.failures ?? []).map((f) => `  ${s.name} › ${f.suite} › ${f.name}: ${f.message.split('\n')[0]}`));
  const t = r.totals;
  return [
    `tests ${r.passed ? 'PASSED' : 'FAILED'}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped in ${t.suites} suite(s)`,
    table(['KIND', 'SUITE', 'WHERE', 'RESULT', 'TESTS', 'TIME'], rows),
    ...(failures.length ? ['failures:', ...failures] : []),
    `artifacts: ${r.dir}`,
  ].join('\n');
}

export const test: Action = async (ctx, out) => {
  const r = await runTests(ctx);
  out.result(r, () => testsText(r));
  return r.passed ? 0 : 1;
};

export const evidence: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ run?: string }>();
  const inst = await resolveInstance(ctx);
  const r = await writeEvidence(ctx, { inst, runDir: o.run ? path.resolve(ctx.cwd, o.run) : undefined });
  out.result({ dir: r.dir, summary: r.summaryFile, report: r.htmlFile, manifest: r.manifest }, () =>
    [`evidence ${r.manifest.result.passed ? 'PASSED' : 'FAILED'} for ${r.manifest.instance.id} (${r.manifest.files.length + 3} files, ${r.manifest.redaction.secretsRedacted} secret value(s) redacted)`, `report:  ${r.htmlFile}`, `summary: ${r.summaryFile}`].join('\n'),
  );
};

export const verify: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ build: boolean }>();
  const r = await verifyLoop(ctx, { build: o.build });
  const { error, ...data } = r;
  let code = 0;
  if (!r.passed) code = error !== undefined ? out.error(error, { printJson: false }) : 1;
  out.result(data, () =>
    [
      gateText(r.gate),
      r.tests ? testsText(r.tests) : 'tests: not run',
      r.teardown ? `teardown: ${r.teardown.removed.containers.length} containers, ${r.teardown.removed.volumes.length} volumes, ${r.teardown.removed.networks.length} networks removed; nothing left` : 'teardown: not recorded',
      `verify ${r.passed ? 'PASSED' : 'FAILED'}${r.problems.length ? `: ${r.problems.map((p) => `${p.step}: ${p.message.split('\n')[0]}`).join('; ')}` : ''}`,
      r.evidence ? r.evidence.summary : 'no evidence written',
    ].join('\n\n'),
  );
  return r.passed ? 0 : code || 1;
};

export const escalate: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ title?: string; blocked?: string; why?: string; option?: string[]; recommend?: string; need?: string; evidence?: string[]; file?: string }>();
  const fromFile = o.file ? await readEscalationFile(path.resolve(ctx.cwd, o.file)) : {};
  const r = await writeEscalation(ctx, {
    ...fromFile,
    ...(o.title ? { title: o.title } : {}),
    ...(o.blocked ? { blocked: o.blocked } : {}),
    ...(o.why ? { whyItMatters: o.why } : {}),
    ...(o.option ? { options: o.option } : {}),
    ...(o.recommend ? { recommended: o.recommend } : {}),
    ...(o.need ? { decisionNeeded: o.need } : {}),
    ...(o.evidence ? { evidence: o.evidence } : {}),
  });
  out.result({ dir: r.dir, markdown: r.markdown, json: r.json, packet: r.packet }, () => `escalation written:\n  ${r.markdown}\n  ${r.json}`);
};
