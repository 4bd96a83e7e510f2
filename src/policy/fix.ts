/**
 * Auto-fix for a compose file as written: removes `container_name` entries and binds short-syntax
 * published ports to 127.0.0.1 with a parameterised host port. It splices the original text at the
 * YAML node ranges, so comments, key order, quoting and formatting elsewhere stay byte-identical.
 */
import { isNode, isScalar, Scalar } from 'yaml';
import { SandstackError } from '../errors.js';
import { parseComposeText, rootView, type YamlEntryView, type YamlValueView } from './lint.js';
import { planPorts, servicesOf, type CheckContext } from './rules.js';

export interface FixChange {
  kind: 'remove-container-name' | 'bind-port-loopback';
  /** The rules the change addresses. */
  ruleIds: string[];
  service: string;
  /** 1-based position of the changed node in the original text. */
  line: number;
  column: number;
  /** The original text (the whole removed line(s), or the port scalar as written). */
  before: string;
  /** The replacement ('' for a removal); for a change that was not applied, what to write by hand. */
  after: string;
  applied: boolean;
  /** Why a change was not applied. */
  reason?: string;
}

export interface FixOptions {
  /** The file name, for error messages. */
  file?: string;
}

interface Edit {
  start: number;
  end: number;
  replacement: string;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    last = i;
  }
  return { line, column: offset - last };
}

