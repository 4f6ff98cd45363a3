#!/usr/bin/env node
// Benchmark (not a test): our runtime vs transformers.js vs node-llama-cpp (llama.cpp) on the same perf-shaped
// weights (ONNX folder + a GGUF of it), full KV for every engine, the same thread count. Prints TTFT (prefill),
// decode tok/s and peak RSS per engine and context, the ratios ours ÷ peer side by side, and our SpecKV/SnapKV
// (C = 256) decode at the longest context beside llama.cpp's decode at the shortest (the issue's goal: ≥ 0.9×).
//
//   pnpm bench:runtime                      # = turbo run build && node packages/cli/bench/engines-bench.mjs
//   options: --threads N (2) --new-tokens N (32) --repeats N (3) --contexts 512,2048,8192 --budget 256
//            --methods speckv,snapkv --peers transformers.js,llama.cpp --model DIR (models/perf) --draft DIR
//            --engines whole,layerwise (our compressed rows with the whole-graph engine and/or loadModel({ layerwise }),
//            which selects each layer inside the prefill; the memory goal line is printed for each)
//            --weights f32|f16 (f16: every engine reads float16 weights: ours onnx/model_fp16.onnx, an Optimum-style
//            fp16 export written by `make:perf --fp16`; llama.cpp model-f16.gguf; transformers.js is left out)
//
// Each (engine, context) runs in its own child process (`runEngineInChild`, the machinery of
// `draft bench perf --peers llama.cpp`): the child loads the engine, warms up on 8 tokens, runs `repeats` greedy
// generations of 1 + N tokens and reports per-token timestamps and its peak RSS (VmHWM), so the RSS is that
// engine's alone. TTFT = call → first token; decode tok/s = (N − 1) / (last − first token time), the same rule for
// every engine (ours via onToken, transformers.js via a streamer, llama.cpp via its token iterator); medians.
// llama.cpp runs twice: its default f16 KV cache and f32 KV (like ours). Prompts are token ids (no tokenizer).
// Last, a copy probe measures memory bandwidth and each decode is set against its floor (bytes read per token).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const root = join(import.meta.dirname, '..', '..', '..');
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '32' },
    repeats: { type: 'string', default: '3' },
    contexts: { type: 'string', default: '512,2048,8192' },
    budget: { type: 'string', default: '256' },
    methods: { type: 'string', default: 'speckv,snapkv' },
    engines: { type: 'string', default: 'whole,layerwise' },
    // Who runs our rows: ort (the graph), native (@draft/cuda's engine for prefill and decode, loadModel({
    // decodeEngine: 'native', prefillEngine: 'native' }): no ORT session kept), native-decode (native decode
    // steps, ORT prefill), native-f16 (native, with loadModel({ kvStorage: 'float16' }): half-precision caches)
    decode: { type: 'string', default: 'ort,native' },
    peers: { type: 'string', default: 'transformers.js,llama.cpp' },
    model: { type: 'string', default: join(root, 'models', 'perf') },
    draft: { type: 'string' },
    // Diagnostic: extra llama.cpp thread counts (e.g. 2,1). Rows with a count other than --threads say so.
    'llama-threads': { type: 'string' },
    // llama.cpp flash attention: auto (its default; on for the CPU), on, off (off = exact f32 attention like ours)
    'llama-fa': { type: 'string', default: 'auto' },
    weights: { type: 'string', default: 'f32' },
  },
});
if (!['f32', 'f16'].includes(values.weights)) throw new Error(`--weights ${values.weights}: expected f32 or f16`);
const halfWeights = values.weights === 'f16';
/** Bytes per cached K/V element of our full-KV rows: an fp16 export keeps float16 caches. */
const kvElement = halfWeights ? 2 : 4;
const threads = Number(values.threads);
const newTokens = Number(values['new-tokens']);
const repeats = Number(values.repeats);
const budget = Number(values.budget);
const contexts = values.contexts.split(',').map(Number).sort((a, b) => a - b);
const methods = values.methods.split(',').filter(Boolean);
// transformers.js has no fp16 CPU path worth timing here (onnxruntime-web upcasts); f16 rows compare ours with llama.cpp.
const peers = values.peers.split(',').filter((p) => p && !(halfWeights && p === 'transformers.js'));
const targetDir = values.model;
const draftDir = values.draft ?? `${targetDir}-draft`;

