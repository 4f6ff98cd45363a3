import { defineConfig } from 'tsup';

export default defineConfig({
  // engine-child: the process `runEngineInChild` spawns (found next to the bundle at run time).
  entry: { index: 'src/index.ts', 'engine-child': 'src/engine-child.ts' },
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
