import { defineConfig } from 'tsup';

export default defineConfig({
  // index: side-effect free; register: registers the native backend on import (`@draft/cuda/register`).
  entry: ['src/index.ts', 'src/register.ts', 'src/decode-engine.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
