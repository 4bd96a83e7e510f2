/**
 * The compose lint engine: runs the checks of rules.ts on a compose file as written (positions from
 * the YAML node ranges; aliases and `<<` merge keys resolved the way Compose resolves them) or on the
 * model as merged by Compose, and combines and summarises the findings.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { SandstackError } from '../errors.js';
import type { ComposeModel } from '../compose/model.js';
import type { SandstackConfig } from '../config/schema.js';
import { sandstackHome } from '../state/paths.js';
import {
  checkDocument,
  checkDotEnv,
  ruleById,
  RULES,
  type CheckContext,
  type EntryView,
  type Finding,
  type LintOptions,
  type Pos,
  type RawFinding,
  type ScalarValue,
  type SharedDataset,
  type ValueView,
} from './rules.js';

export const MERGED_MODEL_FILE = '(merged model)';

export interface LintModelOptions extends LintOptions {
  /**
   * The model went through interpolation (what `compose config` prints by default, and what
   * sandstack's resolveModel returns). Then a secret-named variable's value may come from the
   * environment or .env, so SS010 checks only well-known credential formats there. Default false:
   * the model's values are taken as written.
   */
  interpolated?: boolean;
}

// ---------------------------------------------------------------------------------------------
// YAML as written
// ---------------------------------------------------------------------------------------------

export interface ParsedCompose {
  doc: Document.Parsed;
  lc: LineCounter;
  file: string;
}

/** Parses compose text with merge keys enabled; a syntax error throws SANDSTACK_COMPOSE_INVALID. */
export function parseComposeText(text: string, file: string): ParsedCompose {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, merge: true, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const p = e.linePos?.[0];
      return { file, line: p?.line, col: p?.col, message: e.message.split('\n')[0] ?? e.message };
    });
    const where = (p: (typeof problems)[number]) => (p.line !== undefined ? `${p.file}:${p.line}:${p.col}` : p.file);
    throw new SandstackError(
      'SANDSTACK_COMPOSE_INVALID',
      `${file} is not valid YAML:\n  ${problems.map((p) => `${where(p)}: ${p.message}`).join('\n  ')}`,
      { hint: 'Fix the YAML syntax at the position shown.', details: { problems } },
    );
  }
  return { doc, lc, file };
}

/** A map entry as written, with the nodes the fixer needs. */
export interface YamlEntryView extends EntryView {
  value: YamlValueView;
  pair: Pair;
  keyNode: Node;
  /** The map that physically holds the pair (an anchored map for merged-in entries). */
  parent: YAMLMap;
  /** Reached through an alias or a merge key (so it may be shared with other places). */
  viaAlias: boolean;
}

function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const v = key.value;
  if (typeof v === 'symbol') return v.description === '<<';
  return v === '<<' && (!key.type || key.type === 'PLAIN');
}

export class YamlValueView implements ValueView {
  readonly kind: 'map' | 'seq' | 'scalar';
  readonly pos?: Pos;
  /** The node after alias resolution (null for an empty value). */
  readonly node: Node | null;
  /** Reached through an alias or a merge key (so it may be shared with other places). */
  readonly viaAlias: boolean;
  private readonly depth: number;
  private cachedEntries?: YamlEntryView[];

  constructor(
    private readonly parsed: ParsedCompose,
    node: unknown,
    viaAlias: boolean,
    depth = 0,
  ) {
    let n = node;
    let alias = viaAlias;
    for (let hops = 0; isAlias(n); hops++) {
      const target: unknown = n.resolve(parsed.doc);
      if (target === undefined || hops > 100 || depth > 200) {
        const p = n.range ? parsed.lc.linePos(n.range[0]) : undefined;
        throw new SandstackError(
          'SANDSTACK_COMPOSE_INVALID',
          `${parsed.file}${p ? `:${p.line}:${p.col}` : ''}: the alias *${n.source} has no anchor &${n.source} before it`,
          { hint: 'Define the anchor before using the alias.' },
        );
      }
      n = target;
      alias = true;
    }
    this.viaAlias = alias;
    this.depth = depth;
    this.node = (n ?? null) as Node | null;
    this.kind = isMap(n) ? 'map' : isSeq(n) ? 'seq' : 'scalar';
    const range = this.node?.range;
    if (range) this.pos = this.position(range[0]);
  }

