import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Property tests run real attention maths; keep the timeout generous on shared 2-core machines.
    testTimeout: 30_000,
  },
});
