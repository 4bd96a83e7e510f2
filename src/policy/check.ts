/**
 * Lint and enforcement for a project: the compose files as written (with file:line:column) and the
 * model as merged by Compose, then the policy: error-level findings that sandstack's rendering does
 * not neutralise block `up` and the gate unless sandstack.yaml allows that rule for that service.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { ComposeModel } from '../compose/model.js';
import type { SandstackConfig } from '../config/schema.js';
import { SandstackError } from '../errors.js';
import { fixComposeText, type FixChange } from './fix.js';
import { lintComposeText, lintDotEnvFiles, lintModel, lintOptionsFor, mergeFindings, summarize, type LintSummary } from './lint.js';
import { RULES, ruleById, type Finding } from './rules.js';

export interface ProjectLint {
  files: string[];
  findings: Finding[];
  summary: LintSummary;
}

/**
 * Lints the files as written and, when given, the merged model (interpolated by Compose).
 * Findings name their file relative to `baseDir` (e.g. the current directory, `../` included);
 * without it, relative to projectDir, or absolute when outside it.
 */
export async function lintProject(opts: {
  projectDir: string;
  files: string[];
  merged?: ComposeModel;
  baseDir?: string;
  /** sandstack.yaml, for declared shared datasets (data.shared). */
  config?: SandstackConfig;
  configFile?: string;
  /** The state home (its own data roots are not host mounts of the project). */
  stateHome?: string;
}): Promise<ProjectLint> {
  const lintOpts = await lintOptionsFor({ projectDir: opts.projectDir, homeDir: os.homedir(), config: opts.config, configFile: opts.configFile, stateHome: opts.stateHome });
  const written: Finding[] = [];
  for (const file of opts.files) {
    const rel = path.relative(opts.baseDir ?? opts.projectDir, file);
    const label = !rel || path.isAbsolute(rel) || (!opts.baseDir && rel.startsWith('..')) ? file : rel;
    written.push(...lintComposeText(await readFile(file, 'utf8'), label, lintOpts));
  }
  written.push(...(await lintDotEnvFiles(opts.files, { projectDir: opts.projectDir, baseDir: opts.baseDir })));
  const merged = opts.merged ? lintModel(opts.merged, { ...lintOpts, interpolated: true }) : [];
  const findings = mergeFindings(written, merged);
  return { files: opts.files, findings, summary: summarize(findings) };
}

export interface FixResult {
  file: string;
  changed: boolean;
  changes: FixChange[];
}

/** Rewrites the files in place (comments and formatting kept); returns what changed. */
export async function fixFiles(files: string[]): Promise<FixResult[]> {
  const out: FixResult[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const r = fixComposeText(text, { file });
    if (r.text !== text) await writeFile(file, r.text);
    out.push({ file, changed: r.text !== text, changes: r.changes });
  }
  return out;
}

export interface Allowance {
  rule: string;
  ruleId: string;
  service: string;
  reason: string;
}

export interface Enforcement {
  /** Error findings that block the start. */
  blocking: Finding[];
  /** Findings allowed by sandstack.yaml, with the reason. */
  allowed: { finding: Finding; reason: string }[];
  /** Findings sandstack's rendering neutralises (container names, host ports, bindings, externals). */
  neutralised: Finding[];
  warnings: Finding[];
  allowances: Allowance[];
}

export function allowancesOf(config: SandstackConfig): Allowance[] {
  return config.policy.allow.map((a) => {
    // sandstack.yaml may name a rule by id (SS005) or name (privileged); the schema checked it exists.
    const rule = RULES.find((r) => r.id === a.rule || r.name === a.rule) ?? ruleById(a.rule);
    return { rule: rule.name, ruleId: rule.id, service: a.service, reason: a.reason };
  });
}

export function enforce(findings: Finding[], config: SandstackConfig): Enforcement {
  const allowances = allowancesOf(config);
  const result: Enforcement = { blocking: [], allowed: [], neutralised: [], warnings: [], allowances };
  for (const f of findings) {
    if (f.neutralisedByRender) {
      result.neutralised.push(f);
      continue;
    }
    if (f.severity !== 'error') {
      result.warnings.push(f);
      continue;
    }
    const a = allowances.find((x) => x.ruleId === f.ruleId && x.service === f.service);
    if (a) result.allowed.push({ finding: f, reason: a.reason });
    else result.blocking.push(f);
  }
  return result;
}

export function findingLine(f: Finding): string {
  const where = f.line !== undefined ? `${f.file}:${f.line}:${f.column ?? 1}` : f.file;
  return `${where}: ${f.severity} ${f.ruleId} ${f.rule}: ${f.message}`;
}

/**
 * The text report of `sandstack lint`: what --fix changed, each finding with its fix, why the merged
 * model was not checked (Compose's reason, every line), and the summary. File paths as given.
 */
export function lintTextLines(r: { findings: Finding[]; fixes?: FixResult[]; mergedError?: string; summary: LintSummary }): string[] {
  const fixed = (r.fixes ?? []).flatMap((x) =>
    x.changes.map((c) => `${x.file}:${c.line}:${c.column}: ${c.applied ? 'fixed' : 'not fixed'} ${c.kind} (${c.service})${c.applied ? '' : `: ${c.reason ?? ''} — write ${c.after}`}`),
  );
  const findings = r.findings.map((f) => `${findingLine(f)}\n    fix: ${f.fix}${f.neutralisedByRender ? ' (sandstack neutralises this when it runs the stack)' : ''}`);
  const merged: string[] = [];
  if (r.mergedError) {
    const [first, ...rest] = r.mergedError.split(/\r?\n/).filter((l) => l.trim());
    merged.push(`merged model not checked: ${first ?? ''}`, ...rest.map((l) => `    ${l.trim()}`));
  }
  return [...fixed, ...findings, ...merged, r.summary.text];
}

/** Throws SANDSTACK_POLICY_VIOLATION naming every blocking finding and how to allow it. */
export function assertNoBlocking(e: Enforcement): void {
  if (e.blocking.length === 0) return;
  throw new SandstackError('SANDSTACK_POLICY_VIOLATION', `The compose project breaks ${e.blocking.length} guardrail(s):\n  ${e.blocking.map(findingLine).join('\n  ')}`, {
    hint: `Fix them (\`sandstack lint\` shows each fix), or allow one deliberately in sandstack.yaml: policy: { allow: [ { rule: ${e.blocking[0]!.ruleId}, service: ${e.blocking[0]!.service ?? '<service>'}, reason: "why this is acceptable" } ] }.`,
    details: { findings: e.blocking },
  });
}
