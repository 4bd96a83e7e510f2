import { describe, expect, it } from 'vitest';
import type { GateReport } from '../../src/gate/report.js';
import type { EvidenceBundle } from '../../src/evidence/model.js';
import { renderReportHtml } from '../../src/evidence/html.js';
import { cell, mdText, renderSummaryMarkdown } from '../../src/evidence/summary.js';
import { at, passingFixture, stage } from '../fixtures/evidence.js';

/** The gate failed at probes; no tests and no teardown. */
function failingFixture(): EvidenceBundle {
  const b = passingFixture();
  const gate: GateReport = {
    ...b.gate!,
    passed: false,
    durationMs: 51_000,
    stages: [
      ...b.gate!.stages.slice(0, 4),
      stage('probes', 20_940, 30_000, 'failed', { error: { code: 'SANDSTACK_PROBE_FAILED', message: 'probe api-health failed' } }),
    ],
    failure: {
      stage: 'probes',
      code: 'SANDSTACK_PROBE_FAILED',
      message: 'probe "api-health" failed: GET /health returned 503 | body: {"db":"down"}',
      hint: 'Check that api can reach db; see `sandstack logs api`',
      service: 'api',
    },
  };
  return {
    ...b,
    manifest: {
      ...b.manifest,
      timings: { gateMs: 51_000, testsMs: null, totalMs: 52_000 },
      result: { gatePassed: false, testsPassed: null, passed: false },
      notes: [],
      files: b.manifest.files.filter((f) => !['tests.json', 'logs/e2e.log', 'junit/e2e.xml'].includes(f.path)),
    },
    gate,
    tests: null,
    teardown: null,
  };
}

/** The rect.bar elements of the timeline, with their attributes. */
function bars(html: string) {
  const svg = html.match(/<svg id="timeline"[\s\S]*?<\/svg>/)?.[0] ?? '';
  return Array.from(svg.matchAll(/<rect class="bar"([^>]*)>/g), (m) => {
    const attr = (name: string) => m[1]!.match(new RegExp(`${name}="([^"]*)"`))?.[1] ?? '';
    return { kind: attr('data-kind'), name: attr('data-name'), status: attr('data-status'), x: Number(attr('x')), width: Number(attr('width')) };
  });
}

