/**
 * Opens a rendered report.html in headless Chromium (playwright-core, the system's /usr/bin/chromium)
 * and checks that the timeline actually renders: visible, one bar per stage and suite, laid out on a
 * time axis, coloured by status. Saves a full-page screenshot to test-results/report-timeline.png.
 * No Docker needed.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, launchChromium } from './browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvidenceBundle } from '../../src/evidence/model.js';
import { renderReportHtml, STATUS_COLORS } from '../../src/evidence/html.js';
import type { StageResult } from '../../src/gate/report.js';

const SCREENSHOT = path.join(ARTIFACTS, 'report-timeline.png');

const T0 = Date.parse('2025-06-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const stage = (name: StageResult['name'], startMs: number, durationMs: number, status: StageResult['status'] = 'passed', details: Record<string, unknown> = {}): StageResult => ({
  name,
  status,
  startedAt: at(startMs),
  durationMs,
  details,
});

/** Gate passed (teardown skipped in mode up), unit suite passed, e2e suite with 1 of 4 tests failing. */
function fixture(): EvidenceBundle {
  const id = 'shop-feat-a-3f2a';
  return {
    dir: '/tmp/bundle',
    manifest: {
      schema: 'sandstack.evidence/v1',
      createdAt: at(40_000),
      runId: '20250601T100030Z-ab12',
      instance: { id, kind: 'worktree', worktree: '/home/dev/shop-feat-a', projectDir: '/home/dev/shop-feat-a', runInstance: id },
      git: { branch: 'feat/a', commit: '9c1d2e3f4a5b6c7d8e9f00112233445566778899', dirty: true },
      versions: { sandstack: '0.1.0', docker: '26.1.5', compose: '2.29.7', node: 'v20.19.4' },
      timings: { gateMs: 22_450, testsMs: 12_600, totalMs: 40_000 },
      result: { gatePassed: true, testsPassed: false, passed: false },
      notes: ['Allowed: service worker has no healthcheck (allowances.noHealthcheck)'],
      redaction: { secretsRedacted: 0, marker: '[REDACTED]' },
      files: [
        { path: 'manifest.json', description: 'This manifest', bytes: 2_310 },
        { path: 'summary.md', description: 'PR summary (Markdown)', bytes: 3_900 },
        { path: 'report.html', description: 'This report', bytes: 24_100 },
        { path: 'gate.json', description: 'Startability Gate report', bytes: 5_120 },
        { path: 'tests.json', description: 'Test run results', bytes: 3_004 },
        { path: 'logs/e2e.log', description: 'e2e suite output', bytes: 18_220 },
      ],
    },
    gate: {
      passed: true,
      mode: 'up',
      instance: { id, worktree: '/home/dev/shop-feat-a', kind: 'worktree' },
      startedAt: at(0),
      durationMs: 22_450,
      deadlineSeconds: 180,
      stages: [
        stage('config', 0, 180, 'passed', { summary: '4 services' }),
        stage('build', 200, 12_100, 'passed', { summary: '2 images built' }),
        stage('start', 12_320, 2_900),
        stage('healthy', 15_230, 5_700, 'warning', { warnings: ['worker has no healthcheck'] }),
        stage('probes', 20_940, 1_300, 'passed', { summary: '3 probes' }),
        stage('isolation', 22_250, 190),
        stage('teardown', 22_445, 0, 'skipped', { reason: 'mode up keeps the stack running' }),
      ],
    },
    tests: {
      runId: '20250601T100030Z-ab12',
      instance: id,
      dir: '/tmp/run',
      startedAt: at(23_000),
      durationMs: 12_600,
      passed: false,
      totals: { suites: 2, tests: 12, passed: 11, failed: 1, skipped: 0 },
      suites: [
        {
          kind: 'unit', name: 'unit', where: 'host', command: 'npm test', exitCode: 0, passed: true, startedAt: at(23_000), durationMs: 2_100, log: 'logs/unit.log',
          junit: { tests: 8, passed: 8, failed: 0, skipped: 0, timeSeconds: 1.9, failures: [], cases: [], files: [] },
        },
        {
          kind: 'e2e', name: 'e2e', where: 'api', command: 'pytest -q e2e.py', exitCode: 1, passed: false, startedAt: at(25_300), durationMs: 9_800, log: 'logs/e2e.log',
          junit: {
            tests: 4, passed: 3, failed: 1, skipped: 0, timeSeconds: 9.4, cases: [], files: [],
            failures: [{ suite: 'e2e', name: 'test_workers_registered', message: 'AssertionError: expected 4 workers registered, got 3 <script>alert(1)</script>', kind: 'failure' }],
          },
        },
      ],
    },
    services: [
      { name: 'api', state: 'running', health: 'healthy', image: 'shop-api:dev', imageId: 'sha256:3f2a1b4c5d6e7f8091a2b3c4d5e6f7081', ports: [{ container: 8000, protocol: 'tcp', host: 49153, hostIp: '127.0.0.1', url: 'http://127.0.0.1:49153' }] },
      { name: 'db', state: 'running', health: 'healthy', image: 'postgres:16', imageId: 'sha256:aa11bb22cc33dd44ee55ff66778899', ports: [{ container: 5432, protocol: 'tcp', host: null, hostIp: null, url: null }] },
      { name: 'redis', state: 'running', health: 'healthy', image: 'redis:7', imageId: 'sha256:bb22cc33dd44ee55ff6677889900', ports: [] },
      { name: 'worker', state: 'running', health: null, image: 'shop-worker:dev', imageId: null, ports: [] },
    ],
    teardown: {
      at: at(39_000),
      instance: id,
      removed: { containers: ['ss-shop-a-api-1', 'ss-shop-a-db-1', 'ss-shop-a-redis-1', 'ss-shop-a-worker-1'], volumes: ['ss-shop-a_pgdata'], networks: ['ss-shop-a_default'] },
      remaining: { containers: 0, volumes: 0, networks: 0 },
      durationMs: 3_200,
    },
  };
}

