/**
 * Writes the dtype and external-data variants of the tiny fixtures (gitignored, deterministic):
 *   pnpm --filter @draft/models make:dtypes   (tsx scripts/make-dtypes.ts [--force])
 */
import { dirname } from 'node:path';
import { writeDtypeFixtures } from '../src/dtype-fixtures.js';
import { fixturePath } from '../src/fixtures.js';

const force = process.argv.includes('--force');
for (const name of ['tiny-llama', 'tiny-qwen2-gqa'] as const) {
  const t0 = Date.now();
  const dirs = writeDtypeFixtures(fixturePath(name), dirname(fixturePath(name)), name, { force });
  console.log(`${name}: ${Object.values(dirs).join(', ')} (${Date.now() - t0} ms)`);
}
