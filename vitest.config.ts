import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Docker engine and measure real stacks: run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 600_000,
    reporters: ['default', './test/summary-reporter.ts'],
    // Tests assert on the CLI's plain text. picocolors colours output when CI is set (CI runners set
    // it), even into a pipe; NO_COLOR keeps every spawned CLI plain wherever the suite runs.
    env: { NO_COLOR: '1' },
  },
});
