#!/usr/bin/env node
// Benchmark (not a test): peak resident memory of `loadModel` + a short generation on the same weights stored
// inline (onnx/model.onnx), as external data (model.onnx + model.onnx_data), and converted to q4, q8 and fp16
// by @draft/models, each in a fresh process; plus prefill and decode speed of each file.
//
//   pnpm --filter @draft/models make:perf && pnpm --filter @draft/models build && pnpm --filter @draft/runtime build
//   node packages/runtime/bench/load-rss.mjs [--model DIR (default models/perf)] [--threads N (default 1)] [--native]
//
// --native: load with { decodeEngine: 'native', prefillEngine: 'native' } (@draft/cuda's engine; the files it
// reads: fp32 and fp16), so the peak includes the ORT session that only runs the load check.
//
// Peak = the process's VmHWM (covers the ORT worker thread; getrusage's maxRSS would not do: it keeps the parent's
// RSS at fork across exec, and this parent holds every converted file) minus its RSS before loading; speeds
// are the best of 3 generations.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const { values } = parseArgs({
  options: { model: { type: 'string', default: join(repo, 'models', 'perf') }, threads: { type: 'string', default: '1' }, child: { type: 'string' }, dtype: { type: 'string' }, native: { type: 'boolean', default: false } },
});

if (values.child) {
  const { loadModel } = await import(join(here, '..', 'dist', 'index.js'));
  // The native engine is @draft/cuda's (built in this repository); the runtime itself does not depend on it.
  if (values.native) (await import(join(repo, 'packages', 'cuda', 'dist', 'index.js'))).registerNativeBackend();
  const engines = values.native ? { decodeEngine: 'native', prefillEngine: 'native' } : {};
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const model = await loadModel(values.child, { threads: Number(values.threads), dtype: values.dtype, ...engines });
  const loadMs = performance.now() - started;
  const prompt = Array.from({ length: 256 }, (_, i) => 1 + ((i * 37) % 500));
  // Best of 3 (the machine may be shared); the peak covers all three.
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await model.generate({ inputIds: prompt }, { maxNewTokens: 32 }));
  const peak = Number(/VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? process.resourceUsage().maxRSS) * 1024;
  await model.dispose();
  const result = {
    peakMiB: (peak - before) / 2 ** 20,
    loadMs,
    prefillMs: Math.min(...runs.map((r) => r.timings.prefillMs)),
    decodeTps: Math.max(...runs.map((r) => r.timings.decodeTokensPerSecond)),
    kvBytes: runs[0].kvBytes.final,
  };
  console.log(JSON.stringify(result));
  process.exit(0);
}

const source = values.model;
if (!existsSync(join(source, 'onnx', 'model.onnx'))) throw new Error(`${source}/onnx/model.onnx not found (pnpm --filter @draft/models make:perf)`);
const models = await import(join(repo, 'models', 'dist', 'index.js'));
const onnxProto = createRequire(join(repo, 'models', 'package.json'))('onnx-proto');
const work = mkdtempSync(join(tmpdir(), 'draft-rss-'));
try {
  const fp32 = readFileSync(join(source, 'onnx', 'model.onnx'));
  const inline = join(work, 'inline');
  const external = join(work, 'external');
  for (const dir of [inline, external]) {
    cpSync(source, dir, { recursive: true, filter: (src) => !src.endsWith('.onnx') });
    mkdirSync(join(dir, 'onnx'), { recursive: true });
  }
  writeFileSync(join(inline, 'onnx', 'model.onnx'), fp32);
  writeFileSync(join(inline, 'onnx', 'model_q4.onnx'), models.convertToQ4(fp32).bytes);
  writeFileSync(join(inline, 'onnx', 'model_quantized.onnx'), models.convertToInt8(fp32, { weightType: 'uint8' }).bytes);
  writeFileSync(join(inline, 'onnx', 'model_fp16.onnx'), models.convertToFp16(fp32).bytes);
  models.writeExternalData(onnxProto.onnx.ModelProto.decode(fp32), { dir: join(external, 'onnx'), fileName: 'model.onnx' });
  const mib = (path) => statSync(path).size / 2 ** 20;
  console.log(`threads ${values.threads}; prompt 256 tokens, 32 new tokens${values.native ? '; native engines (decode and prefill)' : ''}`);
  console.log('| file | file MiB | peak RSS MiB | load ms | prefill ms | decode tok/s | KV bytes |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [label, dir, dtype, file] of [
    ['fp32 inline', inline, 'fp32', 'model.onnx'],
    ['fp32 external data', external, 'fp32', 'model.onnx_data'],
    ['q4', inline, 'q4', 'model_q4.onnx'],
    ['q8', inline, 'q8', 'model_quantized.onnx'],
    ['fp16', inline, 'fp16', 'model_fp16.onnx'],
  ]) {
    if (values.native && (dtype === 'q4' || dtype === 'q8')) continue; // the native engine reads float weights only
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, '--dtype', dtype, '--threads', values.threads, ...(values.native ? ['--native'] : [])], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    console.log(`| ${label} | ${mib(join(dir, 'onnx', file)).toFixed(1)} | ${r.peakMiB.toFixed(0)} | ${r.loadMs.toFixed(0)} | ${r.prefillMs.toFixed(0)} | ${r.decodeTps.toFixed(1)} | ${r.kvBytes} |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
