/**
 * summary.md: the evidence bundle as a Markdown PR body, ready to paste. A pure function of the
 * bundle; every piece of text that comes from the bundle is escaped so that it renders as written.
 * Also exports the small formatting helpers the HTML report shares.
 */
import type { GateReport, StageResult, StageStatus } from '../gate/report.js';
import type { SuiteRun, TestRunResult } from '../testing/model.js';
import type { BundleFile, EvidenceBundle, EvidenceData, ServiceRow, TeardownProof } from './model.js';

// ---------------------------------------------------------------------------------------------
// Shared formatting helpers (also used by html.ts)

/** `340 ms`, `12.3 s`, `2 min 05 s`, `1 h 02 min`; `n/a` for missing or invalid values. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return 'n/a';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h} h ${two(m)} min` : `${m} min ${two(s)} s`;
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return 'n/a';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** First 7 characters of a commit id. */
export function shortSha(commit: string | null): string | null {
  return commit ? commit.slice(0, 7) : null;
}

/** `sha256:3f2a…` → the first 12 hex digits, as `docker images` shows them. */
export function shortImageId(id: string | null): string | null {
  if (!id) return null;
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** The first line of a message, cut to `max` characters (with an ellipsis when cut or when more lines follow). */
export function firstLine(message: string, max = 300): string {
  const lines = message.replace(/\r\n?/g, '\n').trim().split('\n');
  const line = (lines[0] ?? '').trim();
  if (line.length > max) return `${line.slice(0, max - 1)}…`;
  return lines.length > 1 ? `${line} …` : line;
}

export function formatPort(p: ServiceRow['ports'][number]): string {
  const proto = p.protocol || 'tcp';
  if (p.host === null) return `${p.container}/${proto} (not published)`;
  const ip = p.hostIp && p.hostIp !== '' ? p.hostIp : '0.0.0.0';
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `${host}:${p.host}->${p.container}/${proto}`;
}

/** A test suite's status in the vocabulary of gate stages (for colours and markers). */
export function suiteStatus(s: SuiteRun): StageStatus {
  return s.passed ? 'passed' : 'failed';
}

/** `passed`, `FAILED`, `skipped`, `warning`: text markers, no emoji. */
export function statusMarker(status: StageStatus): string {
  return status === 'failed' ? 'FAILED' : status;
}

/** What a stage recorded about itself, in one line: its summary, skip reason or warnings. */
export function stageNote(stage: StageResult): string {
  const d = stage.details ?? {};
  const parts: string[] = [];
  if (typeof d.summary === 'string' && d.summary) parts.push(d.summary);
  if (typeof d.reason === 'string' && d.reason) parts.push(d.reason);
  if (Array.isArray(d.warnings)) parts.push(...d.warnings.filter((w): w is string => typeof w === 'string'));
  const err = d.error as { message?: unknown } | undefined;
  if (stage.status === 'failed' && err && typeof err.message === 'string') parts.push(firstLine(err.message, 200));
  return parts.join('; ');
}

/** Whether the bundle has anything to say about data (datasets declared, or a data root template). */
export function hasData(d: EvidenceData | undefined): d is EvidenceData {
  return d !== undefined && (d.shared.length > 0 || d.root.template !== null);
}

/**
 * What the gate's isolation stage saw of the mounts (Docker's own mount list): how many mounts of
 * declared datasets, and whether no undeclared host folder was mounted. Null when it did not run.
 */
export function mountCheckLine(gate: GateReport | null): string | null {
  const iso = gate?.stages.find((s) => s.name === 'isolation');
  if (!iso || (iso.status !== 'passed' && iso.status !== 'warning' && iso.status !== 'failed')) return null;
  const mounts = (iso.details?.mounts ?? undefined) as { kind?: string }[] | undefined;
  if (!Array.isArray(mounts)) return null;
  const datasets = mounts.filter((m) => m.kind === 'dataset').length;
  const undeclared = mounts.filter((m) => m.kind === 'undeclared').length;
  const allowed = mounts.filter((m) => m.kind === 'allowed').length;
  const seen = `the isolation stage checked Docker's mount list: ${plural(datasets, 'dataset mount')} as declared`;
  const rest = undeclared ? `${plural(undeclared, 'undeclared host mount')} outside the project` : 'no undeclared host mount outside the project';
  return `${seen}, ${rest}${allowed ? `, ${allowed} allowed by policy.allow` : ''}${iso.status === 'failed' ? ' (stage failed)' : ''}.`;
}

export function teardownClean(t: TeardownProof): boolean {
  return t.remaining.containers === 0 && t.remaining.volumes === 0 && t.remaining.networks === 0;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Counts of a suite's JUnit results, e.g. `4: 3 passed, 1 failed`; null without a JUnit report. */
export function suiteTestCounts(s: SuiteRun): string | null {
  const j = s.junit;
  if (!j) return null;
  const parts = [`${j.passed} passed`];
  if (j.failed) parts.push(`${j.failed} failed`);
  if (j.skipped) parts.push(`${j.skipped} skipped`);
  return `${j.tests}: ${parts.join(', ')}`;
}

/** A link target for a bundle-relative path: each segment percent-encoded, so no scheme or markup can sneak in. */
export function relativeHref(p: string): string {
  return p
    .replace(/\\/g, '/')
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/\(/g, '%28').replace(/\)/g, '%29'))
    .join('/');
}

