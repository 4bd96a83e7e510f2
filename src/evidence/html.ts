/**
 * report.html: the evidence bundle as one self-contained page (inline CSS, inline static SVG, no
 * scripts, no external resources). A pure function of the bundle; every piece of text that comes
 * from the bundle is HTML-escaped.
 */
import type { GateReport, StageStatus } from '../gate/report.js';
import type { TestRunResult } from '../testing/model.js';
import type { EvidenceBundle, ServiceRow, TeardownProof } from './model.js';
import {
  formatBytes,
  formatDuration,
  formatPort,
  hasData,
  mountCheckLine,
  plural,
  relativeHref,
  shortImageId,
  shortSha,
  stageNote,
  statusMarker,
  suiteStatus,
  suiteTestCounts,
  teardownClean,
  teardownLine,
} from './summary.js';

/** Bar colours by status, shared by the timeline, its legend and the status pills. */
export const STATUS_COLORS: Record<StageStatus, string> = {
  passed: '#2f9e44',
  failed: '#e03131',
  warning: '#f59f00',
  skipped: '#adb5bd',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const esc = escapeHtml;
const NOT_RUN = '<p class="muted">not run</p>';
const MAX_MESSAGE = 4000;

function clip(s: string, max = MAX_MESSAGE): string {
  return s.length > max ? `${s.slice(0, max)}\n… (${s.length - max} more characters)` : s;
}

function pill(status: StageStatus): string {
  return `<span class="pill s-${status}">${esc(statusMarker(status))}</span>`;
}

// ---------------------------------------------------------------------------------------------
// Timeline

interface TimelineRow {
  kind: 'stage' | 'suite';
  name: string;
  /** Secondary label text (suite kind and where). */
  sub: string;
  /** What the row is, for its tooltip: `stage`, `e2e suite in api`. */
  what: string;
  status: StageStatus;
  startMs: number;
  durationMs: number;
}

const TL = {
  width: 1120,
  labelWidth: 200,
  rightPad: 90,
  rowHeight: 26,
  barHeight: 16,
  groupHeight: 24,
  top: 8,
  axisHeight: 34,
};

function timelineRows(gate: GateReport | null, tests: TestRunResult | null): { stages: TimelineRow[]; suites: TimelineRow[] } {
  const raw = [
    ...(gate?.stages ?? []).map((s) => ({ kind: 'stage' as const, name: s.name, sub: '', what: 'stage', status: s.status, startedAt: s.startedAt, durationMs: s.durationMs })),
    ...(tests?.suites ?? []).map((s) => ({ kind: 'suite' as const, name: s.name, sub: s.kind === s.name ? s.where : `${s.kind} · ${s.where}`, what: `${s.kind} suite in ${s.where}`, status: suiteStatus(s), startedAt: s.startedAt, durationMs: s.durationMs })),
  ];
  // Rows whose start time is missing or invalid are placed right after the previous row.
  let cursor = Number.NaN;
  const rows: TimelineRow[] = raw.map((r) => {
    const parsed = Date.parse(r.startedAt);
    const dur = Number.isFinite(r.durationMs) && r.durationMs > 0 ? r.durationMs : 0;
    const start = Number.isFinite(parsed) ? parsed : Number.isFinite(cursor) ? cursor : 0;
    cursor = start + dur;
    return { kind: r.kind, name: r.name, sub: r.sub, what: r.what, status: r.status, startMs: start, durationMs: dur };
  });
  return { stages: rows.filter((r) => r.kind === 'stage'), suites: rows.filter((r) => r.kind === 'suite') };
}

/** A tick step (seconds) giving at most ~10 ticks over the span. */
function tickStep(spanMs: number): number {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
  const spanS = spanMs / 1000;
  return steps.find((s) => spanS / s <= 10) ?? Math.ceil(spanS / 10 / 3600) * 3600;
}

function tickLabel(seconds: number, step: number): string {
  if (step >= 60) return `${Math.round((seconds / 60) * 10) / 10} min`;
  return `${Math.round(seconds * 10) / 10} s`;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function renderTimelineSvg(gate: GateReport | null, tests: TestRunResult | null): string {
  const { stages, suites } = timelineRows(gate, tests);
  const all = [...stages, ...suites];
  if (all.length === 0) return '<p class="muted">No gate stages or test suites to show: not run.</p>';

  const t0 = Math.min(...all.map((r) => r.startMs));
  const tEnd = Math.max(...all.map((r) => r.startMs + r.durationMs));
  const span = Math.max(tEnd - t0, 1000);
  const step = tickStep(span);
  const domainMs = Math.ceil(span / (step * 1000)) * step * 1000;
  const plotX = TL.labelWidth + 12;
  const plotW = TL.width - plotX - TL.rightPad;
  const scale = plotW / domainMs;

  const groups = [
    { title: 'Startability Gate', rows: stages },
    { title: 'Tests', rows: suites },
  ].filter((g) => g.rows.length > 0);

  const parts: string[] = [];
  const bars: string[] = [];
  let y = TL.top;
  let rowIndex = 0;
  for (const g of groups) {
    parts.push(`<text class="group" x="8" y="${y + 16}">${esc(g.title.toUpperCase())}</text>`);
    y += TL.groupHeight;
    for (const r of g.rows) {
      const offset = r.startMs - t0;
      const x = plotX + offset * scale;
      const w = Math.max(2, r.durationMs * scale);
      const barY = y + (TL.rowHeight - TL.barHeight) / 2;
      if (rowIndex % 2 === 0) parts.push(`<rect class="row-bg" x="0" y="${y}" width="${TL.width}" height="${TL.rowHeight}" fill="#f4f6f8"/>`);
      const label = esc(truncate(r.name, r.sub ? 18 : 28));
      const sub = r.sub ? `<tspan class="sub" dx="6">${esc(truncate(r.sub, 14))}</tspan>` : '';
      parts.push(`<text class="label" x="12" y="${y + TL.rowHeight / 2 + 4}">${label}${sub}</text>`);
      const tip = `${r.name} (${r.what}): ${statusMarker(r.status)}, ${formatDuration(r.durationMs)}, starts at +${formatDuration(offset)}`;
      bars.push(
        `<rect class="bar" data-kind="${r.kind}" data-name="${esc(r.name)}" data-status="${r.status}" x="${x.toFixed(1)}" y="${barY}" width="${w.toFixed(1)}" height="${TL.barHeight}" rx="3" fill="${STATUS_COLORS[r.status]}"><title>${esc(tip)}</title></rect>`,
        `<text class="dur" x="${(x + w + 6).toFixed(1)}" y="${y + TL.rowHeight / 2 + 4}">${esc(formatDuration(r.durationMs))}</text>`,
      );
      y += TL.rowHeight;
      rowIndex++;
    }
  }
  const plotBottom = y + 4;
  const ticks: string[] = [];
  const nTicks = Math.round(domainMs / (step * 1000));
  for (let i = 0; i <= nTicks; i++) {
    const tx = plotX + i * step * 1000 * scale;
    ticks.push(
      `<line class="grid" x1="${tx.toFixed(1)}" y1="${TL.top}" x2="${tx.toFixed(1)}" y2="${plotBottom}" stroke="#dde1e6" stroke-width="1"/>`,
      `<line x1="${tx.toFixed(1)}" y1="${plotBottom}" x2="${tx.toFixed(1)}" y2="${plotBottom + 5}" stroke="#6b7280" stroke-width="1"/>`,
      `<text class="tick" x="${tx.toFixed(1)}" y="${plotBottom + 18}" text-anchor="middle">${esc(tickLabel(i * step, step))}</text>`,
    );
  }
  const height = plotBottom + TL.axisHeight;
  const axis = `<line class="axis" x1="${plotX}" y1="${plotBottom}" x2="${(plotX + plotW).toFixed(1)}" y2="${plotBottom}" stroke="#6b7280" stroke-width="1"/>`;

  return [
    `<svg id="timeline" role="img" aria-label="Timeline of gate stages and test suites" width="${TL.width}" height="${height}" viewBox="0 0 ${TL.width} ${height}">`,
    '<style>.label{font-size:13px;fill:#1f2933}.sub{font-size:11px;fill:#6b7280}.group{font-size:11px;font-weight:700;letter-spacing:.06em;fill:#52606d}.tick{font-size:11px;fill:#52606d}.dur{font-size:11px;fill:#3e4c59}text{font-family:inherit}</style>',
    ...parts,
    ...ticks,
    axis,
    ...bars,
    '</svg>',
  ].join('\n');
}

/** The earliest start time on the timeline (its t = 0), or null when there is nothing to draw. */
function timelineOrigin(gate: GateReport | null, tests: TestRunResult | null): number | null {
  const { stages, suites } = timelineRows(gate, tests);
  const all = [...stages, ...suites];
  return all.length ? Math.min(...all.map((r) => r.startMs)) : null;
}

function legend(origin: number | null): string {
  const items = (Object.keys(STATUS_COLORS) as StageStatus[]).map((s) => `<span><i style="background:${STATUS_COLORS[s]}"></i>${esc(s)}</span>`).join('');
  const t0 = origin === null ? '' : `<span class="origin">x axis: time since ${esc(new Date(origin).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</span>`;
  return `<div class="legend">${items}${t0}</div>`;
}

// ---------------------------------------------------------------------------------------------
// Sections

function factsSection(bundle: EvidenceBundle): string {
  const m = bundle.manifest;
  const sha = shortSha(m.git.commit);
  const dirty = m.git.dirty === null ? 'unknown' : m.git.dirty ? 'yes (uncommitted changes)' : 'no';
  const code = (s: string | null, missing = 'unknown') => (s ? `<code>${esc(s)}</code>` : `<span class="muted">${esc(missing)}</span>`);
  const facts: [string, string][] = [
    ['Branch', code(m.git.branch, 'unknown (detached or not a git checkout)')],
    ['Commit', `${sha ? `<code title="${esc(m.git.commit ?? '')}">${esc(sha)}</code>` : '<span class="muted">unknown</span>'}`],
    ['Dirty', esc(dirty)],
    ['sandstack', code(m.versions.sandstack)],
    ['Docker', code(m.versions.docker)],
    ['Engine', code(m.engine ? (m.engine.name === 'local' ? 'local' : `${m.engine.name} (${m.engine.endpoint})`) : null)],
    ['Compose', code(m.versions.compose)],
    ['Node', code(m.versions.node)],
    ['Worktree', code(m.instance.worktree)],
    ['Run', code(m.runId)],
    ['Created', esc(m.createdAt)],
    ['Gate time', m.timings.gateMs === null ? 'not run' : esc(formatDuration(m.timings.gateMs))],
    ['Test time', m.timings.testsMs === null ? 'not run' : esc(formatDuration(m.timings.testsMs))],
    ['Total time', esc(formatDuration(m.timings.totalMs))],
    ['Secrets redacted', `${m.redaction.secretsRedacted}${m.redaction.secretsRedacted ? ` (as <code>${esc(m.redaction.marker)}</code>)` : ''}`],
  ];
  return `<section class="card"><h2>Facts</h2><dl class="facts">${facts.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join('')}</dl></section>`;
}

function gateSection(gate: GateReport | null): string {
  if (!gate) return `<section class="card" id="gate"><h2>Startability Gate</h2>${NOT_RUN}</section>`;
  const rows = gate.stages
    .map((s) => `<tr><td><code>${esc(s.name)}</code></td><td>${pill(s.status)}</td><td class="num">${esc(formatDuration(s.durationMs))}</td><td>${esc(stageNote(s))}</td></tr>`)
    .join('\n');
  const table = gate.stages.length
    ? `<table><thead><tr><th>Stage</th><th>Status</th><th class="num">Duration</th><th>Details</th></tr></thead><tbody>\n${rows}\n</tbody></table>`
    : '<p class="muted">No stages were recorded.</p>';
  const f = gate.failure;
  let failure = '';
  if (f) {
    const meta = [`stage <code>${esc(f.stage)}</code>`, `code <code>${esc(f.code)}</code>`];
    if (f.service) meta.push(`service <code>${esc(f.service)}</code>`);
    if (f.exitCode !== undefined) meta.push(`exit code ${esc(String(f.exitCode))}`);
    failure = [
      '<div class="failure">',
      `<h3>Failure</h3><p>${meta.join(' · ')}</p>`,
      `<pre>${esc(clip(f.message))}</pre>`,
      f.hint ? `<p class="hint"><strong>Hint:</strong> ${esc(f.hint)}</p>` : '',
      f.logTail?.length ? `<details><summary>Last log lines (${f.logTail.length})</summary><pre>${esc(clip(f.logTail.join('\n')))}</pre></details>` : '',
      f.healthLog?.length
        ? `<details><summary>Health check log (${f.healthLog.length})</summary><pre>${esc(clip(f.healthLog.map((h) => `[exit ${h.exitCode}] ${h.output.trimEnd()}`).join('\n')))}</pre></details>`
        : '',
      '</div>',
    ].join('');
  }
  return [
    '<section class="card" id="gate"><h2>Startability Gate</h2>',
    `<p class="lead">${gate.passed ? pill('passed') : pill('failed')} mode <code>${esc(gate.mode)}</code> · ${esc(formatDuration(gate.durationMs))} (deadline ${esc(String(gate.deadlineSeconds))} s)</p>`,
    table,
    failure,
    '</section>',
  ].join('\n');
}

function testsSection(tests: TestRunResult | null): string {
  if (!tests) return `<section class="card" id="tests"><h2>Tests</h2>${NOT_RUN}</section>`;
  const t = tests.totals;
  const totals = [
    ['suites', t.suites],
    ['tests', t.tests],
    ['passed', t.passed],
    ['failed', t.failed],
    ['skipped', t.skipped],
  ]
    .map(([k, v]) => `<div class="stat stat-${k}"><b>${esc(String(v))}</b><span>${esc(String(k))}</span></div>`)
    .join('');
  const rows = tests.suites
    .map(
      (s) =>
        `<tr><td>${esc(s.kind)}</td><td><code>${esc(s.name)}</code></td><td><code>${esc(s.where)}</code></td><td>${pill(suiteStatus(s))}${s.passed ? '' : ` <span class="muted">exit ${esc(String(s.exitCode))}</span>`}</td><td>${esc(suiteTestCounts(s) ?? 'no JUnit report')}</td><td class="num">${esc(formatDuration(s.durationMs))}</td><td><code>${esc(s.log)}</code></td></tr>`,
    )
    .join('\n');
  const failures: string[] = [];
  for (const s of tests.suites) {
    const listed = s.junit?.failures ?? [];
    for (const f of listed) {
      failures.push(
        `<li><div class="fname"><code>${esc(`${s.name} › ${f.name}`)}</code>${f.kind === 'error' ? ' <span class="pill s-failed">error</span>' : ''}</div><pre>${esc(clip(f.message || '(no message)'))}</pre></li>`,
      );
    }
    if (!s.passed && listed.length === 0) {
      failures.push(`<li><div class="fname"><code>${esc(s.name)}</code></div><p>exited with code ${esc(String(s.exitCode))} without a recorded test failure (see <code>${esc(s.log)}</code>)</p></li>`);
    }
  }
  return [
    '<section class="card" id="tests"><h2>Tests</h2>',
    `<p class="lead">${pill(tests.passed ? 'passed' : 'failed')} ${esc(formatDuration(tests.durationMs))}</p>`,
    `<div class="stats">${totals}</div>`,
    tests.suites.length
      ? `<table><thead><tr><th>Kind</th><th>Suite</th><th>Where</th><th>Result</th><th>Tests</th><th class="num">Duration</th><th>Log</th></tr></thead><tbody>\n${rows}\n</tbody></table>`
      : '<p class="muted">No suites were run.</p>',
    failures.length ? `<h3>Failures</h3><ul class="failures">${failures.join('\n')}</ul>` : '',
    '</section>',
  ].join('\n');
}

function servicesSection(services: ServiceRow[]): string {
  if (services.length === 0) return '<section class="card" id="services"><h2>Services</h2><p class="muted">No services recorded.</p></section>';
  const rows = services
    .map((s) => {
      const ports = s.ports.length
        ? s.ports.map((p) => `<div><code>${esc(formatPort(p))}</code>${p.url ? ` <code class="url">${esc(p.url)}</code>` : ''}</div>`).join('')
        : '<span class="muted">none</span>';
      const health = s.health ? `<span class="health h-${esc(s.health.replace(/[^a-z]/gi, ''))}">${esc(s.health)}</span>` : '<span class="muted">-</span>';
      return `<tr><td><code>${esc(s.name)}</code></td><td>${esc(s.state)}</td><td>${health}</td><td>${s.image ? `<code>${esc(s.image)}</code>` : '<span class="muted">-</span>'}</td><td>${s.imageId ? `<code title="${esc(s.imageId)}">${esc(shortImageId(s.imageId) ?? '')}</code>` : '<span class="muted">-</span>'}</td><td>${ports}</td></tr>`;
    })
    .join('\n');
  return `<section class="card" id="services"><h2>Services</h2><table><thead><tr><th>Service</th><th>State</th><th>Health</th><th>Image</th><th>Image ID</th><th>Ports</th></tr></thead><tbody>\n${rows}\n</tbody></table></section>`;
}

function teardownSection(t: TeardownProof | null): string {
  if (!t) return `<section class="card" id="teardown"><h2>Teardown</h2>${NOT_RUN}</section>`;
  const clean = teardownClean(t);
  const list = (title: string, names: string[]) =>
    names.length ? `<div><h4>${esc(title)} (${names.length})</h4><ul>${names.map((n) => `<li><code>${esc(n)}</code></li>`).join('')}</ul></div>` : '';
  const removed = list('Containers', t.removed.containers) + list('Volumes', t.removed.volumes) + list('Networks', t.removed.networks);
  return [
    '<section class="card" id="teardown"><h2>Teardown</h2>',
    `<p class="lead">${clean ? pill('passed') : pill('failed')} ${esc(teardownLine(t).replace(/^Teardown: /, ''))}</p>`,
    `<p class="muted">Instance <code>${esc(t.instance)}</code> · at ${esc(t.at)} · remaining: ${plural(t.remaining.containers, 'container')}, ${plural(t.remaining.volumes, 'volume')}, ${plural(t.remaining.networks, 'network')}</p>`,
    removed ? `<details><summary>Removed resources</summary><div class="removed">${removed}</div></details>` : '',
    '</section>',
  ].join('\n');
}

function dataSection(bundle: EvidenceBundle): string {
  const d = bundle.manifest.data;
  if (!hasData(d)) return '';
  const root = `<p>Data root (per instance): <code>${esc(d.root.path)}</code>${d.root.template ? `, seeded from <code>${esc(d.root.template)}</code> when the instance was created` : ''}.</p>`;
  const rows = d.shared
    .map((x) => `<tr><td><code>${esc(x.name)}</code></td><td><code>${esc(x.host)}</code></td><td><code>${esc(x.target)}</code></td><td>${x.mode === 'ro' ? 'read-only' : '<b>read-write</b>'}</td><td>${x.services.map((s) => `<code>${esc(s)}</code>`).join(', ')}</td></tr>`)
    .join('\n');
  const table = d.shared.length ? `<table><thead><tr><th>Shared dataset</th><th>Host path</th><th>Target</th><th>Mode</th><th>Services</th></tr></thead><tbody>\n${rows}\n</tbody></table>` : '';
  const check = mountCheckLine(bundle.gate);
  return `<section class="card" id="data"><h2>Data</h2>${root}${table}${check ? `<p class="muted">${esc(check.charAt(0).toUpperCase() + check.slice(1))}</p>` : ''}</section>`;
}

function notesSection(notes: string[]): string {
  const body = notes.length ? `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '<p class="muted">None.</p>';
  return `<section class="card" id="notes"><h2>Notes</h2>${body}</section>`;
}

function filesSection(bundle: EvidenceBundle): string {
  const files = bundle.manifest.files;
  if (files.length === 0) return '<section class="card" id="files"><h2>Files in this bundle</h2><p class="muted">None.</p></section>';
  const rows = files
    .map((f) => `<tr><td><a href="${esc(relativeHref(f.path))}">${esc(f.path)}</a></td><td>${esc(f.description)}</td><td class="num">${esc(formatBytes(f.bytes))}</td></tr>`)
    .join('\n');
  return `<section class="card" id="files"><h2>Files in this bundle</h2><table><thead><tr><th>File</th><th>Description</th><th class="num">Size</th></tr></thead><tbody>\n${rows}\n</tbody></table></section>`;
}

const CSS = `
*{box-sizing:border-box}
html{background:#eef1f4}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","DejaVu Sans",sans-serif;font-size:15px;line-height:1.5;color:#1f2933}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono","DejaVu Sans Mono",monospace;font-size:13px}
code{background:#f1f3f5;border-radius:4px;padding:1px 5px;word-break:break-all}
pre{background:#f8f9fa;border:1px solid #e3e7eb;border-radius:6px;padding:10px 12px;white-space:pre-wrap;word-break:break-word;margin:6px 0}
main{max-width:1180px;margin:0 auto;padding:24px}
header{border-radius:10px;padding:20px 24px;color:#fff;display:flex;align-items:center;gap:18px;flex-wrap:wrap}
header.passed{background:#2b8a3e}
header.failed{background:#c92a2a}
header h1{margin:0;font-size:26px;letter-spacing:.02em}
header .who{font-size:16px;opacity:.95}
header code{background:rgba(255,255,255,.18);color:#fff}
header .parts{margin-left:auto;display:flex;gap:8px;flex-wrap:wrap}
header .parts span{background:rgba(255,255,255,.18);border-radius:999px;padding:3px 12px;font-size:13px}
.card{background:#fff;border-radius:10px;padding:18px 24px;margin-top:18px;box-shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.08)}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:16px 0 8px}
h4{font-size:13px;margin:8px 0 4px;color:#52606d}
.lead{margin:0 0 12px}
.muted{color:#7b8794}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;font-weight:600;color:#52606d;border-bottom:2px solid #e3e7eb;padding:6px 10px;white-space:nowrap}
td{border-bottom:1px solid #edf0f2;padding:6px 10px;vertical-align:top}
tbody tr:nth-child(even){background:#fafbfc}
.num{text-align:right;white-space:nowrap}
.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:600;color:#fff}
.s-passed{background:${STATUS_COLORS.passed}}
.s-failed{background:${STATUS_COLORS.failed}}
.s-warning{background:${STATUS_COLORS.warning};color:#1f2933}
.s-skipped{background:${STATUS_COLORS.skipped};color:#1f2933}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:8px 24px;margin:0}
.facts div{display:flex;gap:10px;align-items:baseline;min-width:0}
.facts dt{color:#52606d;font-size:13px;min-width:110px}
.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.timeline-wrap{overflow-x:auto}
#timeline{display:block;max-width:100%;height:auto;font-family:inherit}
.legend{display:flex;gap:18px;font-size:13px;color:#52606d;margin-top:8px}
.legend .origin{margin-left:auto}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.failure{border-left:4px solid ${STATUS_COLORS.failed};background:#fff5f5;padding:4px 14px 10px;margin-top:14px;border-radius:0 6px 6px 0}
.hint{margin:6px 0}
.stats{display:flex;gap:12px;margin-bottom:12px;flex-wrap:wrap}
.stat{border:1px solid #e3e7eb;border-radius:8px;padding:6px 14px;min-width:88px}
.stat b{display:block;font-size:20px}
.stat span{font-size:12px;color:#52606d;text-transform:uppercase;letter-spacing:.05em}
.stat-failed b{color:${STATUS_COLORS.failed}}
.stat-passed b{color:${STATUS_COLORS.passed}}
.failures{list-style:none;padding:0;margin:0}
.failures li{margin-bottom:10px}
.h-healthy{color:${STATUS_COLORS.passed};font-weight:600}
.h-unhealthy{color:${STATUS_COLORS.failed};font-weight:600}
.removed{display:flex;gap:32px;flex-wrap:wrap}
.removed ul{margin:0;padding-left:18px}
summary{cursor:pointer;color:#52606d}
a{color:#1c64c8}
footer{color:#7b8794;font-size:12px;text-align:center;padding:18px 0 8px}
`;

export function renderReportHtml(bundle: EvidenceBundle): string {
  const m = bundle.manifest;
  const result = m.result.passed ? 'passed' : 'failed';
  const part = (name: string, v: boolean | null) => `<span>${esc(name)}: ${v === null ? 'not run' : v ? 'passed' : 'FAILED'}</span>`;
  const teardownState = bundle.teardown ? (teardownClean(bundle.teardown) ? 'clean' : 'NOT CLEAN') : 'not run';
  const title = `sandstack evidence: ${m.result.passed ? 'PASSED' : 'FAILED'} · ${m.instance.id}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header class="${result}">
<h1>${m.result.passed ? 'PASSED' : 'FAILED'}</h1>
<div class="who">instance <code>${esc(m.instance.id)}</code> <span>(${esc(m.instance.kind)})</span></div>
<div class="parts">${part('gate', m.result.gatePassed)}${part('tests', m.result.testsPassed)}<span>teardown: ${esc(teardownState)}</span></div>
</header>
${factsSection(bundle)}
<section class="card" id="timeline-section"><h2>Timeline</h2>
<div class="timeline-wrap">
${renderTimelineSvg(bundle.gate, bundle.tests)}
</div>
${legend(timelineOrigin(bundle.gate, bundle.tests))}
</section>
${gateSection(bundle.gate)}
${testsSection(bundle.tests)}
${servicesSection(bundle.services)}
${teardownSection(bundle.teardown)}
${dataSection(bundle)}
${notesSection(m.notes)}
${filesSection(bundle)}
<footer>Generated by sandstack ${esc(m.versions.sandstack)} · ${esc(m.schema)} · run ${esc(m.runId)} · ${esc(m.createdAt)}</footer>
</main>
</body>
</html>
`;
}
