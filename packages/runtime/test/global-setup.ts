import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds dist/worker.js (no type declarations) when any source file is newer. */
export default async function setup(): Promise<void> {
  const worker = join(root, 'dist', 'worker.js');
  if (existsSync(worker) && statSync(worker).mtimeMs >= newest(join(root, 'src'))) return;
  const { build } = await import('tsup');
  await build({ entry: [join(root, 'src/worker.ts')], outDir: join(root, 'dist'), format: ['esm'], target: 'node20', dts: false, clean: false, sourcemap: true, silent: true, config: false });
}
