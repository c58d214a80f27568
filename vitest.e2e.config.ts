import { defineConfig } from 'vitest/config';

/** End-to-end tests: build the renderer, start a host, drive Chromium (or Electron). Slow; run alone. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
