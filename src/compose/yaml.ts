/**
 * Reading and writing Compose models without YAML version ambiguity.
 *
 * Compose v1 reads YAML 1.1 (PyYAML): plain `no`, `on`, `2015-01-01`, `0755`, `1:20` are booleans,
 * dates and numbers there. Compose v2 reads with Go's yaml.v3 (mostly YAML 1.2, plus some 1.1 forms
 * such as `0755` as octal). A model sandstack writes must read back in either exactly as Compose
 * resolved it, so every string that could be read as anything else under either version is quoted.
 */
import { Document, parse, parseDocument, visit } from 'yaml';

/**
 * PyYAML's implicit resolvers (resolver.py), which Compose v1 uses: a plain scalar matching one of
 * these is not a string there. They differ from the `yaml` package's 1.1 schema (PyYAML reads `y`,
 * `n` and `1e3` as strings; it reads `=` as a tag it cannot construct).
 */
const PYYAML_IMPLICIT = [
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  /^(?:<<)$/,
  /^(?:~|null|Null|NULL|)$/,
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  /^(?:=)$/,
];

function pyyamlImplicit(s: string): boolean {
  return PYYAML_IMPLICIT.some((re) => re.test(s));
}

/** Would this string, written as a plain scalar, be read back as something other than itself? */
function misreadable(s: string): boolean {
  if (s === '' || s.trim() !== s || pyyamlImplicit(s)) return true;
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
  // YAML 1.1 as PyYAML resolves it: a plain scalar none of its resolvers claims stays a string
  // (the `yaml` package's 1.1 schema would read `y` as true and `1e3` as 1000).
  const doc = parseDocument(text, { version: '1.1' });
  if (doc.errors.length > 0) throw doc.errors[0];
  visit(doc, {
    Scalar(_key, node) {
      if (node.type === 'PLAIN' && typeof node.value !== 'string' && typeof node.source === 'string' && !pyyamlImplicit(node.source)) node.value = node.source;
    },
  });
  return doc.toJS({ maxAliasCount: -1 });
}

