import { defineConfig } from 'tsup';

export default defineConfig({
  // worker.ts is its own entry: the model starts it with `new URL('./worker.js', import.meta.url)`.
  entry: ['src/index.ts', 'src/worker.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
