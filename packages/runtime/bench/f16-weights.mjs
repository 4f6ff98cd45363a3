#!/usr/bin/env node
// Benchmark (not a test): the native engine on the perf model's float32 file and on its fp16 export
// (onnx/model_fp16.onnx, float16 weights and KV), side by side in one process, rounds interleaved; medians of 3.
//
//   pnpm build && pnpm --filter @draft/models make:perf --no-gqa --fp16
//   node packages/runtime/bench/f16-weights.mjs [context (2048)]
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');
const { loadModel } = await import(join(root, 'packages', 'runtime', 'dist', 'index.js'));
const cuda = await import(join(root, 'packages', 'cuda', 'dist', 'index.js'));
cuda.registerNativeBackend();
const n = Number(process.argv[2] ?? 2048);
const ids = Array.from({ length: n }, (_, i) => (i * 7919 + 13) % 500);
const models = {};
for (const dtype of ['fp32', 'fp16']) models[dtype] = await loadModel(join(root, 'models', 'perf'), { dtype, threads: 2, decodeEngine: 'native', prefillEngine: 'native' });
const res = { fp32: [], fp16: [] };
for (let round = 0; round < 3; round++) {
  for (const dtype of ['fp32', 'fp16']) {
    const r = await models[dtype].generate({ inputIds: ids }, { maxNewTokens: 33 });
    res[dtype].push({ prefill: r.timings.prefillMs, tps: r.timings.decodeTokensPerSecond, tokens: r.tokens.join(',') });
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[1];
for (const dtype of ['fp32', 'fp16']) console.log(`${n} ${dtype}: prefill ${med(res[dtype].map((r) => r.prefill)).toFixed(0)} ms, decode ${med(res[dtype].map((r) => r.tps)).toFixed(1)} tok/s`);
console.log(`fp16 ÷ fp32 decode ${(med(res.fp16.map((r) => r.tps)) / med(res.fp32.map((r) => r.tps))).toFixed(2)}×, prefill time ${(med(res.fp16.map((r) => r.prefill)) / med(res.fp32.map((r) => r.prefill))).toFixed(2)}×; same tokens: ${res.fp16[0].tokens === res.fp32[0].tokens}`);
for (const m of Object.values(models)) await m.dispose();
