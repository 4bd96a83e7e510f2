/**
 * Prints the closing lines CI reads: one `FAILED <file> > <test>: <first error line>` per failed test
 * (scripts/test.sh repeats them at the very end, where a truncated CI log still shows them), then
 * `N passed, N failed, N skipped`.
 */
import type { Reporter, TestModule } from 'vitest/node';

function firstLine(message: unknown): string {
  const text = String(message ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const lines: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const result = t.result();
        if (result.state === 'passed') passed++;
        else if (result.state === 'failed') {
          failed++;
          const error = result.errors?.[0];
          lines.push(`FAILED ${m.moduleId.replace(`${process.cwd()}/`, '')} > ${t.fullName}: ${firstLine(error?.message)}`);
        } else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) {
        failed++;
        lines.push(`FAILED ${m.moduleId.replace(`${process.cwd()}/`, '')}: ${firstLine(m.errors()[0]?.message)}`);
      }
    }
    for (const e of errors) lines.push(`FAILED (run error): ${firstLine((e as { message?: unknown })?.message ?? e)}`);
    failed += errors.length;
    process.stdout.write(`\n${lines.map((l) => `${l}\n`).join('')}${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
