/**
 * Required environment variables: those sandstack.yaml lists under env.required, and those the
 * compose files demand with `${VAR:?message}` / `${VAR?message}`. Values come from the environment
 * or the project's `.env` file (read with dotenv, as Compose reads it).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { LineCounter, parseDocument, visit } from 'yaml';

export interface MissingVariable {
  name: string;
  /** Where it is required: `sandstack.yaml env.required` or `compose.yaml:12`. */
  requiredBy: string;
  message?: string;
}

/** `${VAR:?msg}` or `${VAR?msg}`, not preceded by `$` (`$${...}` is Compose's escape for a literal). */
const REQUIRED = /(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?)\?([^}]*)\}/g;

export async function findMissingVariables(opts: { projectDir: string; composeFiles: string[]; required: string[]; env: NodeJS.ProcessEnv }): Promise<MissingVariable[]> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseDotenv(await readFile(path.join(opts.projectDir, '.env'), 'utf8'));
  } catch {
    // no .env
  }
  const value = (name: string) => opts.env[name] ?? dotenv[name];
  const missing: MissingVariable[] = [];
  const add = (m: MissingVariable) => {
    if (!missing.some((x) => x.name === m.name)) missing.push(m);
  };
  for (const name of opts.required) {
    if (!value(name)) add({ name, requiredBy: 'sandstack.yaml env.required' });
  }
  for (const file of opts.composeFiles) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    // Read through the YAML parser: comments are not values, and each scalar knows its line.
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc });
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value !== 'string') return;
        for (const m of node.value.matchAll(REQUIRED)) {
          const [, name, colon, message] = m;
          const v = value(name!);
          if (colon ? !v : v === undefined) {
            const line = node.range ? lc.linePos(node.range[0]).line : undefined;
            add({ name: name!, requiredBy: `${path.basename(file)}${line ? `:${line}` : ''}`, message: message?.trim() || undefined });
          }
        }
      },
    });
  }
  return missing;
}
