#!/usr/bin/env node
// Benchmark (not a test): @draft/runtime vs @huggingface/transformers on the same perf-shaped model folder,
// side by side in one process, same ORT thread settings. Prints prefill and decode tokens/s at 512 and 2048
// context and the ratio (ours / transformers.js; > 1 = faster).
//
//   pnpm --filter @draft/runtime build && node packages/runtime/bench/runtime-vs-transformers.mjs
//   options: --threads N (default 2) --decode N (default 32) --repeats N (default 5) --model DIR (default models/perf)
//
// Method, identical for both, one generate call of 1 + D greedy tokens per measurement: prefill = time from the
// call to the first generated token (TTFT: one forward over the context + argmax); decode = D / (time of the
// last token − time of the first token), from per-token callbacks (our onToken, a transformers.js streamer).
// Runs alternate between the two runtimes; each figure is the best of `repeats` (the machine may be shared).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    decode: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '5' },
    model: { type: 'string', default: join(repo, 'models', 'perf') },
    contexts: { type: 'string', default: '512,2048' },
  },
});
const threads = Number(values.threads);
const decodeTokens = Number(values.decode);
const repeats = Number(values.repeats);
const contexts = values.contexts.split(',').map(Number);
const dir = values.model;

if (!existsSync(join(dir, 'onnx', 'model.onnx'))) {
  console.log(`${dir} missing: generating it with 'pnpm --filter @draft/models make:perf' …`);
  execFileSync('pnpm', ['--filter', '@draft/models', 'make:perf'], { cwd: repo, stdio: 'inherit' });
}
const dist = join(here, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  console.error('Build @draft/runtime first: pnpm --filter @draft/runtime build');
  process.exit(1);
}
const { loadModel } = await import(dist);
const { AutoModelForCausalLM, env, Tensor } = await import('@huggingface/transformers');
env.allowRemoteModels = false;
env.localModelPath = `${dirname(dir)}/`;

const ours = await loadModel(dir, { threads });
const theirs = await AutoModelForCausalLM.from_pretrained(basename(dir), {
  dtype: 'fp32',
  local_files_only: true,
  device: 'cpu',
  session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
});

const promptOf = (n) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % 500);
async function runOurs(prompt, newTokens) {
  const stamps = [];
  const t = performance.now();
  const r = await ours.generate({ inputIds: prompt }, { maxNewTokens: newTokens, onToken: () => stamps.push(performance.now()) });
  if (r.tokens.length !== newTokens) throw new Error(`ours stopped after ${r.tokens.length} tokens`);
  return { prefillMs: stamps[0] - t, decodeMs: stamps[stamps.length - 1] - stamps[0], tokens: r.tokens };
}
async function runTheirs(prompt, newTokens) {
  const ids = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
  const mask = new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
  const stamps = [];
  // generate() calls put() once with the prompt, then once per generated token.
  const streamer = { put: () => stamps.push(performance.now()), end: () => {} };
  const t = performance.now();
  const out = await theirs.generate({ input_ids: ids, attention_mask: mask, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, streamer });
  const gen = stamps.slice(1);
  return { prefillMs: gen[0] - t, decodeMs: gen[gen.length - 1] - gen[0], tokens: Array.from(out.data, Number).slice(prompt.length) };
}

console.log(`model ${dir} (${ours.info.numLayers} layers, hidden ${ours.info.numHeads * ours.info.headDim}, ${ours.info.numHeads}/${ours.info.numKvHeads} heads, pattern ${ours.graph.pattern})`);
console.log(`node ${process.version}, onnxruntime-node 1.30.0, intraOpNumThreads ${threads} (machine: ${availableParallelism()} cores), decode ${decodeTokens} tokens, best of ${repeats}`);
await runOurs(promptOf(64), 2); // warm-up both
await runTheirs(promptOf(64), 2);
const rows = [];
for (const n of contexts) {
  const prompt = promptOf(n);
  const best = { op: Infinity, od: Infinity, tp: Infinity, td: Infinity };
  let same = true;
  for (let i = 0; i < repeats; i++) {
    const o = await runOurs(prompt, 1 + decodeTokens);
    const t = await runTheirs(prompt, 1 + decodeTokens);
    same &&= JSON.stringify(o.tokens) === JSON.stringify(t.tokens);
    best.op = Math.min(best.op, o.prefillMs);
    best.od = Math.min(best.od, o.decodeMs);
    best.tp = Math.min(best.tp, t.prefillMs);
    best.td = Math.min(best.td, t.decodeMs);
  }
  rows.push({
    context: n,
    prefillOurs: n / (best.op / 1000),
    prefillTheirs: n / (best.tp / 1000),
    decodeOurs: (decodeTokens) / (best.od / 1000),
    decodeTheirs: (decodeTokens) / (best.td / 1000),
    same,
  });
}
const f = (x) => x.toFixed(1).padStart(9);
console.log('\ncontext | prefill tok/s: ours  transformers.js  ratio | decode tok/s: ours  transformers.js  ratio | same tokens');
for (const r of rows) {
  console.log(
    `${String(r.context).padStart(7)} |            ${f(r.prefillOurs)} ${f(r.prefillTheirs)}  ${(r.prefillOurs / r.prefillTheirs).toFixed(2)}× |           ${f(r.decodeOurs)} ${f(r.decodeTheirs)}  ${(r.decodeOurs / r.decodeTheirs).toFixed(2)}× | ${r.same}`,
  );
}
await ours.dispose();
await theirs.dispose();
