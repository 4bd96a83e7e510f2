/** Headless Chromium for tests that look at what sandstack shows a person (report.html). */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ROOT } from './helpers.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Screenshots kept among the test run's artifacts. */
export const ARTIFACTS = path.join(ROOT, 'test-results');

/** Launches Debian's Chromium; fails (never skips) with the set-up command when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: this test needs Chromium. Run \`bash scripts/setup-system.sh --with-chromium\` and rerun the tests.`);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}
