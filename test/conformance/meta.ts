/**
 * The schema of test/conformance/projects/<name>/conformance.json: what real-world pattern a
 * project stands for, which Compose versions it applies to, how to run it and what to expect.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const CONFORMANCE_DIR = path.dirname(fileURLToPath(import.meta.url));
export const PROJECTS_DIR = path.join(CONFORMANCE_DIR, 'projects');
export const SUPPORT_DIR = path.join(CONFORMANCE_DIR, 'support');
export const META_FILE = 'conformance.json';

const PublishEntry = z.strictObject({
  service: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['http', 'https', 'tcp', 'udp']),
});
export type PublishEntry = z.infer<typeof PublishEntry>;

export const MetaSchema = z
  .strictObject({
    /** The real-world pattern the project stands for (one sentence). */
    pattern: z.string().min(20),
    /** Features the project covers (free text tags, used in the coverage report). */
    covers: z.array(z.string().min(1)).min(1),
    /** Which Compose versions the source is valid for. */
    compose: z.strictObject({ v1: z.boolean(), v2: z.boolean() }),
    /** Why v1 does not apply (required when compose.v1 is false). */
    v1Reason: z.string().min(10).optional(),
    /** Environment variables set for every sandstack and Compose run of the project. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
    init: z
      .strictObject({
        /** Extra arguments for `sandstack init` (e.g. ["-f", "deploy/dev.yml"]). */
        args: z.array(z.string()).optional(),
        /** The exact set of publish entries init must propose. */
        publish: z.array(PublishEntry).optional(),
        /** Variables init must list under env.required. */
        required: z.array(z.string()).optional(),
        /** Variables init must turn into generated secrets. */
        secrets: z.array(z.string()).optional(),
      })
      .optional(),
    /**
     * Merged into the sandstack.yaml init wrote (what a user adds by hand: allowances, extra
     * secrets, env.allow). Objects merge, arrays are concatenated.
     */
    config: z.record(z.string(), z.unknown()).optional(),
    render: z
      .strictObject({
        /** Rendering must be refused with this error (exit 2). */
        refusal: z.strictObject({ code: z.string().regex(/^SANDSTACK_[A-Z_]+$/), messageIncludes: z.string().optional() }),
      })
      .optional(),
    /** In the subset that runs `sandstack gate --fresh` on the real engine, per Compose version. */
    gate: z.strictObject({ v1: z.boolean().optional(), v2: z.boolean().optional() }).optional(),
    /**
     * Files of test/conformance/support/ the copy gets before anything runs, as `<support file>:
     * <destination relative to the project>` (the small servers several projects build into images).
     */
    support: z.record(z.string().regex(/^[\w.-]+$/), z.array(z.string().min(1))).optional(),
  })
  .superRefine((m, ctx) => {
    if (!m.compose.v1 && !m.v1Reason) ctx.addIssue({ code: 'custom', path: ['v1Reason'], message: 'required when compose.v1 is false' });
    if (!m.compose.v1 && m.gate?.v1) ctx.addIssue({ code: 'custom', path: ['gate', 'v1'], message: 'gate.v1 on a project that does not apply to v1' });
    if (!m.compose.v2 && m.gate?.v2) ctx.addIssue({ code: 'custom', path: ['gate', 'v2'], message: 'gate.v2 on a project that does not apply to v2' });
    if (m.render?.refusal && (m.gate?.v1 || m.gate?.v2)) ctx.addIssue({ code: 'custom', path: ['gate'], message: 'a project whose rendering is refused cannot be gated' });
    const args = m.init?.args ?? [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-f' || args[i] === '--file') {
        if (!args[i + 1] || args[i + 1]!.startsWith('-')) ctx.addIssue({ code: 'custom', path: ['init', 'args', i], message: '-f needs a file' });
        i++;
      }
    }
  });
export type Meta = z.infer<typeof MetaSchema>;

export interface Project {
  name: string;
  dir: string;
  /** The raw text of conformance.json (validated separately, so a bad file fails one test). */
  metaText: string;
  meta: Meta | undefined;
  metaError: string | undefined;
  /** The compose files passed with -f (from init.args), relative to the project. */
  files: string[];
}

export function composeFileArgs(meta: Meta | undefined): string[] {
  const args = meta?.init?.args ?? [];
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if ((args[i] === '-f' || args[i] === '--file') && args[i + 1]) files.push(args[++i]!);
  }
  return files;
}

export function loadProjects(): Project[] {
  return readdirSync(PROJECTS_DIR)
    .filter((n) => statSync(path.join(PROJECTS_DIR, n)).isDirectory())
    .sort()
    .map((name) => {
      const dir = path.join(PROJECTS_DIR, name);
      const file = path.join(dir, META_FILE);
      const metaText = existsSync(file) ? readFileSync(file, 'utf8') : '';
      let meta: Meta | undefined;
      let metaError: string | undefined;
      try {
        const r = MetaSchema.safeParse(JSON.parse(metaText));
        if (r.success) meta = r.data;
        else metaError = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      } catch (e) {
        metaError = existsSync(file) ? `not JSON: ${(e as Error).message}` : `${META_FILE} is missing`;
      }
      return { name, dir, metaText, meta, metaError, files: composeFileArgs(meta) };
    });
}

/** The compose file a project's pattern comment must head: the first -f file, else the default names. */
export function mainComposeFile(p: Project): string | undefined {
  if (p.files.length > 0) return path.join(p.dir, p.files[0]!);
  for (const n of ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml']) {
    if (existsSync(path.join(p.dir, n))) return path.join(p.dir, n);
  }
  // COMPOSE_FILE in .env: the first file listed.
  const dotenv = path.join(p.dir, '.env');
  if (existsSync(dotenv)) {
    const m = /^COMPOSE_FILE=(.+)$/m.exec(readFileSync(dotenv, 'utf8'));
    if (m) return path.join(p.dir, m[1]!.trim().split(/[:;]/)[0]!);
  }
  return undefined;
}
