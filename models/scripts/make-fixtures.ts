/**
 * Regenerates the committed fixture models deterministically:
 *   pnpm --filter @draft/models exec tsx scripts/make-fixtures.ts   (or: pnpm --filter @draft/models make:fixtures)
 */
import { rmSync } from 'node:fs';
import { FIXTURES, fixturePath } from '../src/fixtures.js';
import { writeDecoderModel } from '../src/writer.js';

for (const f of FIXTURES) {
  const dir = fixturePath(f.name);
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  writeDecoderModel({ dir, spec: f.spec, chatTemplate: f.chatTemplate });
  console.log(`wrote ${f.name} -> ${dir} (${Date.now() - t0} ms)`);
}
