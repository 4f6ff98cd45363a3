/**
 * Converts model folders to GGUF for llama.cpp peers (node-llama-cpp): writes `<folder>/gguf/model-f32.gguf`
 * (and `model-f16.gguf` with --f16). Skips a file newer than the folder's onnx/model.onnx unless --force.
 *   pnpm --filter @draft/models make:gguf [perf|tiny-llama|random-target|<folder>…] [--f16] [--force]
 * Default: perf (run make:perf first).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type FixtureName, fixturePath } from '../src/fixtures.js';
import { convertToGguf, ggufPath } from '../src/gguf.js';

const args = process.argv.slice(2);
const force = args.includes('--force');
const dtypes: ('f32' | 'f16')[] = args.includes('--f16') ? ['f32', 'f16'] : ['f32'];
const names = args.filter((a) => !a.startsWith('--'));
const KNOWN = ['tiny-llama', 'tiny-qwen2-gqa', 'random-draft', 'random-target', 'perf', 'perf-draft', 'perf-gqa'];
for (const name of names.length ? names : ['perf']) {
  const dir = KNOWN.includes(name) ? fixturePath(name as FixtureName) : resolve(name);
  const onnx = join(dir, 'onnx', 'model.onnx');
  if (!existsSync(onnx)) throw new Error(`${onnx} missing${name.startsWith('perf') ? " (run 'pnpm --filter @draft/models make:perf')" : ''}`);
  for (const dtype of dtypes) {
    const out = ggufPath(dir, dtype);
    if (!force && existsSync(out) && statSync(out).mtimeMs > statSync(onnx).mtimeMs) {
      console.log(`${name}: ${out} up to date`);
      continue;
    }
    const t0 = Date.now();
    convertToGguf({ dir, outPath: out, dtype });
    console.log(`${name}: wrote ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB) in ${Date.now() - t0} ms`);
  }
}
