/**
 * Secret redaction for everything written into an evidence bundle: values of secret-like variables
 * (in the rendered model, the host environment, the project's .env) and values sandstack injected
 * as secrets are replaced by `[REDACTED:<NAME>]`.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SECRET_NAME = /(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH|_KEY$|^KEY$)/i;
export const MARKER_PREFIX = '[REDACTED:';

export interface Secret {
  name: string;
  value: string;
}

/** Keeps secret-like names with values long enough to be meaningful; longest values first. */
export function collectSecrets(candidates: { name: string; value: string | null | undefined; always?: boolean }[]): Secret[] {
  const byValue = new Map<string, Secret>();
  for (const c of candidates) {
    if (!c.value || c.value.length < 4) continue;
    if (c.value.includes('REDACTED:')) continue; // already a marker (e.g. read back from a redacted file)
    if (!c.always && !SECRET_NAME.test(c.name)) continue;
    if (!byValue.has(c.value)) byValue.set(c.value, { name: c.name, value: c.value });
  }
  return [...byValue.values()].sort((a, b) => b.value.length - a.value.length);
}

export function redactText(text: string, secrets: Secret[]): { text: string; count: number } {
  let count = 0;
  let out = text;
  for (const s of secrets) {
    const parts = out.split(s.value);
    if (parts.length > 1) {
      count += parts.length - 1;
      out = parts.join(`${MARKER_PREFIX}${s.name}]`);
    }
  }
  return { text: out, count };
}

/** Redacts every text file under `dir` in place; returns the number of replacements. */
export async function redactTree(dir: string, secrets: Secret[]): Promise<number> {
  if (secrets.length === 0) return 0;
  let total = 0;
  const entries = (await readdir(dir, { recursive: true })) as string[];
  for (const e of entries) {
    const file = path.join(dir, e);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.size > 64 * 1024 * 1024) continue;
    const buf = await readFile(file);
    if (buf.includes(0)) continue; // binary (e.g. a screenshot): no text secrets to replace
    const { text, count } = redactText(buf.toString('utf8'), secrets);
    if (count > 0) {
      await writeFile(file, text);
      total += count;
    }
  }
  return total;
}

/** Redacts every string inside a JSON-like value (before it is serialized, so escaping cannot hide a secret). */
export function redactValue<T>(value: T, secrets: Secret[]): T {
  if (typeof value === 'string') return redactText(value, secrets).text as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, secrets)])) as T;
  }
  return value;
}