  position(offset: number): Pos {
    const p = this.parsed.lc.linePos(offset);
    return { line: p.line, column: p.col };
  }

  scalar(): ScalarValue | undefined {
    if (this.kind !== 'scalar') return undefined;
    if (!this.node) return null;
    if (!isScalar(this.node)) return undefined;
    const v = this.node.value;
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
    if (typeof v === 'bigint') return Number(v);
    return String(v);
  }

  entries(): YamlEntryView[] {
    if (this.cachedEntries) return this.cachedEntries;
    const out = new Map<string, YamlEntryView>();
    if (isMap(this.node)) {
      const map = this.node;
      for (const pair of map.items) {
        if (isMergeKey(pair.key)) {
          const sources = new YamlValueView(this.parsed, pair.value, this.viaAlias, this.depth + 1);
          const maps = sources.kind === 'seq' ? sources.seqViews() : [sources];
          for (const src of maps) {
            if (src.kind !== 'map') continue;
            for (const e of src.entries()) {
              if (!out.has(e.key)) out.set(e.key, { ...e, viaAlias: true, value: e.value.aliased() });
            }
          }
          continue;
        }
        if (!isScalar(pair.key)) continue; // a complex key: Compose has none
        const key = String(pair.key.value);
        const keyNode = pair.key;
        out.set(key, {
          key,
          keyPos: keyNode.range ? this.position(keyNode.range[0]) : undefined,
          value: new YamlValueView(this.parsed, pair.value, this.viaAlias, this.depth + 1),
          pair,
          keyNode,
          parent: map,
          viaAlias: this.viaAlias,
        });
      }
    }
    this.cachedEntries = [...out.values()];
    return this.cachedEntries;
  }

  /** The same node, marked as reached through an alias. */
  aliased(): YamlValueView {
    return this.viaAlias ? this : new YamlValueView(this.parsed, this.node, true, this.depth);
  }

  get(key: string): YamlEntryView | undefined {
    return this.entries().find((e) => e.key === key);
  }

  seqViews(): YamlValueView[] {
    if (!isSeq(this.node)) return [];
    return this.node.items.map((it) => new YamlValueView(this.parsed, it, this.viaAlias, this.depth + 1));
  }

  items(): YamlValueView[] {
    return this.seqViews();
  }
}

/** The root view of a parsed compose file. */
export function rootView(parsed: ParsedCompose): YamlValueView {
  return new YamlValueView(parsed, parsed.doc.contents, false);
}

// ---------------------------------------------------------------------------------------------
// The model as merged by Compose
// ---------------------------------------------------------------------------------------------

class JsValueView implements ValueView {
  readonly kind: 'map' | 'seq' | 'scalar';
  constructor(private readonly v: unknown) {
    this.kind = Array.isArray(v) ? 'seq' : v !== null && typeof v === 'object' ? 'map' : 'scalar';
  }
  scalar(): ScalarValue | undefined {
    if (this.kind !== 'scalar') return undefined;
    const v = this.v;
    if (v === undefined || v === null) return null;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
    return String(v);
  }
  entries(): EntryView[] {
    if (this.kind !== 'map') return [];
    return Object.entries(this.v as Record<string, unknown>).map(([key, value]) => ({ key, value: new JsValueView(value) }));
  }
  get(key: string): EntryView | undefined {
    if (this.kind !== 'map' || !Object.prototype.hasOwnProperty.call(this.v, key)) return undefined;
    return { key, value: new JsValueView((this.v as Record<string, unknown>)[key]) };
  }
  items(): ValueView[] {
    return this.kind === 'seq' ? (this.v as unknown[]).map((x) => new JsValueView(x)) : [];
  }
}

// ---------------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------------

function toFinding(raw: RawFinding, file: string): Finding {
  const rule = ruleById(raw.ruleId);
  const f: Finding = {
    ruleId: rule.id,
    rule: rule.name,
    severity: rule.severity,
    ...(raw.service !== undefined ? { service: raw.service } : {}),
    subject: raw.subject,
    message: raw.message,
    fix: raw.fix,
    file,
    neutralisedByRender: rule.neutralisedByRender,
  };
  if (raw.pos) {
    f.line = raw.pos.line;
    f.column = raw.pos.column;
  }
  return f;
}

