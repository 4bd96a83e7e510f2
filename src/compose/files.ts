/** Which compose files a project uses: configured ones, COMPOSE_FILE, or Compose's own discovery. */
import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { SandstackError } from '../errors.js';
import type { ComposeProject } from './cli.js';

export const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

async function exists(f: string): Promise<boolean> {
  return access(f).then(
    () => true,
    () => false,
  );
}

export interface ComposeFileVariable {
  /** Absolute files, in order. */
  files: string[];
  /** The variable's raw value. */
  value: string;
  /** Where it was set: the environment, or the project's .env (the environment wins, as in Compose). */
  from: 'environment' | '.env';
}

/**
 * COMPOSE_FILE as Compose reads it: from the environment, else from the project's `.env`; split on
 * COMPOSE_PATH_SEPARATOR (default the platform's path list separator, `:`), each entry relative to
 * the project dir.
 */
export async function composeFileVariable(projectDir: string, env: NodeJS.ProcessEnv): Promise<ComposeFileVariable | undefined> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotenv(await readFile(path.join(projectDir, '.env'), 'utf8'));
  } catch {
    // no .env
  }
  const fromEnv = env.COMPOSE_FILE !== undefined && env.COMPOSE_FILE !== '';
  const value = fromEnv ? env.COMPOSE_FILE! : dotenv.COMPOSE_FILE;
  if (value === undefined || value.trim() === '') return undefined;
  const separator = env.COMPOSE_PATH_SEPARATOR || dotenv.COMPOSE_PATH_SEPARATOR || path.delimiter;
  const files = value
    .split(separator)
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => path.resolve(projectDir, f));
  return files.length > 0 ? { files, value, from: fromEnv ? 'environment' : '.env' } : undefined;
}

/** Files in `dir` that look like compose files but are not default-named (for the not-found hint). */
async function composeLikeFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /compose.*\.ya?ml$/i.test(n) && !DEFAULT_COMPOSE_FILES.includes(n)).sort();
}

/**
 * Returns the absolute compose files to pass with -f, or [] for Compose's own discovery.
 * Order: `configured` (compose.files of sandstack.yaml, relative to `projectDir`), then COMPOSE_FILE
 * (environment or `.env`), then the default names.
 */
export async function locateComposeFiles(projectDir: string, configured: string[] | undefined, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string[]> {
  if (configured && configured.length > 0) {
    const files = configured.map((f) => path.resolve(projectDir, f));
    for (const f of files) {
      if (!(await exists(f))) {
        throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `Compose file ${f} does not exist (listed in compose.files of sandstack.yaml).`, {
          hint: 'Fix the path in compose.files; paths are relative to sandstack.yaml.',
        });
      }
    }
    return files;
  }
  const variable = await composeFileVariable(projectDir, opts.env ?? process.env);
  if (variable) {
    for (const f of variable.files) {
      if (!(await exists(f))) {
        const where = variable.from === 'environment' ? 'COMPOSE_FILE in the environment' : `COMPOSE_FILE in ${path.join(projectDir, '.env')}`;
        throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `Compose file ${f} does not exist (listed in ${where}: ${variable.value}).`, {
          hint: `Fix COMPOSE_FILE; its paths are relative to ${projectDir}.`,
        });
      }
    }
    return variable.files;
  }
  for (const name of DEFAULT_COMPOSE_FILES) if (await exists(path.join(projectDir, name))) return [];
  const seen = await composeLikeFiles(projectDir);
  const example = seen[0] ?? '<file>';
  throw new SandstackError(
    'SANDSTACK_COMPOSE_NOT_FOUND',
    `No compose file in ${projectDir} (looked for ${DEFAULT_COMPOSE_FILES.join(', ')}; COMPOSE_FILE is not set)${seen.length ? `; found ${seen.join(', ')}, which Compose does not pick up by itself` : ''}.`,
    {
      hint:
        `Name the files: \`sandstack init -f ${example}\` (repeat -f for several) writes them to compose.files in sandstack.yaml; ` +
        `or list them under compose.files in an existing sandstack.yaml; or set COMPOSE_FILE=${example} (in the environment or the project's .env). ` +
        `\`sandstack lint ${example}\` lints a file directly.`,
    },
  );
}

/** The files Compose reads for a project: the configured ones, or what its discovery finds. */
export async function composeFilesOf(project: Pick<ComposeProject, 'projectDir' | 'files'>): Promise<string[]> {
  if (project.files.length > 0) return project.files;
  const out: string[] = [];
  for (const name of DEFAULT_COMPOSE_FILES) {
    const f = path.join(project.projectDir, name);
    if (await exists(f)) {
      out.push(f);
      const override = f.replace(/\.(ya?ml)$/, '.override.$1');
      if (await exists(override)) out.push(override);
      break;
    }
  }
  return out;
}

/**
 * The project directory Compose uses for these files without --project-directory: the first file's
 * folder (relative paths inside the files, and `.env`, resolve from there); `fallback` for discovery.
 */
export function composeProjectDir(fallback: string, files: string[]): string {
  return files.length > 0 ? path.dirname(files[0]!) : fallback;
}
