#!/usr/bin/env node
// TS reference vs native CPU (and CUDA when present) for SpecKV scoring + pool + top-k + gather.
// Usage: node bench/kernels-bench.mjs [--json] [--key-lengths 4096,16384,65536] [--threads N]
// Build first: pnpm --filter @draft/cuda build && pnpm --filter @draft/cuda build:native
import { runKernelBenchmark } from '../dist/index.js';

const argv = process.argv.slice(2);
const value = (flag) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const keyLengths = value('--key-lengths')?.split(',').map(Number);
const threads = value('--threads');
await runKernelBenchmark({ json: argv.includes('--json'), keyLengths, numThreads: threads ? Number(threads) : undefined });
