import { defineConfig } from 'tsup';

export default defineConfig({
  // `testing` ships the fakes as the `@draft/core/testing` subpath (like vercel/ai's `/test`).
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
