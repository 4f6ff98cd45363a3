#!/usr/bin/env node
// Benchmark (not a test): aggregate decode tokens/s of the server with C concurrent requests against one request
// alone, side by side in one run, per engine (ORT, native) and method. Requests stream (SSE) so every token's
// arrival time is known: the aggregate rate counts the tokens all streams received while all C were decoding
// (after the last first token, before the first stream ended), the single rate is one stream's after its first
// token. The server prefills one prompt after another and then steps every sequence together
// (docs/decisions/2026-12-05-batched-decode.md, docs/decisions/2026-12-07-native-batched-decode.md).
//
//   pnpm build && node packages/server/bench/concurrent.mjs [--target models/perf] [--draft models/perf-draft]
//     [--engines ort,native] [--methods full,snapkv] [--budget 128] [--concurrency 8] [--prompt-words 300]
//     [--max-tokens 96] [--threads 2] [--repeats 2]
// A stream that stops early (end of sequence) shortens the window where all decode together; the window is printed.
// Each cell is the best of --repeats runs (the machine is shared; the best is the least disturbed).
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const { values } = parseArgs({
  options: {
    target: { type: 'string', default: join(repo, 'models', 'perf') },
    draft: { type: 'string', default: join(repo, 'models', 'perf-draft') },
    engines: { type: 'string', default: 'ort,native' },
    methods: { type: 'string', default: 'full,snapkv' },
    budget: { type: 'string', default: '128' },
    concurrency: { type: 'string', default: '8' },
    'prompt-words': { type: 'string', default: '300' },
    'max-tokens': { type: 'string', default: '96' },
    threads: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '2' },
  },
});
for (const dir of [values.target, values.draft]) {
  if (!existsSync(join(dir, 'onnx', 'model.onnx'))) {
    console.error(`No model at ${dir}: run \`pnpm --filter @draft/models make:perf --no-gqa\` first.`);
    process.exit(2);
  }
}
const engines = values.engines.split(',').filter(Boolean);
for (const engine of engines) {
  if (engine !== 'ort' && engine !== 'native') {
    console.error(`--engines takes ort and/or native, got ${engine}`);
    process.exit(2);
  }
}
const { startServer } = await import(join(repo, 'packages', 'server', 'dist', 'index.js'));
if (engines.includes('native')) {
  // The native engine is @draft/cuda's (built in this repository); the server itself does not depend on it.
  const cuda = await import(join(repo, 'packages', 'cuda', 'dist', 'index.js'));
  if (!cuda.registerNativeBackend().decodeEngine) {
    console.error('@draft/cuda registered no decode engine (build it: pnpm --filter @draft/cuda build)');
    process.exit(2);
  }
}
const C = Number(values.concurrency);
const maxTokens = Number(values['max-tokens']);
const budget = Number(values.budget);
const methods = values.methods.split(',').filter(Boolean);
const words = ['the', 'keeper', 'wrote', 'a', 'note', 'about', 'lighthouse', 'and', 'sea', 'ships', 'came', 'in', 'at', 'night'];
const promptOf = (i) => Array.from({ length: Number(values['prompt-words']) }, (_, j) => words[(j * 7 + i * 3) % words.length]).join(' ');

/** One streamed completion: the arrival time of every token, and the reply's usage. */
async function stream(url, prompt, method) {
  const draft = method === 'full' ? { method } : { method, budget };
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, draft }),
  });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  const times = [];
  let usage;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf('\n\n');
    while (newline >= 0) {
      const event = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 2);
      newline = buffer.indexOf('\n\n');
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const body = JSON.parse(event.slice(6));
      if (body.usage) usage = body.usage;
      if (body.choices?.[0]?.text) times.push(performance.now());
    }
  }
  return { times, usage };
}

/** C requests at once: tokens all streams received while all C decoded, over that window. */
async function together(url, method) {
  const runs = await Promise.all(Array.from({ length: C }, (_, i) => stream(url, promptOf(i), method)));
  const from = Math.max(...runs.map((r) => r.times[0]));
  const to = Math.min(...runs.map((r) => r.times[r.times.length - 1]));
  const tokens = runs.reduce((n, r) => n + r.times.filter((t) => t > from && t <= to).length, 0);
  return { tokPerS: to > from ? tokens / ((to - from) / 1000) : Number.NaN, runs, tokens, windowMs: to - from };
}

async function alone(url, method) {
  const { times, usage } = await stream(url, promptOf(0), method);
  return { tokPerS: (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000), usage };
}

const best = async (fn) => {
  let top;
  for (let r = 0; r < Number(values.repeats); r++) {
    const run = await fn();
    if (!top || run.tokPerS > top.tokPerS) top = run;
  }
  return top;
};

console.log(`target ${values.target.split(/[\\/]/).pop()}, draft ${values.draft.split(/[\\/]/).pop()}; ${values.threads} threads; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
console.log(`${values['prompt-words']}-word prompts, up to ${maxTokens} tokens each, budget ${budget} for KV methods; best of ${values.repeats}\n`);
console.log(`| engine | method | prompt tokens | 1 request: decode tok/s | ${C} requests: aggregate decode tok/s | ${C} ÷ 1 | window (tokens, ms) |`);
console.log('|---|---|---|---|---|---|---|');
for (const engine of engines) {
  const native = engine === 'native' ? { decodeEngine: 'native', prefillEngine: 'native' } : {};
  const server = await startServer({ port: 0, target: values.target, draft: values.draft, threads: Number(values.threads), handleSignals: false, maxConcurrent: C, log: () => {}, ...native });
  try {
    await stream(server.url, promptOf(0), 'full'); // warm-up
    for (const method of methods) {
      const one = await best(() => alone(server.url, method));
      const many = await best(() => together(server.url, method));
      const promptTokens = one.usage?.prompt_tokens ?? '?';
      console.log(`| ${engine} | ${method} | ${promptTokens} | ${one.tokPerS.toFixed(1)} | ${many.tokPerS.toFixed(1)} | ${(many.tokPerS / one.tokPerS).toFixed(2)}× | ${many.tokens}, ${many.windowMs.toFixed(0)} |`);
    }
  } finally {
    await server.close();
  }
}
