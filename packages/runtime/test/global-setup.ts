import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDtypeFixtures } from '@draft/models';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Writes the generated dtype / external-data fixture folders (models/fixtures/<name>-dtypes|-external|-chunked)
 * when missing, and builds dist/worker.js (no type declarations) when any source file is newer.
 */
export default async function setup(): Promise<void> {
  const fixtures = join(root, '..', '..', 'models', 'fixtures');
  for (const name of ['tiny-llama', 'tiny-qwen2-gqa']) writeDtypeFixtures(join(fixtures, name), fixtures, name);
  const worker = join(root, 'dist', 'worker.js');
  if (existsSync(worker) && statSync(worker).mtimeMs >= newest(join(root, 'src'))) return;
  const { build } = await import('tsup');
  await build({ entry: [join(root, 'src/worker.ts')], outDir: join(root, 'dist'), format: ['esm'], target: 'node20', dts: false, clean: false, sourcemap: true, silent: true, config: false });
}
