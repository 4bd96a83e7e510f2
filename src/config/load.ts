/**
 * Finds, parses and validates sandstack.yaml. Errors name the file, line and column, the key path,
 * and what was expected.
 */
import { readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { SandstackError } from '../errors.js';
import { ConfigSchema, type SandstackConfig } from './schema.js';

export const CONFIG_FILE = 'sandstack.yaml';

export interface LoadedConfig {
  config: SandstackConfig;
  /** Absolute path of sandstack.yaml, or undefined when running with defaults. */
  file?: string;
  /** Directory the compose files are relative to. */
  projectDir: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Looks for sandstack.yaml in `cwd` and its parents, stopping at `stopAt` (the worktree root). */
export async function findConfigFile(cwd: string, stopAt?: string): Promise<string | undefined> {
  let dir = path.resolve(cwd);
  const stop = stopAt ? path.resolve(stopAt) : undefined;
  for (;;) {
    const candidate = path.join(dir, CONFIG_FILE);
    if (await exists(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (dir === stop || parent === dir) return undefined;
    dir = parent;
  }
}

interface Position {
  line: number;
  col: number;
}

function positionOf(doc: Document, lc: LineCounter, keyPath: PropertyKey[], key?: string): Position | undefined {
  const parts = keyPath.map((p) => (typeof p === 'symbol' ? String(p) : p));
  let node: unknown = parts.length === 0 ? doc.contents : doc.getIn(parts, true);
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isNode(it.key) && String((it.key as { value?: unknown }).value) === key);
    node = pair?.key;
  }
  // Walk up until a node with a range is found (missing keys point at their parent).
  while (!(isNode(node) && node.range) && parts.length > 0) {
    parts.pop();
    node = parts.length === 0 ? doc.contents : doc.getIn(parts, true);
  }
  if (isNode(node) && node.range) {
    const pos = lc.linePos(node.range[0]);
    return { line: pos.line, col: pos.col };
  }
  return undefined;
}

function formatPath(p: PropertyKey[]): string {
  let out = '';
  for (const part of p) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

export interface ConfigProblem {
  file: string;
  line?: number;
  col?: number;
  path: string;
  message: string;
}

function describeIssues(issues: z.core.$ZodIssue[], doc: Document, lc: LineCounter, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const pos = positionOf(doc, lc, issue.path, key);
        problems.push({
          file,
          line: pos?.line,
          col: pos?.col,
          path: formatPath([...issue.path, key]),
          message: `unknown key "${key}"`,
        });
      }
      continue;
    }
    const pos = positionOf(doc, lc, issue.path);
    problems.push({ file, line: pos?.line, col: pos?.col, path: formatPath(issue.path), message: issue.message });
  }
  return problems;
}

function problemLine(p: ConfigProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.col}` : p.file;
  return `${where}: ${p.path}: ${p.message}`;
}

/**
 * Parses YAML text and validates it against a schema. Problems name the file, line and column, the
 * key path and what was expected (an unknown key of a strict object is named as such); `hint` says
 * where the reference is. Shared by sandstack.yaml and the user config (config/user.ts).
 */
export function parseYamlWith<S extends z.ZodType>(text: string, file: string, schema: S, hint: string): z.output<S> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      return { file, line: pos?.line, col: pos?.col, path: '(yaml)', message: e.message.split('\n')[0] ?? e.message };
    });
    throw new SandstackError('SANDSTACK_CONFIG_INVALID', `${file} is not valid YAML:\n  ${problems.map(problemLine).join('\n  ')}`, {
      hint: 'Fix the YAML syntax at the position shown.',
      details: { file, problems },
    });
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = describeIssues(result.error.issues, doc, lc, file);
    throw new SandstackError('SANDSTACK_CONFIG_INVALID', `${file} is invalid:\n  ${problems.map(problemLine).join('\n  ')}`, {
      hint,
      details: { file, problems },
    });
  }
  return result.data;
}

/** Parses and validates config text. Exported for unit tests. */
export function parseConfig(text: string, file: string): SandstackConfig {
  return parseYamlWith(text, file, ConfigSchema, 'See the config file reference in the README (or schema/sandstack.schema.json).');
}

/**
 * Loads the config from `explicitFile`, or from sandstack.yaml found from `cwd` upwards (not above
 * `stopAt`). Without one, defaults apply and the project directory is `cwd`.
 */
export async function loadConfig(cwd: string, opts: { explicitFile?: string; stopAt?: string } = {}): Promise<LoadedConfig> {
  const file = opts.explicitFile ? path.resolve(cwd, opts.explicitFile) : await findConfigFile(cwd, opts.stopAt);
  if (!file) {
    return { config: ConfigSchema.parse({}), projectDir: path.resolve(cwd) };
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new SandstackError('SANDSTACK_CONFIG_INVALID', `Cannot read ${file}: ${(cause as Error).message}`, {
      hint: 'Check the path given with --config.',
      cause,
    });
  }
  return { config: parseConfig(text, file), file, projectDir: path.dirname(file) };
}