/** `#e03131` → `rgb(224, 49, 49)`, as getComputedStyle reports colours. */
function rgb(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

describe('report.html in headless Chromium', () => {
  const bundle = fixture();
  const stageCount = bundle.gate!.stages.length;
  const suiteCount = bundle.tests!.suites.length;
  let tmp: string;
  let browser: Browser | undefined;
  let page: Page;
  const externalRequests: string[] = [];
  const consoleErrors: string[] = [];

  // Without Chromium (or when it cannot start) every test fails with the reason: a failing hook
  // alone would have vitest report the tests as skipped.
  let setupError: Error | undefined;
  const needChromium = () => {
    if (setupError) throw setupError;
  };

  beforeAll(async () => {
    try {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'sandstack-report-'));
      const file = path.join(tmp, 'report.html');
      await writeFile(file, renderReportHtml(bundle));
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) externalRequests.push(r.url());
      });
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => consoleErrors.push(e.message));
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    } catch (e) {
      setupError = new Error(`could not open the report in ${CHROMIUM}: ${(e as Error).message}`, { cause: e });
    }
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('shows the timeline with one visible bar per gate stage and per test suite', async () => {
    needChromium();
    expect(await page.locator('svg#timeline').isVisible()).toBe(true);
    const bars = page.locator('svg#timeline rect.bar');
    expect(await bars.count()).toBe(stageCount + suiteCount);
    for (let i = 0; i < stageCount + suiteCount; i++) {
      const box = await bars.nth(i).boundingBox();
      expect(box, `bar ${i} has a bounding box`).not.toBeNull();
      expect(box!.width).toBeGreaterThan(0);
      expect(box!.height).toBeGreaterThan(0);
    }
  });

  it('lays sequential stages out left to right, on a common axis', async () => {
    needChromium();
    const boxes = await page.locator('svg#timeline rect.bar[data-kind="stage"]').evaluateAll((els) =>
      els.map((el) => {
        const r = el.getBoundingClientRect();
        return { name: el.getAttribute('data-name'), x: r.x, width: r.width, y: r.y };
      }),
    );
    expect(boxes.map((b) => b.name)).toEqual(bundle.gate!.stages.map((s) => s.name));
    for (let i = 1; i < boxes.length; i++) {
      expect(boxes[i]!.x, `${boxes[i]!.name} starts right of ${boxes[i - 1]!.name}`).toBeGreaterThan(boxes[i - 1]!.x);
      expect(boxes[i]!.y, `${boxes[i]!.name} is on its own row below ${boxes[i - 1]!.name}`).toBeGreaterThan(boxes[i - 1]!.y);
    }
    const suites = await page.locator('svg#timeline rect.bar[data-kind="suite"]').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().x));
    expect(suites[0]!).toBeGreaterThan(boxes[boxes.length - 1]!.x);
    // build (12.1 s) is far wider than config (180 ms).
    expect(boxes[1]!.width).toBeGreaterThan(boxes[0]!.width * 20);
  });

  it('colours bars by status', async () => {
    needChromium();
    const fill = (sel: string) => page.locator(sel).evaluate((el) => getComputedStyle(el).fill);
    expect(await fill('rect.bar[data-kind="suite"][data-name="e2e"]')).toBe(rgb(STATUS_COLORS.failed));
    expect(await fill('rect.bar[data-kind="suite"][data-name="e2e"]')).toBe('rgb(224, 49, 49)');
    expect(await fill('rect.bar[data-kind="suite"][data-name="unit"]')).toBe(rgb(STATUS_COLORS.passed));
    expect(await fill('rect.bar[data-name="healthy"]')).toBe(rgb(STATUS_COLORS.warning));
    expect(await fill('rect.bar[data-name="teardown"]')).toBe(rgb(STATUS_COLORS.skipped));
  });

  it('renders the rest of the report as text, loads nothing from outside and runs no injected script', async () => {
    needChromium();
    expect(await page.locator('header h1').innerText()).toBe('FAILED');
    await expect(page.locator('#tests .failures').innerText()).resolves.toContain('e2e › test_workers_registered');
    await expect(page.locator('#tests .failures').innerText()).resolves.toContain('<script>alert(1)</script>');
    expect(await page.locator('#files a').count()).toBe(bundle.manifest.files.length);
    expect(externalRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('saves a full-page screenshot', async () => {
    needChromium();
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });
});