// The engine machinery is @draft/bench's (a dependency of this package): its built dist.
const bench = await import('@draft/bench').catch((error) => {
  console.error(`Build first: pnpm build (or pnpm --filter @draft/bench build): ${error.message}`);
  process.exit(1);
});
const { defaultGgufPath, runEngineInChild, summarizeRuns } = bench;
const ggufPath = defaultGgufPath(targetDir, values.weights);

/**
 * pnpm as this run was started: the pnpm that runs `pnpm bench:runtime` (npm_execpath), else the repository's
 * pinned pnpm through npx, so `node packages/cli/bench/engines-bench.mjs` works without pnpm on PATH.
 */
function pnpm(args, options) {
  const execPath = process.env.npm_execpath;
  if (execPath && /pnpm/.test(execPath)) return execFileSync(process.execPath, [execPath, ...args], options);
  const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager ?? 'pnpm';
  return execFileSync('npx', ['-y', pinned, ...args], options);
}

const onnxFile = halfWeights ? 'model_fp16.onnx' : 'model.onnx';
if (!existsSync(join(targetDir, 'onnx', onnxFile)) || (methods.length && !existsSync(join(draftDir, 'onnx', onnxFile)))) {
  const flags = ['--no-gqa', ...(halfWeights ? ['--fp16'] : [])];
  console.log(`${targetDir}/onnx/${onnxFile} missing: generating it with 'pnpm --filter @draft/models make:perf ${flags.join(' ')}' …`);
  pnpm(['--filter', '@draft/models', 'make:perf', ...flags], { cwd: root, stdio: 'inherit' });
}
if (peers.includes('llama.cpp')) {
  // Rewrites only when the ONNX file is newer than the GGUF.
  pnpm(['--filter', '@draft/models', 'make:gguf', targetDir, ...(halfWeights ? ['--f16'] : [])], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

const decodeEngines = values.decode.split(',').filter(Boolean);
for (const d of decodeEngines) if (!['ort', 'native', 'native-f16', 'native-decode'].includes(d)) throw new Error(`--decode ${d}: expected ort, native, native-f16 or native-decode`);
/** Row-name tag of our engine: none for ORT (the rows as before), ' native' / ' native-decode' otherwise. */
const tag = (d) => (d === 'ort' ? '' : ` ${d}`);
/** loadModel options of each choice. */
const engineOptions = (d) => ({
  decodeEngine: d === 'ort' ? 'ort' : 'native',
  prefillEngine: d === 'native' || d === 'native-f16' ? 'native' : 'ort',
  ...(d === 'native-f16' ? { kvStorage: 'float16' } : {}),
  ...(halfWeights ? { dtype: 'fp16' } : {}),
});
const engines = decodeEngines.map((d) => ({ name: `ours${tag(d)}`, job: { engine: 'draft', method: 'full', targetDir, ...engineOptions(d) } }));
if (peers.includes('transformers.js')) engines.push({ name: 'transformers.js', job: { engine: 'transformers.js', targetDir } });
const flashAttention = { auto: 'auto', on: true, off: false }[values['llama-fa']];
const llamaThreads = (values['llama-threads'] ?? String(threads)).split(',').map(Number);
if (peers.includes('llama.cpp')) {
  for (const t of llamaThreads) {
    const suffix = t === threads ? '' : ` ${t}t`;
    engines.push({ name: `llama.cpp f16 KV${suffix}`, job: { engine: 'llama.cpp', ggufPath, kvType: 'f16', threads: t, flashAttention } });
    engines.push({ name: `llama.cpp f32 KV${suffix}`, job: { engine: 'llama.cpp', ggufPath, kvType: 'f32', threads: t, flashAttention } });
  }
}

const promptOf = (n) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % 500);
async function measure(name, job, n, decode = 'ort') {
  process.stderr.write(`  ${name} @ ${n} … `);
  try {
    const r = await runEngineInChild({ threads, ...job, inputIds: promptOf(n), newTokens: 1 + newTokens, repeats });
    const s = summarizeRuns(r.runs);
    process.stderr.write(`TTFT ${s.ttftMs.toFixed(0)} ms, ${s.decodeTokensPerSecond.toFixed(1)} tok/s, RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`);
    return { name, n, decode, ...s, peakRssBytes: r.peakRssBytes, tokens: r.runs[0].tokens, info: r.info, kvBytes: r.kvBytes, peakKvBytes: r.peakKvBytes };
  } catch (error) {
    process.stderr.write(`failed: ${error.message.split('\n')[0]}\n`);
    return { name, n, decode, failed: error.message.split('\n')[0] };
  }
}

console.log(`model ${targetDir} (onnx/${onnxFile}); gguf ${ggufPath}`);
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}; ${threads} threads per engine; prompt n ids + ${1 + newTokens} greedy tokens; median of ${repeats} after a warm-up; each engine × context in its own process`);
const rows = [];
for (const n of contexts) {
  for (const { name, job } of engines) rows.push(await measure(name, job, n));
}
const longest = contexts[contexts.length - 1];
const methodRows = [];
const ourEngines = values.engines.split(',').filter(Boolean);
for (const method of methods) {
  for (const d of decodeEngines) {
    for (const e of ourEngines) {
      // The native prefill is layer-wise already (prefillSelect without graph segments): one row.
      if ((d === 'native' || d === 'native-f16') && e === 'layerwise' && ourEngines.includes('whole')) continue;
      const layerwise = e === 'layerwise';
      const job = { engine: 'draft', method, budget, targetDir, draftDir, layerwise, ...engineOptions(d) };
      methodRows.push(await measure(`ours ${method}${layerwise ? ' lw' : ''}${tag(d)} C=${budget}`, job, longest, d));
    }
  }
}

const oursInfo = [...rows, ...methodRows].find((r) => r.name.startsWith('ours') && r.info?.kernels)?.info;
if (oursInfo) console.log(`ours: selection kernels ${oursInfo.kernels} (native = @draft/cuda's CPU kernels, as the CLI uses them)`);
const llamaInfo = rows.find((r) => r.name.startsWith('llama.cpp') && r.info)?.info;
if (llamaInfo) console.log(`llama.cpp: ${llamaInfo.binary}, flash attention ${llamaInfo.flashAttention} (auto = llama.cpp's default, on for the CPU; it rounds attention to f16, so greedy tokens may part from ours at near-ties), batch ${llamaInfo.batchSize}`);
const pad = (s, w) => String(s).padStart(w);
const fx = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
console.log(`\n${'context'.padStart(7)} | ${'engine'.padEnd(19)} | ${pad('TTFT ms', 9)} ${pad('prefill tok/s', 13)} ${pad('decode tok/s', 12)} ${pad('peak RSS MiB', 12)} | same tokens | ours ÷ engine: ${pad('TTFT', 6)} ${pad('decode', 7)} ${pad('RSS', 6)}`);
for (const n of contexts) {
  const ours = rows.find((r) => r.n === n && r.name === 'ours');
  for (const r of rows.filter((x) => x.n === n)) {
    if (r.failed) {
      console.log(`${pad(n, 7)} | ${r.name.padEnd(19)} | failed: ${r.failed}`);
      continue;
    }
    const same = ours?.tokens ? (JSON.stringify(ours.tokens) === JSON.stringify(r.tokens) ? 'yes' : 'no') : '–';
    const ratio = r.name === 'ours' || !ours?.ttftMs ? '' : `${pad(fx(ours.ttftMs / r.ttftMs), 6)} ${pad(fx(ours.decodeTokensPerSecond / r.decodeTokensPerSecond), 7)} ${pad(fx(ours.peakRssBytes / r.peakRssBytes), 6)}`;
    console.log(
      `${pad(n, 7)} | ${r.name.padEnd(19)} | ${pad(r.ttftMs.toFixed(0), 9)} ${pad((n / (r.ttftMs / 1000)).toFixed(0), 13)} ${pad(r.decodeTokensPerSecond.toFixed(1), 12)} ${pad((r.peakRssBytes / 2 ** 20).toFixed(0), 12)} | ${same.padEnd(11)} |                ${ratio}`,
    );
  }
}
// Each of our full-KV rows against every peer, same context (the table's ratios are ours (ORT) ÷ engine).
const peersOf = (n) => rows.filter((r) => r.n === n && !r.name.startsWith('ours') && !r.failed);
console.log(`\nGoal: full-KV decode ≥ 0.8× llama.cpp's and prefill time ≤ 1.0× (ratios ours ÷ peer)`);
for (const n of contexts) {
  for (const o of rows.filter((r) => r.n === n && r.name.startsWith('ours') && !r.failed)) {
    const vs = peersOf(n).map((p) => `${p.name}: decode ${fx(o.decodeTokensPerSecond / p.decodeTokensPerSecond)}, TTFT ${fx(o.ttftMs / p.ttftMs)}, RSS ${fx(o.peakRssBytes / p.peakRssBytes)}`);
    console.log(`  ${pad(n, 5)} ${o.name.padEnd(12)} ${vs.join(' · ') || 'no peer rows'}`);
  }
}
const shortest = contexts[0];
const peerShort = rows.filter((r) => r.n === shortest && r.name.startsWith('llama.cpp') && !r.failed);
if (methodRows.length) {
  console.log(`\nGoal: our compressed decode at ${longest} ≥ 0.9 × the peer's decode at ${shortest}`);
  for (const m of methodRows) {
    if (m.failed) {
      console.log(`  ${m.name.padEnd(20)} failed: ${m.failed}`);
      continue;
    }
    const vs = peerShort.map((p) => `${fx(m.decodeTokensPerSecond / p.decodeTokensPerSecond)} of ${p.name} @ ${shortest} (${p.decodeTokensPerSecond.toFixed(1)})`).join(', ');
    console.log(`  ${m.name.padEnd(23)} @ ${longest}: decode ${m.decodeTokensPerSecond.toFixed(1)} tok/s, TTFT ${m.ttftMs.toFixed(0)} ms, RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB — ${vs || 'no llama.cpp row'}`);
  }
  // Memory goal: peak RSS ≤ 1.5 × (weights + one layer's full KV + compressed KV) + 300 MB, and ≤ full KV's peak.
  const weights = statSync(join(targetDir, 'onnx', onnxFile)).size;
  const cfg = JSON.parse(readFileSync(join(targetDir, 'config.json'), 'utf8'));
  const headDim = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const oneLayer = 2 * cfg.num_key_value_heads * longest * headDim * kvElement;
  const fullOf = (decode) => rows.find((r) => r.n === longest && r.name === `ours${tag(decode)}`);
  const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const fullPeaks = decodeEngines.filter((d) => fullOf(d)?.peakRssBytes).map((d) => `${mib(fullOf(d).peakRssBytes)}${tag(d) ? ` (${d})` : ''}`);
  console.log(`\nGoal: peak RSS ≤ 1.5 × (weights ${mib(weights)} + one layer's full KV ${mib(oneLayer)} + compressed KV) + 300 MB, and ≤ full KV's ${fullPeaks.join(', ') || '–'} @ ${longest}`);
  for (const m of methodRows) {
    if (m.failed) continue;
    const goal = 1.5 * (weights + oneLayer + (m.kvBytes ?? 0)) + 300e6;
    const full = fullOf(m.decode);
    const underFull = full?.peakRssBytes ? (m.peakRssBytes <= full.peakRssBytes ? 'yes' : 'no') : '–';
    console.log(
      `  ${m.name.padEnd(23)} RSS ${mib(m.peakRssBytes)} vs goal ${mib(goal)}: ${m.peakRssBytes <= goal ? 'met' : 'not met'} (${fx(m.peakRssBytes / goal)}); ≤ full: ${underFull}; KV allocator peak ${m.peakKvBytes ? mib(m.peakKvBytes) : '–'} (all layers' full KV ${mib(oneLayer * cfg.num_hidden_layers)})`,
    );
  }
}

// Bandwidth goal: decode at the longest context within 2× of the memory floor, i.e. the bytes a step must read
// (weights + the cache it attends over) ÷ the machine's copy bandwidth, probed now with as many threads as the
// engines used (STREAM-style: a copy moves each byte twice, read and write).
const bandwidth = await copyBandwidth(threads);
const fullAt = (name) => rows.find((r) => r.n === longest && r.name === name && !r.failed);
if (decodeEngines.some((d) => fullAt(`ours${tag(d)}`))) {
  const weights = statSync(join(targetDir, 'onnx', onnxFile)).size;
  const cfg = JSON.parse(readFileSync(join(targetDir, 'config.json'), 'utf8'));
  const headDim = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  const fullKv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * longest * headDim * kvElement;
  console.log(`\nGoal: decode at ${longest} within 2× of the memory-bandwidth floor (copy probe: ${(bandwidth / 1e9).toFixed(1)} GB/s with ${threads} threads)`);
  const line = (name, row, kv) => {
    const floorMs = ((weights + kv) / bandwidth) * 1000;
    const stepMs = 1000 / row.decodeTokensPerSecond;
    console.log(`  ${name.padEnd(23)} reads ${((weights + kv) / 2 ** 20).toFixed(0)} MiB per token: floor ${floorMs.toFixed(1)} ms, measured ${stepMs.toFixed(1)} ms — ${(stepMs / floorMs).toFixed(2)}× the floor (${stepMs <= 2 * floorMs ? 'met' : 'not met'})`);
  };
  const ortFull = fullAt('ours');
  if (ortFull) line('ours full', ortFull, fullKv);
  const nativeFull = fullAt('ours native');
  if (nativeFull) line('ours native full', nativeFull, fullKv);
  // Half-precision caches: a step reads half the KV bytes.
  const halfFull = fullAt('ours native-f16');
  if (halfFull) line('ours native-f16 full', halfFull, fullKv / 2);
  for (const m of methodRows) if (!m.failed && m.kvBytes) line(m.name, m, m.kvBytes);
}

/** Aggregate copy bandwidth (bytes read + written per second) of `n` threads each copying 64 MiB eight times, best of three. */
async function copyBandwidth(n) {
  const source = `
    const { parentPort } = require('node:worker_threads');
    const a = new Float32Array(16 * 2 ** 20).fill(1);
    const b = new Float32Array(a.length);
    b.set(a);
    parentPort.on('message', () => {
      const t = performance.now();
      for (let i = 0; i < 8; i++) (i % 2 ? a : b).set(i % 2 ? b : a);
      parentPort.postMessage(performance.now() - t);
    });`;
  const workers = Array.from({ length: n }, () => new Worker(source, { eval: true }));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Best of three rounds: the floor is what the machine can do, not what a disturbed round did.
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const times = await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) => {
            w.once('message', resolve);
            w.postMessage('go');
          }),
      ),
    );
    best = Math.max(best, (n * 8 * 2 * 64 * 2 ** 20) / (Math.max(...times) / 1000));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return best;
}