/**
 * Writes the perf-shaped model (not committed) to models/perf/ (decomposed), its draft to models/perf-draft/, and
 * models/perf-gqa/ (GQA variant).
 * Skips a folder whose config.json already records the same spec. Pass --force to rewrite, --no-gqa to skip the
 * GQA variant.
 *   pnpm --filter @draft/models make:perf
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CHAT_TEMPLATE } from '../src/tokenizer.js';
import { fixturePath, PERF_DRAFT_SPEC, PERF_SPEC } from '../src/fixtures.js';
import type { ModelSpec } from '../src/spec.js';
import { writeDecoderModel } from '../src/writer.js';

const force = process.argv.includes('--force');
const variants: { name: 'perf' | 'perf-gqa' | 'perf-draft'; spec: ModelSpec }[] = [
  { name: 'perf', spec: PERF_SPEC },
  { name: 'perf-draft', spec: PERF_DRAFT_SPEC },
];
if (!process.argv.includes('--no-gqa')) variants.push({ name: 'perf-gqa', spec: { ...PERF_SPEC, attention: 'gqa' } });

for (const { name, spec } of variants) {
  const dir = fixturePath(name);
  const cfgPath = join(dir, 'config.json');
  if (!force && existsSync(cfgPath) && existsSync(join(dir, 'onnx', 'model.onnx'))) {
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    if (JSON.stringify(cfg.draft_spec) === JSON.stringify(spec)) {
      console.log(`${name}: up to date (${dir})`);
      continue;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  writeDecoderModel({ dir, spec, chatTemplate: CHAT_TEMPLATE, extraConfig: { draft_spec: spec } });
  console.log(`${name}: wrote ${dir} in ${Date.now() - t0} ms`);
}