function context(opts: LintOptions, mode: CheckContext['mode'], interpolated = false): CheckContext {
  return {
    mode,
    projectDir: path.posix.resolve(opts.projectDir),
    homeDir: path.posix.resolve(opts.homeDir),
    interpolated,
    ...(opts.repoRoot !== undefined ? { repoRoot: path.posix.resolve(opts.repoRoot) } : {}),
    ...(opts.sharedData ? { sharedData: opts.sharedData } : {}),
    ...(opts.ownPaths ? { ownPaths: opts.ownPaths.map((p) => path.posix.resolve(p)) } : {}),
  };
}

const ruleOrder = new Map(RULES.map((r, i) => [r.id, i]));

function byPosition(a: Finding, b: Finding): number {
  const la = a.line ?? Number.MAX_SAFE_INTEGER;
  const lb = b.line ?? Number.MAX_SAFE_INTEGER;
  if (la !== lb) return la - lb;
  const ca = a.column ?? 0;
  const cb = b.column ?? 0;
  if (ca !== cb) return ca - cb;
  return (ruleOrder.get(a.ruleId) ?? 0) - (ruleOrder.get(b.ruleId) ?? 0);
}

/**
 * Lints a compose file as written. Findings carry 1-based line and column of the offending node.
 * A file that is not a mapping, or has no `services`, has no findings; invalid YAML throws
 * SANDSTACK_COMPOSE_INVALID naming file:line:col.
 */
export function lintComposeText(text: string, file: string, opts: LintOptions): Finding[] {
  const parsed = parseComposeText(text, file);
  const root = rootView(parsed);
  return checkDocument(root, context(opts, 'written'))
    .map((r) => toFinding(r, file))
    .sort(byPosition);
}

/** Lints the model as merged by Compose (no positions; file is '(merged model)'). SS003 is not checked here. */
export function lintModel(model: ComposeModel, opts: LintModelOptions): Finding[] {
  const root = new JsValueView(model);
  const findings = checkDocument(root, context(opts, 'merged', opts.interpolated ?? false)).map((r) => toFinding(r, MERGED_MODEL_FILE));
  const serviceOrder = new Map(Object.keys(model.services ?? {}).map((s, i) => [s, i]));
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => {
      const sa = a.f.service === undefined ? Number.MAX_SAFE_INTEGER : (serviceOrder.get(a.f.service) ?? 0);
      const sb = b.f.service === undefined ? Number.MAX_SAFE_INTEGER : (serviceOrder.get(b.f.service) ?? 0);
      return sa - sb || (ruleOrder.get(a.f.ruleId) ?? 0) - (ruleOrder.get(b.f.ruleId) ?? 0) || a.i - b.i;
    })
    .map((x) => x.f);
}

/**
 * Rules about one host path mounted into a service: as written a relative path that escapes the
 * repository is SS008, in the merged model (where it is absolute) SS015; one mount, one finding.
 */
const MOUNT_RULES = new Set(['SS004', 'SS008', 'SS014', 'SS015', 'SS019']);

export function findingKey(f: Pick<Finding, 'ruleId' | 'service' | 'subject'>): string {
  const rule = MOUNT_RULES.has(f.ruleId) ? 'mount' : f.ruleId;
  return `${rule}\u0000${f.service ?? ''}\u0000${f.subject}`;
}

/**
 * Keeps every finding as written (they have positions) and adds the merged model's findings that
 * none of them covers (same rule, service and subject), each once.
 */
export function mergeFindings(written: Finding[], merged: Finding[]): Finding[] {
  const seen = new Set(written.map(findingKey));
  const out = [...written];
  for (const f of merged) {
    const k = findingKey(f);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(f);
  }
  return out;
}

export interface LintSummary {
  total: number;
  errors: number;
  warnings: number;
  /** Findings sandstack's rendering neutralises at run time (still worth fixing in the file). */
  neutralisedByRender: number;
  /** Errors that sandstack does not neutralise: these are real risks when the stack runs. */
  blocking: number;
  byRule: Record<string, number>;
  byService: Record<string, number>;
  /** One line for humans, e.g. "5 findings: 3 errors, 2 warnings (2 neutralised by sandstack's rendering)". */
  text: string;
}

