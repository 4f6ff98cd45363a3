import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Property tests do real arithmetic; keep the default timeout generous on shared 2-core machines.
    testTimeout: 20_000,
  },
});
