#!/usr/bin/env node
// Ragged decode attention for one layer: TS reference vs native CPU (f32, f16) vs the native kernel over the
// same cache padded to the largest head; ratios measured side by side in one process.
// Usage: node bench/ragged-attention-bench.mjs [--json] [--budgets 256,1024,8192] [--shares 0.85,0.15]
//        [--query-count 1] [--threads 2] [--rounds 7]
// Build first: pnpm --filter @draft/cuda build && pnpm --filter @draft/cuda build:native
import { runRaggedAttentionBenchmark } from '../dist/index.js';

const argv = process.argv.slice(2);
const value = (flag) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const list = (flag) => value(flag)?.split(',').map(Number);
const num = (flag) => (value(flag) === undefined ? undefined : Number(value(flag)));
await runRaggedAttentionBenchmark({
  json: argv.includes('--json'),
  budgets: list('--budgets'),
  headShares: list('--shares'),
  queryCount: num('--query-count'),
  numThreads: num('--threads'),
  rounds: num('--rounds'),
});
