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

/** Values shorter than this are never redacted: replacing them would hit unrelated text. */
export const MIN_SECRET_LENGTH = 8;
const BOOLEAN_LIKE = /^(true|false|yes|no|on|off|y|n|null|nil|none|~)$/i;

/**
 * Whether a value can be redacted at all: long enough, and not a word (true, on, null) or number
 * that also appears as ordinary text everywhere (labels, flags, ports).
 */
export function isRedactable(value: string): boolean {
  const v = value.trim();
  if (v.length < MIN_SECRET_LENGTH) return false;
  if (BOOLEAN_LIKE.test(v)) return false;
  if (/^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$/.test(v) || Number.isFinite(Number(v))) return false;
  return true;
}

/** Keeps secret-like names with values long enough to be meaningful; longest values first. */
export function collectSecrets(candidates: { name: string; value: string | null | undefined; always?: boolean }[]): Secret[] {
  const byValue = new Map<string, Secret>();
  for (const c of candidates) {
    if (!c.value || !isRedactable(c.value)) continue;
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
    if (!isRedactable(s.value)) continue;
    const parts = out.split(s.value);
    if (parts.length > 1) {
      count += parts.length - 1;
      out = parts.join(`${MARKER_PREFIX}${s.name}]`);
    }
  }
  return { text: out, count };
}

/**
 * Redacts every text file under `dir` in place (except the relative paths in `skip`, redacted
 * structurally by their writer); returns the number of replacements.
 */
export async function redactTree(dir: string, secrets: Secret[], skip: string[] = []): Promise<number> {
  if (secrets.length === 0) return 0;
  let total = 0;
  const entries = (await readdir(dir, { recursive: true })) as string[];
  for (const e of entries) {
    if (skip.includes(e.split(path.sep).join('/'))) continue;
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

/** Keys whose values are names, paths or labels: never redacted (a secret's text there is a coincidence). */
const NOT_VALUES = new Set([
  'labels', 'image', 'name', 'container_name', 'hostname', 'domainname', 'volumes', 'context', 'dockerfile', 'working_dir',
  'env_file', 'networks', 'network_mode', 'extra_hosts', 'file', 'driver', 'driver_opts', 'logging', 'ports', 'profiles',
  'depends_on', 'secrets', 'configs', 'external_links', 'links', 'tmpfs', 'devices', 'cgroup_parent', 'platform', 'pid', 'ipc',
]);

/**
 * Structured redaction of a Compose model: secret values are replaced in the values of services'
 * variables (environment values, build args) and in their other values (a command holding a
 * password), also inside a longer value such as a URL. Keys, labels, image and resource names and
 * paths (NOT_VALUES) are never touched, so the model stays valid; neither are top-level volumes and
 * networks. Returns a new model and the number of replacements.
 */
export function redactModel<T>(model: T, secrets: Secret[]): { model: T; count: number } {
  const usable = secrets.filter((s) => isRedactable(s.value)).sort((a, b) => b.value.length - a.value.length);
  let count = 0;
  const inValue = (v: string): string => {
    const r = redactText(v, usable);
    count += r.count;
    return r.text;
  };
  /** Variables as a map or a `NAME=value` list: values redacted, names kept. */
  const variables = (vars: unknown): unknown => {
    if (Array.isArray(vars)) {
      return vars.map((item) => {
        if (typeof item !== 'string') return item;
        const eq = item.indexOf('=');
        return eq < 0 ? item : `${item.slice(0, eq + 1)}${inValue(item.slice(eq + 1))}`;
      });
    }
    if (vars && typeof vars === 'object') {
      return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? inValue(v) : v]));
    }
    return vars;
  };
  const walk = (node: unknown, key: string | undefined, parentKey: string | undefined): unknown => {
    if (key !== undefined && NOT_VALUES.has(key)) return node;
    if (key === 'environment' || (key === 'args' && parentKey === 'build')) return variables(node);
    if (typeof node === 'string') return inValue(node);
    if (Array.isArray(node)) return node.map((v) => walk(v, undefined, key));
    if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, k, key)]));
    return node;
  };
  const services = (model as { services?: Record<string, unknown> })?.services;
  if (!services || typeof services !== 'object') return { model: structuredClone(model), count: 0 };
  const out = structuredClone(model) as { services: Record<string, unknown> };
  out.services = Object.fromEntries(Object.entries(services).map(([name, svc]) => [name, walk(svc, undefined, 'services')]));
  return { model: out as T, count };
}
