import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Real ONNX models run on shared 2-core machines.
    testTimeout: 60_000,
  },
});
