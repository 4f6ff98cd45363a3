#!/usr/bin/env node
// Benchmark (not a test): peak resident memory of `loadModel` + one forward on the same weights stored inline
// (onnx/model.onnx) and as external data (model.onnx + model.onnx_data), each in a fresh process.
//
//   pnpm --filter @draft/models make:perf && pnpm --filter @draft/models build && pnpm --filter @draft/runtime build
//   node packages/runtime/bench/load-rss.mjs [--model DIR (default models/perf)]
//
// Peak = the process's maxRSS (getrusage, covers the ORT worker thread) minus its RSS before loading.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..');
const { values } = parseArgs({ options: { model: { type: 'string', default: join(repo, 'models', 'perf') }, child: { type: 'string' } } });

if (values.child) {
  const { loadModel } = await import(join(here, '..', 'dist', 'index.js'));
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const model = await loadModel(values.child, { threads: 1 });
  const loadMs = performance.now() - started;
  await model.forward({ inputIds: [1, 2, 3, 4] }).then((r) => r.cache.dispose());
  const peak = process.resourceUsage().maxRSS * 1024;
  const after = process.memoryUsage().rss;
  await model.dispose();
  console.log(JSON.stringify({ peakMiB: (peak - before) / 2 ** 20, afterLoadMiB: (after - before) / 2 ** 20, loadMs }));
  process.exit(0);
}

const inline = values.model;
if (!existsSync(join(inline, 'onnx', 'model.onnx'))) throw new Error(`${inline}/onnx/model.onnx not found (pnpm --filter @draft/models make:perf)`);
const { writeExternalData } = await import(join(repo, 'models', 'dist', 'index.js'));
const onnxProto = createRequire(join(repo, 'models', 'package.json'))('onnx-proto');
const external = mkdtempSync(join(tmpdir(), 'draft-rss-'));
try {
  cpSync(inline, external, { recursive: true, filter: (src) => !src.endsWith('.onnx') });
  mkdirSync(join(external, 'onnx'), { recursive: true });
  writeExternalData(onnxProto.onnx.ModelProto.decode(readFileSync(join(inline, 'onnx', 'model.onnx'))), { dir: join(external, 'onnx'), fileName: 'model.onnx' });
  const weightsMiB = statSync(join(inline, 'onnx', 'model.onnx')).size / 2 ** 20;
  console.log(`weights: ${weightsMiB.toFixed(1)} MiB; graph file with external data: ${(statSync(join(external, 'onnx', 'model.onnx')).size / 1024).toFixed(0)} KiB`);
  for (const [label, dir] of [
    ['inline', inline],
    ['external data', external],
  ]) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    console.log(`${label.padEnd(14)} peak +${r.peakMiB.toFixed(0)} MiB (${(r.peakMiB / weightsMiB).toFixed(2)}× weights), after load +${r.afterLoadMiB.toFixed(0)} MiB, load ${r.loadMs.toFixed(0)} ms`);
  }
} finally {
  rmSync(external, { recursive: true, force: true });
}
