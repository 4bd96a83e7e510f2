/**
 * `sandstack escalate`: the design's escalation packet — what is unclear or blocked, why it matters,
 * options considered, recommended path, the decision or input needed, evidence gathered so far — as
 * Markdown and JSON, with the latest evidence of the instance attached.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { SandstackError } from '../errors.js';
import type { Context } from '../lifecycle/context.js';
import { resolveInstance } from '../lifecycle/instance.js';
import { evidenceRoot, latestRunDir } from '../testing/runner.js';
import { gatherSecrets } from './bundle.js';
import type { Manifest } from './model.js';
import { redactText } from './redact.js';

export const EscalationInputSchema = z.strictObject({
  title: z.string().min(1).optional(),
  blocked: z.string().min(1).describe('What is unclear or blocked'),
  whyItMatters: z.string().min(1),
  options: z.array(z.string().min(1)).min(1).describe('Options considered'),
  recommended: z.string().min(1).describe('Recommended path'),
  decisionNeeded: z.string().min(1).describe('The decision or input needed'),
  evidence: z.array(z.string().min(1)).default([]).describe('Evidence gathered so far (free text, links)'),
});
export type EscalationInput = z.input<typeof EscalationInputSchema>;

export interface EscalationPacket extends z.output<typeof EscalationInputSchema> {
  schema: 'sandstack.escalation/v1';
  createdAt: string;
  instance: string;
  worktree: string;
  branch: string | null;
  attachedEvidence: { dir: string; summary: string; passed: boolean | null; runId: string } | null;
}

/** Reads packet fields from a YAML or JSON file. */
export async function readEscalationFile(file: string): Promise<Partial<EscalationInput>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new SandstackError('SANDSTACK_USAGE', `Cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  const data = parseYaml(text) as unknown;
  if (!data || typeof data !== 'object') throw new SandstackError('SANDSTACK_USAGE', `${file} must hold a YAML or JSON object with the packet fields.`);
  return data as Partial<EscalationInput>;
}

export function validateEscalation(input: Partial<EscalationInput>): z.output<typeof EscalationInputSchema> {
  const r = EscalationInputSchema.safeParse(input);
  if (!r.success) {
    const missing = r.error.issues.map((i) => `${i.path.join('.') || '(packet)'}: ${i.message}`).join('; ');
    throw new SandstackError('SANDSTACK_USAGE', `The escalation packet is incomplete or invalid: ${missing}.`, {
      hint: 'Give --blocked, --why, --option (one or more), --recommend and --need, or a --file with those fields (blocked, whyItMatters, options, recommended, decisionNeeded).',
    });
  }
  return r.data;
}

function md(p: EscalationPacket): string {
  const list = (xs: string[]) => xs.map((x, i) => `${i + 1}. ${x}`).join('\n');
  return [
    `# Escalation: ${p.title ?? p.blocked.split('\n')[0]}`,
    '',
    `Instance \`${p.instance}\`${p.branch ? ` on branch \`${p.branch}\`` : ''}, ${p.createdAt}.`,
    '',
    '## 1. What is unclear or blocked',
    p.blocked,
    '',
    '## 2. Why it matters',
    p.whyItMatters,
    '',
    '## 3. Options considered',
    list(p.options),
    '',
    '## 4. Recommended path',
    p.recommended,
    '',
    '## 5. Decision or input needed',
    p.decisionNeeded,
    '',
    '## 6. Evidence gathered so far',
    ...(p.evidence.length ? p.evidence.map((e) => `- ${e}`) : ['- (none given)']),
    p.attachedEvidence
      ? `- Latest sandstack evidence: run \`${p.attachedEvidence.runId}\` (${p.attachedEvidence.passed === null ? 'result unknown' : p.attachedEvidence.passed ? 'passed' : 'FAILED'}): [summary](${p.attachedEvidence.summary})`
      : '- No sandstack evidence recorded for this instance yet (run `sandstack verify`).',
    '',
  ].join('\n');
}

export interface EscalationResult {
  dir: string;
  markdown: string;
  json: string;
  packet: EscalationPacket;
}

export async function escalate(ctx: Context, input: Partial<EscalationInput>): Promise<EscalationResult> {
  const fields = validateEscalation(input);
  const inst = await resolveInstance(ctx);
  const root = evidenceRoot(ctx, inst);
  const latest = await latestRunDir(root, inst.identity.id);
  let attached: EscalationPacket['attachedEvidence'] = null;
  if (latest) {
    const manifest = await readFile(path.join(latest, 'manifest.json'), 'utf8').then((t) => JSON.parse(t) as Manifest, () => null);
    attached = { dir: latest, summary: path.join(latest, 'summary.md'), passed: manifest?.result.passed ?? null, runId: path.basename(latest) };
  }
  const createdAt = new Date().toISOString();
  const packet: EscalationPacket = {
    schema: 'sandstack.escalation/v1',
    createdAt,
    instance: inst.identity.id,
    worktree: inst.identity.worktree,
    branch: inst.git?.branch ?? null,
    ...fields,
    attachedEvidence: attached,
  };
  const dir = path.join(root, inst.identity.id, 'escalations', createdAt.replace(/[:.]/g, '-'));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const markdown = path.join(dir, 'escalation.md');
  const json = path.join(dir, 'escalation.json');
  // The packet is meant to be shared: no secret value may appear in it.
  const rendered = await readFile(inst.paths.rendered, 'utf8').catch(() => undefined);
  const secrets = await gatherSecrets(ctx, inst, rendered);
  await writeFile(markdown, redactText(md(packet), secrets).text, { mode: 0o600 });
  await writeFile(json, redactText(`${JSON.stringify(packet, null, 2)}\n`, secrets).text, { mode: 0o600 });
  return { dir, markdown, json, packet };
}
