/**
 * Writes the perf-shaped model (not committed) to models/perf/ (decomposed), its draft to models/perf-draft/, and
 * models/perf-gqa/ (GQA variant).
 * Skips a folder whose config.json already records the same spec. Pass --force to rewrite, --no-gqa to skip the
 * GQA variant. --fp16 also writes onnx/model_fp16.onnx (float16 weights, activations and KV, as Optimum's fp16
 * exports are) into perf/ and perf-draft/ when missing or older than model.onnx.
 *   pnpm --filter @draft/models make:perf [--force] [--no-gqa] [--fp16]
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertToFp16 } from '../src/convert-fp16.js';
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
  let upToDate = false;
  if (!force && existsSync(cfgPath) && existsSync(join(dir, 'onnx', 'model.onnx'))) {
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    upToDate = JSON.stringify(cfg.draft_spec) === JSON.stringify(spec);
  }
  if (upToDate) {
    console.log(`${name}: up to date (${dir})`);
  } else {
    rmSync(dir, { recursive: true, force: true });
    const t0 = Date.now();
    writeDecoderModel({ dir, spec, chatTemplate: CHAT_TEMPLATE, extraConfig: { draft_spec: spec } });
    console.log(`${name}: wrote ${dir} in ${Date.now() - t0} ms`);
  }
  if (process.argv.includes('--fp16') && name !== 'perf-gqa') {
    const fp32 = join(dir, 'onnx', 'model.onnx');
    const fp16 = join(dir, 'onnx', 'model_fp16.onnx');
    if (existsSync(fp16) && statSync(fp16).mtimeMs >= statSync(fp32).mtimeMs) continue;
    writeFileSync(fp16, convertToFp16(readFileSync(fp32)).bytes);
    console.log(`${name}: wrote ${fp16}`);
  }
}
