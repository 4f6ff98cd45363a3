import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The TS reference does the arithmetic in plain JS on shared 2-core machines.
    testTimeout: 60_000,
  },
});