// ---------------------------------------------------------------------------------------------
// Markdown escaping

/**
 * Escapes text so that Markdown renders it literally: inline markup characters, HTML, entity
 * references and line-leading block markers. Underscores inside words stay as they are (GFM does
 * not treat them as emphasis), so `test_workers_registered` reads naturally in the raw text too.
 * Pipes are left alone; table cells escape them with {@link cell}.
 */
export function mdText(s: string): string {
  const text = s.replace(/\r\n?/g, '\n');
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '_') {
      const intraword = /[\p{L}\p{N}]/u.test(text[i - 1] ?? '') && /[\p{L}\p{N}]/u.test(text[i + 1] ?? '');
      out += intraword ? '_' : '\\_';
    } else if ('\\`*[]<>~'.includes(c)) {
      out += `\\${c}`;
    } else if (c === '&' && /^&#?\w+;/.test(text.slice(i))) {
      out += '\\&';
    } else {
      out += c;
    }
  }
  // Line-leading block markers: headings, list items, setext underlines and thematic breaks.
  return out
    .replace(/^([ \t]*)(#{1,6})(?=[ \t]|$)/gm, '$1\\$2')
    .replace(/^([ \t]*)([+-])(?=[ \t]|$)/gm, '$1\\$2')
    .replace(/^([ \t]*)([=-]+[ \t]*)$/gm, '$1\\$2')
    .replace(/^([ \t]*)(\d{1,9})([.)])(?=[ \t]|$)/gm, '$1$2\\$3');
}

