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
import { passingFixture } from '../fixtures/evidence.js';

const SCREENSHOT = path.join(ARTIFACTS, 'report-timeline.png');

/** The shared bundle with a healthy stage that warned and a failure message that must be escaped. */
function fixture(): EvidenceBundle {
  const bundle = passingFixture();
  const healthy = bundle.gate!.stages.find((s) => s.name === 'healthy')!;
  healthy.status = 'warning';
  healthy.details = { warnings: ['worker has no healthcheck'] };
  const failure = bundle.tests!.suites[1]!.junit!.failures[0]!;
  failure.message = 'AssertionError: expected 4 workers registered, got 3 <script>alert(1)</script>';
  return bundle;
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
