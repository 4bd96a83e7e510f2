/**
 * The schema of test/gate-corpus/cases/<name>/case.json: the real-world pattern a broken (or
 * healthy but unusual) stack stands for, and what `sandstack gate --fresh --json` must report on it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const CORPUS_DIR = path.dirname(fileURLToPath(import.meta.url));
export const CASES_DIR = path.join(CORPUS_DIR, 'cases');
/** Copied into every case's temp repository as ./support/ (the servers cases bind-mount or COPY). */
export const SUPPORT_DIR = path.join(CORPUS_DIR, 'support');
export const META_FILE = 'case.json';

/** Stages a gate can fail in (teardown is checked separately: it must always pass). */
export const FAIL_STAGES = ['config', 'build', 'start', 'healthy', 'probes', 'isolation', 'observability'] as const;
/** failure.reason of SANDSTACK_SERVICE_FAILED (a container event) ... */
export const SERVICE_REASONS = ['exited', 'oom-killed', 'unhealthy', 'restarted'] as const;
/** ... and of SANDSTACK_PORT_NOT_ANSWERING (the implicit check of published ports). */
export const PORT_REASONS = ['not-listening', 'loopback-only', 'not-http'] as const;

const ExpectSchema = z
  .strictObject({
    /** report.passed (and exit code 0 when true, non-zero otherwise). */
    passed: z.boolean(),
    /** failure.stage */
    stage: z.enum(FAIL_STAGES).optional(),
    /** failure.code */
    code: z.string().regex(/^SANDSTACK_[A-Z_]+$/).optional(),
    /** failure.service */
    service: z.string().min(1).optional(),
    /** failure.reason */
    reason: z.enum([...SERVICE_REASONS, ...PORT_REASONS]).optional(),
    /** failure.exitCode (the container's exit code) */
    exitCode: z.number().int().optional(),
    /** Substrings of failure.message. */
    messageIncludes: z.array(z.string().min(1)).optional(),
    /** Substrings of failure.hint. */
    hintIncludes: z.array(z.string().min(1)).optional(),
    /** A container event caused the failure: failure.detectedAfterMs is a number below 2000. */
    eventCaused: z.boolean().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.passed) {
      const extra = Object.keys(e).filter((k) => k !== 'passed');
      if (extra.length) ctx.addIssue({ code: 'custom', path: [], message: `a passing case expects nothing else (found ${extra.join(', ')})` });
      return;
    }
    if (!e.stage) ctx.addIssue({ code: 'custom', path: ['stage'], message: 'required when passed is false' });
    if (!e.code) ctx.addIssue({ code: 'custom', path: ['code'], message: 'required when passed is false' });
    if (e.reason && (SERVICE_REASONS as readonly string[]).includes(e.reason) && e.code !== 'SANDSTACK_SERVICE_FAILED') {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: `reason ${e.reason} belongs to SANDSTACK_SERVICE_FAILED` });
    }
    if (e.reason && (PORT_REASONS as readonly string[]).includes(e.reason) && e.code !== 'SANDSTACK_PORT_NOT_ANSWERING') {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: `reason ${e.reason} belongs to SANDSTACK_PORT_NOT_ANSWERING` });
    }
  });
export type Expect = z.infer<typeof ExpectSchema>;

export const CaseSchema = z
  .strictObject({
    /** The real-world pattern the case stands for (one sentence). */
    pattern: z.string().min(20),
    /** The failure kind (distinct per failing case; free for passing ones). */
    kind: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lowercase words joined by -'),
    expect: ExpectSchema,
    /** Which Compose versions the case applies to (default both). */
    compose: z.strictObject({ v1: z.boolean(), v2: z.boolean() }).default({ v1: true, v2: true }),
    /** Why v1 does not apply (required when compose.v1 is false). */
    v1Reason: z.string().min(10).optional(),
    /** Environment for the gate run (e.g. DOCKER_BUILDKIT). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
    /**
     * The harness listens on a free 127.0.0.1 port P before the run and sets ports.range to
     * { from: P, to: P } in the copied sandstack.yaml (a foreign process holding the only port).
     */
    holdPort: z.boolean().optional(),
  })
  .superRefine((m, ctx) => {
    if (!m.compose.v1 && !m.v1Reason) ctx.addIssue({ code: 'custom', path: ['v1Reason'], message: 'required when compose.v1 is false' });
  });
export type CaseMeta = z.infer<typeof CaseSchema>;

export interface Case {
  /** Folder name: also the instance id of the copy (short, a valid Compose project name). */
  name: string;
  dir: string;
  meta: CaseMeta | undefined;
  /** Why the case is unusable (bad case.json, missing files), checked by its own test. */
  error: string | undefined;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,29}$/;

export function loadCases(): Case[] {
  return readdirSync(CASES_DIR)
    .filter((n) => statSync(path.join(CASES_DIR, n)).isDirectory())
    .sort()
    .map((name) => {
      const dir = path.join(CASES_DIR, name);
      const problems: string[] = [];
      let meta: CaseMeta | undefined;
      if (!NAME.test(name)) problems.push(`folder name ${name} is not a short instance id (${NAME})`);
      for (const f of ['compose.yaml', 'sandstack.yaml']) if (!existsSync(path.join(dir, f))) problems.push(`${f} is missing`);
      const compose = path.join(dir, 'compose.yaml');
      if (existsSync(compose) && !/^# Pattern: \S/.test(readFileSync(compose, 'utf8'))) problems.push('compose.yaml must start with "# Pattern: ..."');
      const file = path.join(dir, META_FILE);
      if (!existsSync(file)) problems.push(`${META_FILE} is missing`);
      else {
        try {
          const r = CaseSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
          if (r.success) meta = r.data;
          else problems.push(...r.error.issues.map((i) => `${META_FILE} ${i.path.join('.') || '(root)'}: ${i.message}`));
        } catch (e) {
          problems.push(`${META_FILE} is not JSON: ${(e as Error).message}`);
        }
      }
      return { name, dir, meta: problems.length ? undefined : meta, error: problems.length ? problems.join('; ') : undefined };
    });
}
