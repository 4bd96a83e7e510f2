/**
 * Reading and writing Compose models without YAML version ambiguity.
 *
 * Compose v1 reads YAML 1.1 (PyYAML): plain `no`, `on`, `2015-01-01`, `0755`, `1:20` are booleans,
 * dates and numbers there. Compose v2 reads with Go's yaml.v3 (mostly YAML 1.2, plus some 1.1 forms
 * such as `0755` as octal). A model sandstack writes must read back in either exactly as Compose
 * resolved it, so every string that could be read as anything else under either version is quoted.
 */
import { Document, parse, visit } from 'yaml';

/** Would this string, written as a plain scalar, be read back as something other than itself? */
function misreadable(s: string): boolean {
  if (s === '' || s.trim() !== s) return true;
  for (const opts of [{ version: '1.1' }, { version: '1.2' }, { version: '1.2', schema: 'yaml-1.1' }] as const) {
    try {
      const doc = parse(s, opts as never) as unknown;
      if (doc !== s) return true;
    } catch {
      // not valid as a plain scalar: the stringifier quotes it on its own
    }
  }
  return false;
}

/**
 * The one way a rendered (isolated) model is written: to the state dir, printed by `render`, or put
 * into an evidence bundle. YAML 1.1 rules with every ambiguous string double-quoted (keys too), no
 * `%YAML` directive (yaml.v3 would reject `%YAML 1.1`).
 */
export function stringifyModel(model: unknown): string {
  const doc = new Document(model, { version: '1.1' });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && misreadable(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  // The 1.1 document is printed without a directive unless one was parsed.
  if (doc.directives) doc.directives.yaml.explicit = false;
  return doc.toString({ lineWidth: 0 });
}

/**
 * Parses what `compose config` printed or what sandstack wrote: JSON (v2 `--format json`) exactly,
 * YAML as YAML 1.1 (v1's PyYAML quotes every string 1.1 would misread; sandstack's own output quotes
 * them too). Throws the parser's error.
 */
export function parseModelText(text: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // YAML flow mapping, not JSON
    }
  }
  return parse(text, { version: '1.1', maxAliasCount: -1 });
}

