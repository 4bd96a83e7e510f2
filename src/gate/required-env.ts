/**
 * Required environment variables: those sandstack.yaml lists under env.required, and those the
 * compose files demand with `${VAR:?message}` / `${VAR?message}`. Values come from the environment
 * or the project's `.env` file (read with dotenv, as Compose reads it).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';

export interface MissingVariable {
  name: string;
  /** Where it is required: `sandstack.yaml env.required` or `compose.yaml:12`. */
  requiredBy: string;
  message?: string;
}

const REQUIRED = /\$\{([A-Za-z_][A-Za-z0-9_]*)(:?)\?([^}]*)\}/g;

export async function findMissingVariables(opts: { projectDir: string; composeFiles: string[]; required: string[]; env: NodeJS.ProcessEnv }): Promise<MissingVariable[]> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotenv(await readFile(path.join(opts.projectDir, '.env'), 'utf8'));
  } catch {
    // no .env
  }
  const value = (name: string) => opts.env[name] ?? dotenv[name];
  const missing: MissingVariable[] = [];
  for (const name of opts.required) {
    if (!value(name)) missing.push({ name, requiredBy: 'sandstack.yaml env.required' });
  }
  for (const file of opts.composeFiles) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trimStart().startsWith('#')) return;
      for (const m of line.matchAll(REQUIRED)) {
        const [, name, colon, message] = m;
        const v = value(name!);
        const isMissing = colon ? !v : v === undefined;
        if (isMissing && !missing.some((x) => x.name === name)) {
          missing.push({ name: name!, requiredBy: `${path.basename(file)}:${i + 1}`, message: message?.trim() || undefined });
        }
      }
    });
  }
  return missing;
}
