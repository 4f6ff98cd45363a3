import { defineConfig } from 'tsup';

export default defineConfig({
  // engine-child: the process `runEngineInChild` spawns; engines: the machinery bench scripts import.
  entry: { index: 'src/index.ts', bin: 'src/bin.ts', 'engine-child': 'src/bench/engine-child.ts', engines: 'src/bench/engines.ts' },
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
