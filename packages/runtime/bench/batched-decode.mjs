#!/usr/bin/env node
// Benchmark (not a test): aggregate decode tokens/s of B concurrent sequences on one model, batched (default)
// against the same concurrency with batching off (maxDecodeBatch 1) and against one sequence alone, side by
// side in one run. Caches: full KV of a `--context`-token prompt, and compressed caches of `--budget` entries
// (the first 4 and the last budget − 4: a decode-speed bench, so which entries a method keeps does not matter,
// only how many), and a mix (half full, half compressed) — the server's case of requests with other methods.
//
//   pnpm --filter @draft/models make:perf --no-gqa && pnpm --filter @draft/runtime build
//   node packages/runtime/bench/batched-decode.mjs [--model DIR (default models/perf)] [--context 2048]
//     [--budget 256] [--batches 1,2,4,8] [--new-tokens 32] [--threads 2] [--repeats 3] [--decode-engine ort|native]
// --decode-engine native: both models decode with @draft/cuda's native decoder (built addon and dist needed).
// Each cell is the best of --repeats runs (the machine is shared; the best is the least disturbed).
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(repo, 'models', 'perf') },
    context: { type: 'string', default: '2048' },
    budget: { type: 'string', default: '256' },
    batches: { type: 'string', default: '1,2,4,8' },
    'new-tokens': { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '3' },
    'decode-engine': { type: 'string', default: 'ort' },
  },
});
const decodeEngine = values['decode-engine'];
if (decodeEngine !== 'ort' && decodeEngine !== 'native') {
  console.error(`--decode-engine must be ort or native, got ${decodeEngine}`);
  process.exit(2);
}
if (decodeEngine === 'native') {
  // The native engine is @draft/cuda's (built in this repository); the runtime itself does not depend on it.
  const cuda = await import(join(repo, 'packages', 'cuda', 'dist', 'index.js'));
  const registration = cuda.registerNativeBackend({ required: true });
  if (!registration.decodeEngine) {
    console.error('@draft/cuda registered no decode engine (build it: pnpm --filter @draft/cuda build)');
    process.exit(2);
  }
}
if (!existsSync(join(values.model, 'onnx', 'model.onnx'))) {
  console.error(`No model at ${values.model}: run \`pnpm --filter @draft/models make:perf --no-gqa\` first.`);
  process.exit(2);
}
const { loadModel } = await import(join(here, '..', 'dist', 'index.js'));
const context = Number(values.context);
const budget = Number(values.budget);
const newTokens = Number(values['new-tokens']);
const sizes = values.batches.split(',').map(Number);
const maxB = Math.max(...sizes);
const threads = Number(values.threads);

const batched = await loadModel(values.model, { threads, maxDecodeBatch: Math.max(2, maxB), decodeEngine });
const unbatched = await loadModel(values.model, { threads, maxDecodeBatch: 1, decodeEngine });
const { numLayers, numKvHeads, vocabSize } = batched.info;
console.log(`model ${values.model.split(/[\\/]/).pop()}: ${numLayers} layers, ${batched.info.numHeads}/${numKvHeads} heads, d ${batched.info.headDim}; ` +
  `graph maxDecodeBatch ${batched.graph.maxDecodeBatch}; decode engine ${batched.graph.decodeEngine}; ${threads} threads; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
console.log(`context ${context} tokens, compressed caches C = ${budget}, ${newTokens} new tokens per sequence\n`);

function argmax(a) {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Prefilled caches of both models (same prompt per row index; each row its own prompt). */
async function prefill(model, rows) {
  const out = [];
  for (let r = 0; r < rows; r++) {
    const ids = Array.from({ length: context }, (_, i) => (i * 31 + r * 97 + 7) % vocabSize);
    const { cache, logits } = await model.forward({ inputIds: ids });
    const keep = Int32Array.from({ length: budget }, (_, i) => (i < 4 ? i : context - budget + i));
    const compressed = await cache.gather(Array.from({ length: numLayers }, () => Array.from({ length: numKvHeads }, () => keep)));
    out.push({ full: cache, compressed, first: argmax(logits) });
  }
  return out;
}

/** Best of --repeats runs of `decodeOnce`. */
async function decode(model, starts) {
  let best;
  for (let r = 0; r < Number(values.repeats); r++) {
    const run = await decodeOnce(model, starts);
    if (!best || run.tokPerS > best.tokPerS) best = run;
  }
  return best;
}

/** B greedy loops at once from the given caches; returns aggregate tokens/s and the tokens of each. */
async function decodeOnce(model, starts) {
  const t0 = performance.now();
  const tokens = await Promise.all(
    starts.map(async ({ cache, first }) => {
      let c = cache;
      let id = first;
      const seq = [id];
      for (let i = 1; i < newTokens; i++) {
        const step = await model.forward({ inputIds: [id], cache: c });
        if (c !== cache) c.dispose();
        c = step.cache;
        id = argmax(step.logits);
        seq.push(id);
      }
      if (c !== cache) c.dispose();
      return seq;
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { tokPerS: (starts.length * (newTokens - 1)) / seconds, tokens };
}

const cachesA = await prefill(batched, maxB);
const cachesB = await prefill(unbatched, maxB);
const kinds = {
  full: (c) => ({ cache: c.full, first: c.first }),
  compressed: (c) => ({ cache: c.compressed, first: c.first }),
  mixed: (c, i) => (i % 2 === 0 ? { cache: c.full, first: c.first } : { cache: c.compressed, first: c.first }),
};
console.log('| caches | B | batched tok/s | unbatched tok/s | batched / unbatched | batched / one sequence | mean rows per batch | tokens equal |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [kind, pick] of Object.entries(kinds)) {
  let single;
  for (const B of sizes) {
    const before = await batched.decodeBatchStats();
    const a = await decode(batched, cachesA.slice(0, B).map(pick));
    const after = await batched.decodeBatchStats();
    const b = await decode(unbatched, cachesB.slice(0, B).map(pick));
    if (B === 1) single = a.tokPerS;
    const rows = after.batches > before.batches ? ((after.rows - before.rows) / (after.batches - before.batches)).toFixed(1) : '1.0';
    const equal = a.tokens.every((t, i) => t.join() === b.tokens[i].join());
    console.log(`| ${kind} | ${B} | ${a.tokPerS.toFixed(1)} | ${b.tokPerS.toFixed(1)} | ${(a.tokPerS / b.tokPerS).toFixed(2)}× | ${single ? `${(a.tokPerS / single).toFixed(2)}×` : '—'} | ${rows} | ${equal ? 'yes' : 'NO'} |`);
  }
}
await batched.dispose();
await unbatched.dispose();