export function summarize(findings: Finding[]): LintSummary {
  const byRule: Record<string, number> = {};
  const byService: Record<string, number> = {};
  let errors = 0;
  let warnings = 0;
  let neutralised = 0;
  let blocking = 0;
  for (const f of findings) {
    byRule[f.ruleId] = (byRule[f.ruleId] ?? 0) + 1;
    const svc = f.service ?? '(top level)';
    byService[svc] = (byService[svc] ?? 0) + 1;
    if (f.severity === 'error') errors++;
    else warnings++;
    if (f.neutralisedByRender) neutralised++;
    else if (f.severity === 'error') blocking++;
  }
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  const text =
    findings.length === 0
      ? 'no findings'
      : `${plural(findings.length, 'finding')}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}` +
        (neutralised > 0 ? ` (${neutralised} neutralised by sandstack's rendering)` : '');
  return { total: findings.length, errors, warnings, neutralisedByRender: neutralised, blocking, byRule, byService, text };
}

// ---------------------------------------------------------------------------------------------
// Project context: the repository, shared datasets, the .env file
// ---------------------------------------------------------------------------------------------

/** The git top level holding `dir` (the nearest folder with a .git entry, a worktree's .git file too), or undefined. */
export async function findRepoRoot(dir: string): Promise<string | undefined> {
  let cur = path.resolve(dir);
  for (;;) {
    if (await stat(path.join(cur, '.git')).then(() => true, () => false)) return cur;
    const up = path.dirname(cur);
    if (up === cur) return undefined;
    cur = up;
  }
}

/** data.shared with each host resolved (relative ones against the folder of sandstack.yaml). */
export function sharedDataOf(config: Pick<SandstackConfig, 'data'>, configDir: string): SharedDataset[] {
  return config.data.shared.map((d) => ({
    name: d.name,
    host: path.resolve(configDir, d.host),
    services: [...d.services],
    target: d.target,
    mode: d.mode,
  }));
}

/**
 * The lint options for a project: the repository root (found from projectDir unless given), the
 * shared datasets of sandstack.yaml (when the config is given; configFile's folder resolves
 * relative hosts, default projectDir) and sandstack's state home (default: SANDSTACK_HOME or the
 * XDG data folder), whose instance folders compose files may mount.
 */
export async function lintOptionsFor(opts: {
  projectDir: string;
  homeDir: string;
  config?: Pick<SandstackConfig, 'data'>;
  configFile?: string;
  repoRoot?: string;
  stateHome?: string;
}): Promise<LintOptions> {
  const repoRoot = opts.repoRoot ?? (await findRepoRoot(opts.projectDir));
  return {
    projectDir: opts.projectDir,
    homeDir: opts.homeDir,
    ownPaths: [opts.stateHome ?? sandstackHome()],
    ...(repoRoot !== undefined ? { repoRoot } : {}),
    ...(opts.config ? { sharedData: sharedDataOf(opts.config, opts.configFile ? path.dirname(opts.configFile) : opts.projectDir) } : {}),
  };
}

/** Lints the text of a .env file (SS017); findings name `file` and the line of each variable. */
export function lintDotEnvText(text: string, file: string): Finding[] {
  return checkDotEnv(text)
    .map((r) => toFinding(r, file))
    .sort(byPosition);
}

/**
 * Lints the .env files Compose may read for these compose files: the one in projectDir and the one
 * beside each compose file (each once). Files are named relative to `baseDir` when given (`../`
 * included), else relative to projectDir when inside it, else absolute.
 */
export async function lintDotEnvFiles(composeFiles: string[], opts: Pick<LintOptions, 'projectDir'> & { baseDir?: string }): Promise<Finding[]> {
  const dirs = [...new Set([opts.projectDir, ...composeFiles.map((f) => path.dirname(f))].map((d) => path.resolve(d)))];
  const out: Finding[] = [];
  for (const dir of dirs) {
    const file = path.join(dir, '.env');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue; // no .env here (or not readable): nothing to check
    }
    const rel = path.relative(opts.baseDir ?? opts.projectDir, file);
    out.push(...lintDotEnvText(text, !rel || path.isAbsolute(rel) || (!opts.baseDir && rel.startsWith('..')) ? file : rel));
  }
  return out;
}
