/** Test results, as `sandstack test` records them (tests.json in the run directory). */

export interface TestCaseFailure {
  suite: string;
  name: string;
  message: string;
  /** failure (assertion) or error (crash) in JUnit terms. */
  kind: 'failure' | 'error';
}

export interface JUnitSummary {
  tests: number;
  passed: number;
  failed: number;
  skipped: number;
  /** Seconds, from the JUnit `time` attributes. */
  timeSeconds: number;
  failures: TestCaseFailure[];
  cases: { suite: string; name: string; status: 'passed' | 'failed' | 'skipped'; timeSeconds: number }[];
  /** JUnit files parsed, relative to the run directory. */
  files: string[];
}

export interface SuiteRun {
  kind: 'unit' | 'e2e';
  name: string;
  /** `host` or the Compose service it ran in. */
  where: string;
  command: string;
  exitCode: number;
  passed: boolean;
  startedAt: string;
  durationMs: number;
  /** Output log, relative to the run directory. */
  log: string;
  junit?: JUnitSummary;
}

export interface TestRunResult {
  runId: string;
  instance: string;
  /** Absolute path of the run directory (`<evidence root>/<instance>/<run-id>`). */
  dir: string;
  startedAt: string;
  durationMs: number;
  passed: boolean;
  totals: { suites: number; tests: number; passed: number; failed: number; skipped: number };
  suites: SuiteRun[];
}
