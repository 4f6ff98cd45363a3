#!/usr/bin/env node
// Benchmark (not a test): on the perf-shaped model, decode tokens/s with full KV vs each KV method at C = 256,
// and SpecKV's draft + scoring overhead as a share of the target prefill — side by side in one run.
//   node packages/cli/bench/methods-bench.mjs [--lengths 2048,8192] [--budget 256] [--new-tokens 32] [--engines ort,native]
// --engines: ort (the graph through onnxruntime-node; ragged caches padded per head) and/or native (@draft/cuda's
// engine for prefill and decode: loadModel({ decodeEngine: 'native', prefillEngine: 'native' }), caches packed).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createPipeline, getKernelBackend } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { planMethod } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    lengths: { type: 'string', default: '2048,8192' },
    budget: { type: 'string', default: '256' },
    'new-tokens': { type: 'string', default: '32' },
    methods: { type: 'string', default: 'full,speckv,snapkv,pyramidkv,streamingllm,laq,h2o' },
    engines: { type: 'string', default: 'ort' },
  },
});
const root = join(import.meta.dirname, '..', '..', '..');
const models = join(root, 'models');
if (!existsSync(join(models, 'perf', 'onnx', 'model.onnx')) || !existsSync(join(models, 'perf-draft', 'onnx', 'model.onnx'))) {
  execFileSync('pnpm', ['--filter', '@draft/models', 'make:perf', '--no-gqa'], { cwd: root, stdio: 'inherit' });
}
try {
  (await import('@draft/cuda')).registerNativeBackend();
} catch {}

const budget = Number(values.budget);
const maxNewTokens = Number(values['new-tokens']);
for (const engine of values.engines.split(',')) {
const engineOptions = engine === 'native' ? { decodeEngine: 'native', prefillEngine: 'native' } : {};
const target = await loadModel(join(models, 'perf'), { raggedCache: engine !== 'native', ...engineOptions });
const draft = await loadModel(join(models, 'perf-draft'), engineOptions);
console.log(`engine: ${engine} (prefill ${target.graph.prefillEngine}, decode ${target.graph.decodeEngine})`);
console.log(`perf target: ${target.info.numLayers} layers, ${target.info.numHeads}/${target.info.numKvHeads} heads, d ${target.info.headDim}; draft: ${draft.info.numLayers} layers`);
console.log(`kernel backend: ${getKernelBackend().name}; C = ${budget}; ${maxNewTokens} new tokens; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})\n`);

const filler = 'The lighthouse keeper wrote the tides in a ledger, and the ships passed in the night. ';
for (const length of values.lengths.split(',').map(Number)) {
  let text = filler;
  while (target.tokenizer.encode(text).length < length) text += filler;
  const inputIds = target.tokenizer.encode(text).slice(0, length);
  const rows = [];
  for (const method of values.methods.split(',')) {
    if (method === 'h2o' && length > 4096) {
      rows.push({ method, skipped: 'all-query scoring is O(n²) per layer; skipped above 4K' });
      continue;
    }
    let plan;
    try {
      plan = planMethod(method, { budget: method === 'full' ? undefined : budget });
      const pipeline = createPipeline({ target, draft: plan.needsDraft ? draft : undefined, ...plan.stages });
      const r = await pipeline.generate({ inputIds }, { maxNewTokens });
      rows.push({ method, r });
    } catch (error) {
      rows.push({ method, skipped: `${error.code ?? 'ERROR'}: ${error.message}` });
    }
  }
  const full = rows.find((x) => x.method === 'full')?.r;
  console.log(`context ${length} tokens`);
  console.log(
    ['method', 'decode tok/s', 'vs full', 'prefill ms', 'draft ms', 'select ms', '(draft+select)/prefill', 'TTFT ms', 'KV bytes', 'vs full']
      .map((h, i) => (i === 0 ? h.padEnd(13) : h.padStart(12)))
      .join(' '),
  );
  for (const { method, r, skipped } of rows) {
    if (!r) {
      console.log(`${method.padEnd(13)} skipped: ${skipped}`);
      continue;
    }
    const t = r.timings;
    const cells = [
      t.decodeTokensPerSecond.toFixed(1),
      full ? `${(t.decodeTokensPerSecond / full.timings.decodeTokensPerSecond).toFixed(2)}x` : '-',
      t.prefillMs.toFixed(0),
      t.draftMs.toFixed(0),
      t.selectMs.toFixed(0),
      `${((100 * (t.draftMs + t.selectMs)) / t.prefillMs).toFixed(1)}%`,
      t.ttftMs.toFixed(0),
      String(r.kvBytes.afterPrefill),
      full ? `${((100 * r.kvBytes.afterPrefill) / full.kvBytes.afterPrefill).toFixed(1)}%` : '-',
    ];
    console.log(`${method.padEnd(13)} ${cells.map((c) => c.padStart(12)).join(' ')}`);
  }
  console.log('');
}
await Promise.all([target.dispose(), draft.dispose()]);
}