/** An inline code span that holds any text (backticks included); newlines become spaces. */
export function mdCode(s: string): string {
  const text = s.replace(/\r?\n/g, ' ');
  if (text === '') return '';
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') || (text.startsWith(' ') && text.endsWith(' ')) ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** A fenced code block that holds any text. */
export function mdFence(s: string, info = ''): string {
  const longest = Math.max(2, ...Array.from(s.matchAll(/`{3,}/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${info}\n${s.replace(/\r\n?/g, '\n').replace(/\n+$/, '')}\n${fence}`;
}

/** Makes already-rendered Markdown safe inside a table cell: pipes escaped, newlines as `<br>`. */
export function cell(md: string): string {
  return md.replace(/\|/g, '\\|').replace(/\n/g, '<br>').trim() || ' ';
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Sections

const NOT_RUN = 'not run';

function title(bundle: EvidenceBundle): string {
  const m = bundle.manifest;
  return `## sandstack evidence: ${m.result.passed ? 'PASSED' : 'FAILED'} · ${mdCode(m.instance.id)}`;
}

function facts(bundle: EvidenceBundle): string {
  const m = bundle.manifest;
  const sha = shortSha(m.git.commit);
  const dirty = m.git.dirty === null ? 'unknown' : m.git.dirty ? 'yes (uncommitted changes)' : 'no';
  const v = m.versions;
  const lines = [
    `- **Branch:** ${m.git.branch ? mdCode(m.git.branch) : 'unknown (detached or not a git checkout)'}`,
    `- **Commit:** ${sha ? mdCode(sha) : 'unknown'} · **dirty:** ${dirty}`,
    `- **Versions:** sandstack ${mdCode(v.sandstack)} · Docker ${v.docker ? mdCode(v.docker) : 'unknown'}${m.engine && m.engine.name !== 'local' ? ` (engine ${mdCode(m.engine.name)}, ${mdCode(m.engine.endpoint)})` : ''} · Compose ${v.compose ? mdCode(v.compose) : 'unknown'} · Node ${mdCode(v.node)}`,
    `- **Instance:** ${mdCode(m.instance.id)} (${mdText(m.instance.kind)}) · run ${mdCode(m.runId)} · created ${mdText(m.createdAt)}`,
    `- **Timings:** gate ${m.timings.gateMs === null ? NOT_RUN : formatDuration(m.timings.gateMs)} · tests ${m.timings.testsMs === null ? NOT_RUN : formatDuration(m.timings.testsMs)} · total ${formatDuration(m.timings.totalMs)}`,
  ];
  if (m.redaction.secretsRedacted > 0) {
    lines.push(`- **Redaction:** ${plural(m.redaction.secretsRedacted, 'secret')} replaced by ${mdCode(m.redaction.marker)}`);
  }
  return lines.join('\n');
}

function gateSection(gate: GateReport | null): string {
  const out = ['### Startability Gate', ''];
  if (!gate) {
    out.push(`Startability Gate: ${NOT_RUN}.`);
    return out.join('\n');
  }
  out.push(`**Result:** ${gate.passed ? 'passed' : '**FAILED**'} · mode ${mdCode(gate.mode)} · ${formatDuration(gate.durationMs)} (deadline ${gate.deadlineSeconds} s)`, '');
  if (gate.stages.length === 0) {
    out.push('No stages were recorded.');
  } else {
    out.push(
      table(
        ['Stage', 'Status', 'Duration', 'Details'],
        gate.stages.map((s) => [mdText(s.name), s.status === 'failed' ? '**FAILED**' : s.status, formatDuration(s.durationMs), mdText(stageNote(s))]),
      ),
    );
  }
  const f = gate.failure;
  if (f) {
    out.push('', `**Failure** at stage ${mdCode(f.stage)} (${mdCode(f.code)}${f.service ? `, service ${mdCode(f.service)}` : ''}${f.reason ? `, ${mdText(f.reason)}` : ''}${f.exitCode !== undefined ? `, exit code ${f.exitCode}` : ''}${f.detectedAfterMs !== undefined ? `, detected ${f.detectedAfterMs} ms after the container event` : ''}):`, '');
    out.push(mdFence(f.message));
    if (f.hint) out.push('', `**Hint:** ${mdText(f.hint).replace(/\n/g, ' ')}`);
    if (f.logTail && f.logTail.length > 0) {
      out.push('', '<details><summary>Last log lines</summary>', '', mdFence(f.logTail.join('\n')), '', '</details>');
    }
  }
  return out.join('\n');
}

function testsSection(tests: TestRunResult | null): string {
  const out = ['### Tests', ''];
  if (!tests) {
    out.push(`Tests: ${NOT_RUN}.`);
    return out.join('\n');
  }
  const t = tests.totals;
  out.push(
    `**Result:** ${tests.passed ? 'passed' : '**FAILED**'} · ${plural(t.suites, 'suite')} · ${plural(t.tests, 'test')}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped · ${formatDuration(tests.durationMs)}`,
    '',
  );
  if (tests.suites.length > 0) {
    out.push(
      table(
        ['Kind', 'Suite', 'Where', 'Result', 'Tests', 'Duration'],
        tests.suites.map((s) => [
          s.kind,
          mdCode(s.name),
          mdCode(s.where),
          s.passed ? 'passed' : `**FAILED** (exit ${s.exitCode})`,
          suiteTestCounts(s) ?? 'no JUnit report',
          formatDuration(s.durationMs),
        ]),
      ),
    );
  } else {
    out.push('No suites were run.');
  }
  const failures: string[] = [];
  for (const s of tests.suites) {
    const listed = s.junit?.failures ?? [];
    for (const f of listed) {
      const kind = f.kind === 'error' ? '(error) ' : '';
      failures.push(`- ${mdText(`${s.name} › ${f.name}`)}: ${kind}${mdText(firstLine(f.message || '(no message)'))}`);
    }
    if (!s.passed && listed.length === 0) {
      failures.push(`- ${mdText(s.name)}: exited with code ${s.exitCode} without a recorded test failure (see ${mdCode(s.log)})`);
    }
  }
  if (failures.length > 0) out.push('', '#### Failures', '', ...failures);
  return out.join('\n');
}

function servicesSection(services: ServiceRow[]): string {
  const out = ['### Services', ''];
  if (services.length === 0) {
    out.push('No services recorded.');
    return out.join('\n');
  }
  out.push(
    table(
      ['Service', 'State', 'Health', 'Image', 'Image ID', 'Ports'],
      services.map((s) => [
        mdCode(s.name),
        mdText(s.state),
        s.health ? mdText(s.health) : '-',
        s.image ? mdCode(s.image) : '-',
        s.imageId ? mdCode(shortImageId(s.imageId) ?? '') : '-',
        s.ports.length ? s.ports.map((p) => `${mdCode(formatPort(p))}${p.url ? ` ${mdCode(p.url)}` : ''}`).join('<br>') : '-',
      ]),
    ),
  );
  return out.join('\n');
}

export function teardownLine(t: TeardownProof | null): string {
  if (!t) return `Teardown: ${NOT_RUN}.`;
  const r = t.removed;
  const removed = `removed ${plural(r.containers.length, 'container')}, ${plural(r.volumes.length, 'volume')}, ${plural(r.networks.length, 'network')} in ${formatDuration(t.durationMs)}`;
  const left = t.remaining;
  const verdict = teardownClean(t)
    ? 'remaining 0 containers, 0 volumes, 0 networks → verified: nothing left'
    : `NOT CLEAN: ${plural(left.containers, 'container')}, ${plural(left.volumes, 'volume')}, ${plural(left.networks, 'network')} still present`;
  return `Teardown: ${removed}; ${verdict}.`;
}

function teardownSection(t: TeardownProof | null): string {
  const line = teardownLine(t);
  return ['### Teardown', '', t && !teardownClean(t) ? line.replace('NOT CLEAN', '**NOT CLEAN**') : line].join('\n');
}

function dataSection(d: EvidenceData | undefined, gate: GateReport | null): string | null {
  if (!hasData(d)) return null;
  const out = ['### Data', ''];
  out.push(`Data root (per instance): ${mdCode(d.root.path)}${d.root.template ? `, seeded from ${mdCode(d.root.template)} when the instance was created` : ''}.`);
  if (d.shared.length) {
    out.push('', table(['Shared dataset', 'Host path', 'Target', 'Mode', 'Services'], d.shared.map((x) => [mdCode(x.name), mdCode(x.host), mdCode(x.target), x.mode === 'ro' ? 'read-only' : '**read-write**', x.services.map(mdCode).join(', ')])));
  }
  const check = mountCheckLine(gate);
  if (check) out.push('', mdText(check.charAt(0).toUpperCase() + check.slice(1)));
  return out.join('\n');
}

function notesSection(notes: string[]): string {
  const out = ['### Notes', ''];
  if (notes.length === 0) out.push('None.');
  else out.push(...notes.map((n) => `- ${mdText(n).replace(/\n/g, ' ')}`));
  return out.join('\n');
}

function filesSection(files: BundleFile[]): string {
  const out = ['### Files in this bundle', ''];
  if (files.length === 0) out.push('None.');
  else {
    out.push(
      ...files.map((f) => {
        const desc = f.description ? ` — ${mdText(f.description).replace(/\n/g, ' ')}` : '';
        return `- [${mdText(f.path)}](${relativeHref(f.path)})${desc} (${formatBytes(f.bytes)})`;
      }),
    );
  }
  return out.join('\n');
}

export function renderSummaryMarkdown(bundle: EvidenceBundle): string {
  const m = bundle.manifest;
  const sections = [
    title(bundle),
    facts(bundle),
    gateSection(bundle.gate),
    testsSection(bundle.tests),
    servicesSection(bundle.services),
    teardownSection(bundle.teardown),
    ...[dataSection(m.data, bundle.gate)].filter((x): x is string => x !== null),
    notesSection(m.notes),
    filesSection(m.files),
    `<sub>Generated by sandstack ${mdText(m.versions.sandstack)} · ${mdText(m.schema)} · run ${mdText(m.runId)}</sub>`,
  ];
  return `${sections.join('\n\n')}\n`;
}