/** The text range that removes a map entry (its whole line(s) in a block map; item and comma in a flow map). */
function entryRemoval(text: string, entry: YamlEntryView): Edit | { reason: string } {
  const keyRange = entry.keyNode.range;
  if (!keyRange) return { reason: 'no source position for the key' };
  const keyStart = keyRange[0];
  const value = entry.pair.value;
  const valueEnd = isNode(value) && value.range ? value.range[1] : keyRange[1];
  if (entry.parent.items.length === 1 && !entry.parent.flow) {
    return { reason: 'it is the only key of its mapping (removing it would leave an empty value)' };
  }
  if (entry.parent.flow) {
    let end = valueEnd;
    let j = end;
    while (text[j] === ' ' || text[j] === '\t') j++;
    if (text[j] === ',') {
      end = j + 1;
      while (text[end] === ' ' || text[end] === '\t') end++;
      return { start: keyStart, end, replacement: '' };
    }
    let i = keyStart - 1;
    while (i >= 0 && /\s/.test(text[i]!)) i--;
    if (text[i] === ',') return { start: i, end: valueEnd, replacement: '' };
    return { start: keyStart, end: valueEnd, replacement: '' };
  }
  const lineStart = text.lastIndexOf('\n', keyStart - 1) + 1;
  if (!/^[ \t]*$/.test(text.slice(lineStart, keyStart))) return { reason: 'the key does not start its line' };
  // A block scalar's range ends after its last line break: the entry ends right there.
  if (valueEnd > keyStart && text[valueEnd - 1] === '\n') return { start: lineStart, end: valueEnd, replacement: '' };
  const nl = text.indexOf('\n', valueEnd);
  const rest = text.slice(valueEnd, nl < 0 ? text.length : nl);
  if (!/^[ \t]*(#.*)?\r?$/.test(rest)) return { reason: 'something else follows the value on its line' };
  return { start: lineStart, end: nl < 0 ? text.length : nl + 1, replacement: '' };
}

function quoteLike(node: Scalar, value: string): string | undefined {
  if (node.type === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  if (node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.PLAIN || node.type === undefined) {
    return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  return undefined; // block scalars
}

/**
 * Fixes a compose file's text: removes every service's `container_name` (SS001) and rewrites
 * short-syntax published ports that are not bound to loopback or have a literal host port (SS002,
 * SS003) into `"127.0.0.1:${<SERVICE>_PORT:-<host port>}:<container port>[/proto]"`. Long-syntax
 * ports, port ranges and ports defined in a shared anchor are reported with applied=false.
 * Running it on its own output changes nothing.
 */
export function fixComposeText(text: string, opts: FixOptions = {}): { text: string; changes: FixChange[] } {
  const file = opts.file ?? 'compose file';
  const parsed = parseComposeText(text, file);
  const root = rootView(parsed);
  const services = servicesOf(root);
  const changes: FixChange[] = [];
  const edits = new Map<number, Edit>();
  const addEdit = (e: Edit): boolean => {
    const existing = edits.get(e.start);
    if (existing) return existing.end === e.end && existing.replacement === e.replacement;
    for (const o of edits.values()) if (e.start < o.end && o.start < e.end) return false;
    edits.set(e.start, e);
    return true;
  };

  for (const s of services) {
    const cn = s.view.get('container_name') as YamlEntryView | undefined;
    if (!cn || !cn.keyNode.range) continue;
    const pos = lineColumn(text, cn.keyNode.range[0]);
    const removal = entryRemoval(text, cn);
    if ('reason' in removal) {
      if (!changes.some((c) => c.kind === 'remove-container-name' && c.line === pos.line && c.column === pos.column)) {
        const v = cn.pair.value;
        const end = isNode(v) && v.range ? v.range[1] : cn.keyNode.range[1];
        const before = text.slice(cn.keyNode.range[0], end);
        changes.push({ kind: 'remove-container-name', ruleIds: ['SS001'], service: s.name, ...pos, before, after: '', applied: false, reason: removal.reason });
      }
      continue;
    }
    const shared = edits.has(removal.start);
    const ok = addEdit(removal);
    if (shared) continue; // the same anchored entry, already removed for another service
    changes.push({
      kind: 'remove-container-name',
      ruleIds: ['SS001'],
      service: s.name,
      ...pos,
      before: text.slice(removal.start, removal.end),
      after: '',
      applied: ok,
      ...(ok ? {} : { reason: 'overlaps another change' }),
    });
  }

  const ctx: CheckContext = { mode: 'written', projectDir: '/', homeDir: '/', interpolated: false };
  for (const plan of planPorts(services, ctx)) {
    const entry = plan.entry as YamlValueView;
    const node = entry.node;
    const offset = node?.range?.[0];
    const pos = offset !== undefined ? lineColumn(text, offset) : { line: 0, column: 0 };
    const ruleIds = [...(plan.notLoopback ? ['SS002'] : []), ...(plan.fixedHostPort ? ['SS003'] : [])];
    const base = { kind: 'bind-port-loopback' as const, ruleIds, service: plan.service, ...pos };
    const before = node?.range ? text.slice(node.range[0], node.range[1]).trimEnd() : plan.info.display;
    const notApplied = (after: string, reason: string) => changes.push({ ...base, before, after, applied: false, reason });
    if (plan.info.syntax === 'long') {
      notApplied(plan.longAdvice ?? '', 'long-syntax port: not auto-fixable, set host_ip (and a parameterised published port) by hand');
      continue;
    }
    if (!plan.replacement) {
      notApplied('', 'port range: not auto-fixable');
      continue;
    }
    if (entry.viaAlias) {
      notApplied(`"${plan.replacement}"`, 'defined in a shared anchor (used through an alias): fix it there by hand');
      continue;
    }
    if (!isScalar(node) || !node.range) {
      notApplied(`"${plan.replacement}"`, 'no source position');
      continue;
    }
    const quoted = quoteLike(node, plan.replacement);
    if (!quoted) {
      notApplied(`"${plan.replacement}"`, 'block scalar: not auto-fixable');
      continue;
    }
    const ok = addEdit({ start: node.range[0], end: node.range[1], replacement: quoted });
    changes.push({ ...base, before, after: quoted, applied: ok, ...(ok ? {} : { reason: 'overlaps another change' }) });
  }

  let out = text;
  for (const e of [...edits.values()].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.replacement + out.slice(e.end);
  }
  if (out !== text) {
    try {
      parseComposeText(out, file);
    } catch (cause) {
      throw new SandstackError('SANDSTACK_INTERNAL', `Fixing ${file} produced invalid YAML; the file was left as it was.`, {
        hint: 'Please report this with the compose file; fix the findings by hand meanwhile.',
        cause,
      });
    }
  }
  changes.sort((a, b) => a.line - b.line || a.column - b.column);
  return { text: out, changes };
}