describe('renderSummaryMarkdown', () => {
  const md = renderSummaryMarkdown(passingFixture());

  it('starts with a title line naming the overall result and the instance', () => {
    expect(md.split('\n')[0]).toBe('## sandstack evidence: FAILED · `shop-feat-a-3f2a`');
    const ok = passingFixture();
    ok.manifest.result.passed = true;
    expect(renderSummaryMarkdown(ok).split('\n')[0]).toContain('PASSED');
  });

  it('lists the facts: branch, short commit, dirty flag and versions', () => {
    expect(md).toContain('**Branch:** `feat/a`');
    expect(md).toContain('**Commit:** `9c1d2e3` · **dirty:** no');
    expect(md).toContain('sandstack `0.1.0` · Docker `26.1.5` · Compose `2.29.7`');
  });

  it('has a row per gate stage with status and duration', () => {
    expect(md).toContain('### Startability Gate');
    expect(md).toContain('| Stage | Status | Duration | Details |');
    expect(md).toContain('| config | passed | 180 ms | 4 services |');
    expect(md).toContain('| build | passed | 12.1 s | 2 images built |');
    expect(md).toContain('| teardown | skipped | 0 ms | mode up keeps the stack running |');
    const stageRows = md.split('\n').filter((l) => /^\| (config|build|start|healthy|probes|isolation|teardown) \|/.test(l));
    expect(stageRows).toHaveLength(7);
  });

  it('summarises the tests and names the failing test with its message (first line)', () => {
    expect(md).toContain('2 suites · 12 tests: 11 passed, 1 failed, 0 skipped');
    expect(md).toContain('| unit | `unit` | `host` | passed | 8: 8 passed | 2.1 s |');
    expect(md).toContain('| e2e | `e2e` | `api` | **FAILED** (exit 1) | 4: 3 passed, 1 failed | 9.8 s |');
    expect(md).toContain('#### Failures');
    expect(md).toContain('- e2e › test_workers_registered: AssertionError: expected 4 workers registered, got 3 …');
    expect(md).not.toContain('assert 3 == 4');
  });

  it('truncates long failure messages to about 300 characters', () => {
    const b = passingFixture();
    b.tests!.suites[1]!.junit!.failures[0]!.message = `E${'x'.repeat(1000)}`;
    const line = renderSummaryMarkdown(b).split('\n').find((l) => l.startsWith('- e2e › test_workers_registered: '))!;
    expect(line.length).toBeLessThan(360);
    expect(line.endsWith('…')).toBe(true);
  });

  it('has a services table with short image ids and ports', () => {
    expect(md).toContain('| Service | State | Health | Image | Image ID | Ports |');
    expect(md).toContain('| `api` | running | healthy | `shop-api:dev` | `3f2a1b4c5d6e` | `127.0.0.1:49153->8000/tcp` `http://127.0.0.1:49153` |');
    expect(md).toContain('| `db` | running | healthy | `postgres:16` | `aa11bb22cc33` | `5432/tcp (not published)` |');
    expect(md).toContain('| `worker` | running | - | `shop-worker:dev` | - | - |');
  });

  it('states the teardown proof', () => {
    expect(md).toContain('Teardown: removed 4 containers, 1 volume, 1 network in 3.2 s; remaining 0 containers, 0 volumes, 0 networks → verified: nothing left.');
    const dirty = passingFixture();
    dirty.teardown!.remaining.volumes = 1;
    const out = renderSummaryMarkdown(dirty);
    expect(out).toContain('**NOT CLEAN**: 0 containers, 1 volume, 0 networks still present');
    expect(out).not.toContain('nothing left');
  });

  it('lists the notes, escaped', () => {
    expect(md).toContain('### Notes');
    expect(md).toContain('- Allowed: service \\`worker\\` has no healthcheck (allowances.noHealthcheck)');
  });

  it('links every bundle file relatively, with its description', () => {
    const b = passingFixture();
    for (const f of b.manifest.files.filter((f) => !f.path.includes(' '))) {
      expect(md).toContain(`- [${f.path}](${f.path}) — ${f.description}`);
    }
    expect(md).toContain('- [compose/rendered compose.yaml](compose/rendered%20compose.yaml) — The isolated Compose file');
    expect(md).not.toMatch(/\]\((https?:|\/)/);
  });

  it('says "not run" for the parts that did not run, and shows the gate failure', () => {
    const out = renderSummaryMarkdown(failingFixture());
    expect(out).toContain('Tests: not run.');
    expect(out).toContain('Teardown: not run.');
    expect(out).not.toContain('#### Failures');
    expect(out).toContain('| probes | **FAILED** | 30.0 s |');
    expect(out).toContain('**Failure** at stage `probes` (`SANDSTACK_PROBE_FAILED`, service `api`):');
    expect(out).toContain('probe "api-health" failed: GET /health returned 503 | body: {"db":"down"}');
    expect(out).toContain('**Hint:** Check that api can reach db; see \\`sandstack logs api\\`');
    expect(out).toContain('### Notes\n\nNone.');

    const none = failingFixture();
    none.gate = null;
    none.manifest.timings.gateMs = null;
    const empty = renderSummaryMarkdown(none);
    expect(empty).toContain('Startability Gate: not run.');
    expect(empty).toContain('gate not run · tests not run');
  });

  it('escapes pipes and newlines in table cells', () => {
    const b = passingFixture();
    b.gate!.stages[1]!.details = { summary: 'built a | b\nand c' };
    const out = renderSummaryMarkdown(b);
    expect(out).toContain('| build | passed | 12.1 s | built a \\| b<br>and c |');
    // Every table row still has the same number of unescaped separators as its header.
    const rows = out.split('\n').filter((l) => /^\| (config|build|start) \|/.test(l));
    for (const r of rows) expect(r.replace(/\\\|/g, '').split('|').length).toBe(6);
  });

  it('escapes a pipe inside a failing test message so the services and suites tables stay intact', () => {
    const b = passingFixture();
    b.tests!.suites[1]!.junit!.failures[0]!.message = 'expected a | b';
    b.services[0]!.state = 'running | restarting';
    const out = renderSummaryMarkdown(b);
    expect(out).toContain('- e2e › test_workers_registered: expected a | b');
    expect(out).toContain('| `api` | running \\| restarting | healthy |');
  });

  it('escapes Markdown and HTML in free text', () => {
    expect(mdText('a *b* <script>x</script> [l](u) _em_ snake_case')).toBe('a \\*b\\* \\<script\\>x\\</script\\> \\[l\\](u) \\_em\\_ snake_case');
    expect(mdText('# heading\n- item\n1. one\n---\n+ x')).toBe('\\# heading\n\\- item\n1\\. one\n\\---\n\\+ x');
    expect(mdText('0.1.0 -x #tag 2) two')).toBe('0.1.0 -x #tag 2) two');
    expect(cell('a|b\nc')).toBe('a\\|b<br>c');
  });
});

