import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests import the sources; the worker thread needs the built dist/worker.js (rebuilt when stale).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // ORT sessions are heavy on the shared 2-core machines: run files one after another.
    fileParallelism: false,
  },
});