describe('renderReportHtml', () => {
  const html = renderReportHtml(passingFixture());

  it('is one self-contained page: no scripts, no external resources', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/@import|url\(/i);
    // The only http(s) text is the service URL, shown as text.
    const urls = Array.from(html.matchAll(/https?:\/\/[^\s<"']*/g), (m) => m[0]);
    expect(urls).toEqual(['http://127.0.0.1:49153']);
    expect(html).toContain('<code class="url">http://127.0.0.1:49153</code>');
  });

  it('shows the result, the instance and the facts', () => {
    expect(html).toContain('<header class="failed">');
    expect(html).toContain('<h1>FAILED</h1>');
    expect(html).toContain('instance <code>shop-feat-a-3f2a</code>');
    expect(html).toContain('<code>feat/a</code>');
    expect(html).toContain('>9c1d2e3</code>');
    expect(html).toContain('<code>26.1.5</code>');
  });

  it('draws one bar per gate stage and per test suite, with status, positive width and increasing x', () => {
    const bs = bars(html);
    expect(bs).toHaveLength(7 + 2);
    expect(bs.map((b) => `${b.kind}:${b.name}:${b.status}`)).toEqual([
      'stage:config:passed',
      'stage:build:passed',
      'stage:start:passed',
      'stage:healthy:passed',
      'stage:probes:passed',
      'stage:isolation:passed',
      'stage:teardown:skipped',
      'suite:unit:passed',
      'suite:e2e:failed',
    ]);
    for (const b of bs) expect(b.width).toBeGreaterThan(0);
    expect(bs.find((b) => b.name === 'teardown')!.width).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < bs.length; i++) expect(bs[i]!.x).toBeGreaterThan(bs[i - 1]!.x);
    // Common time axis: the build bar is far wider than the config bar (12.1 s vs 0.18 s).
    expect(bs[1]!.width / bs[0]!.width).toBeGreaterThan(40);
  });

  it('colours bars by status and gives each a tooltip', () => {
    const svg = html.match(/<svg id="timeline"[\s\S]*?<\/svg>/)![0];
    expect(svg).toMatch(/data-name="e2e" data-status="failed"[^>]*fill="#e03131"/);
    expect(svg).toMatch(/data-name="teardown" data-status="skipped"[^>]*fill="#adb5bd"/);
    expect(svg).toMatch(/data-name="build" data-status="passed"[^>]*fill="#2f9e44"/);
    expect(svg).toContain('<title>build (stage): passed, 12.1 s, starts at +200 ms</title>');
    expect(svg).toContain('<title>e2e (e2e suite in api): FAILED, 9.8 s, starts at +25.3 s</title>');
    // Second ticks on the x axis.
    expect(svg).toContain('>0 s</text>');
    expect(svg).toContain('>10 s</text>');
  });

  it('has tables for stages, tests with failures, services, teardown and links to the files', () => {
    expect(html).toContain('<td><code>probes</code></td><td><span class="pill s-passed">passed</span></td>');
    expect(html).toContain('<code>e2e › test_workers_registered</code>');
    expect(html).toContain('AssertionError: expected 4 workers registered, got 3\nassert 3 == 4');
    expect(html).toContain('>3f2a1b4c5d6e</code>');
    expect(html).toContain('verified: nothing left');
    for (const f of passingFixture().manifest.files) {
      expect(html).toContain(`>${f.path}</a>`);
    }
    expect(html).toContain('<a href="logs/e2e.log">logs/e2e.log</a>');
    expect(html).toContain('<a href="compose/rendered%20compose.yaml">');
  });

  it('HTML-escapes every piece of text from the bundle', () => {
    const b = passingFixture();
    b.tests!.suites[1]!.junit!.failures[0]!.message = '<script>alert(1)</script> & "quotes"';
    b.tests!.suites[1]!.name = 'e2e"><script>alert(2)</script>';
    b.services[0]!.name = '<img src=x onerror=alert(3)>';
    b.manifest.notes = ['<b>bold</b>'];
    b.manifest.files.push({ path: '"><script>alert(4)</script>.txt', description: '<i>x</i>', bytes: 1 });
    const out = renderReportHtml(b);
    expect(out).not.toContain('<script>alert');
    expect(out).not.toContain('<img src=x');
    expect(out).not.toContain('<b>bold</b>');
    expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;');
    expect(out).toContain('data-name="e2e&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"');
    expect(bars(out)).toHaveLength(9);
  });

  it('says "not run" for missing parts and shows the gate failure', () => {
    const out = renderReportHtml(failingFixture());
    const bs = bars(out);
    expect(bs).toHaveLength(5);
    expect(bs.map((b) => b.status)).toEqual(['passed', 'passed', 'passed', 'passed', 'failed']);
    expect(out).toMatch(/<section class="card" id="tests"><h2>Tests<\/h2><p class="muted">not run<\/p>/);
    expect(out).toMatch(/<section class="card" id="teardown"><h2>Teardown<\/h2><p class="muted">not run<\/p>/);
    expect(out).toContain('<h3>Failure</h3><p>stage <code>probes</code> · code <code>SANDSTACK_PROBE_FAILED</code> · service <code>api</code></p>');
    expect(out).toContain('<pre>probe &quot;api-health&quot; failed: GET /health returned 503 | body: {&quot;db&quot;:&quot;down&quot;}</pre>');
    expect(out).toContain('<strong>Hint:</strong> Check that api can reach db; see `sandstack logs api`');

    const nothing = failingFixture();
    nothing.gate = null;
    const empty = renderReportHtml(nothing);
    expect(bars(empty)).toHaveLength(0);
    expect(empty).toMatch(/id="gate"><h2>Startability Gate<\/h2><p class="muted">not run<\/p>/);
  });
});

describe('evidence: the data the instance saw', () => {
  function withData(): EvidenceBundle {
    const b = passingFixture();
    b.manifest.data = {
      shared: [
        { name: 'prices', host: '/mnt/datasets/prices', target: '/datasets/prices', services: ['backend', 'worker'], mode: 'ro' },
        { name: 'models', host: '/srv/models', target: '/models', services: ['trainer'], mode: 'rw' },
      ],
      root: { path: '/home/dev/.local/share/sandstack/instances/shop-feat-a-3f2a/data', template: '/home/dev/shop/seed-data' },
    };
    b.gate!.stages = b.gate!.stages.map((s) =>
      s.name === 'isolation'
        ? { ...s, details: { mounts: [{ kind: 'dataset' }, { kind: 'dataset' }, { kind: 'project' }, { kind: 'allowed' }] } }
        : s,
    );
    return b;
  }

  it('summary.md lists the data root, its template, each shared dataset and what the isolation stage checked', () => {
    const md = renderSummaryMarkdown(withData());
    const section = md.slice(md.indexOf('### Data'), md.indexOf('### Notes'));
    expect(section).toContain('Data root (per instance): `/home/dev/.local/share/sandstack/instances/shop-feat-a-3f2a/data`, seeded from `/home/dev/shop/seed-data` when the instance was created.');
    expect(section).toContain('| Shared dataset | Host path | Target | Mode | Services |');
    expect(section).toContain('| `prices` | `/mnt/datasets/prices` | `/datasets/prices` | read-only | `backend`, `worker` |');
    expect(section).toContain('| `models` | `/srv/models` | `/models` | **read-write** | `trainer` |');
    expect(section).toContain("The isolation stage checked Docker's mount list: 2 dataset mounts as declared, no undeclared host mount outside the project, 1 allowed by policy.allow.");
  });

  it('report.html has a Data card, escaped', () => {
    const b = withData();
    b.manifest.data!.shared[0]!.name = '<b>x</b>';
    const html = renderReportHtml(b);
    const card = html.slice(html.indexOf('<section class="card" id="data">'), html.indexOf('<section class="card" id="notes">'));
    expect(card).toContain('<h2>Data</h2>');
    expect(card).toContain('<code>&lt;b&gt;x&lt;/b&gt;</code>');
    expect(card).toContain('<code>/srv/models</code>');
    expect(card).toContain('<b>read-write</b>');
    expect(card).toContain('2 dataset mounts as declared');
  });

  it('says nothing about data when none is declared (and for bundles written before)', () => {
    const b = passingFixture();
    expect(renderSummaryMarkdown(b)).not.toContain('### Data');
    b.manifest.data = { shared: [], root: { path: '/x/data', template: null } };
    expect(renderSummaryMarkdown(b)).not.toContain('### Data');
    expect(renderReportHtml(b)).not.toContain('id="data"');
  });
});
