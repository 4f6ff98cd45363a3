import { gatherRows, pool1d, topKPerRow, windowAttentionScores } from '@draft/core';
import { nativeGatherRows, nativePool1d, nativeTopK, nativeWindowScores } from './native-ops.js';
import { nativeInfo } from './native-backend.js';

export interface KernelBenchmarkOptions {
  /** Key lengths N (default 4K, 16K, 64K). */
  keyLengths?: readonly number[];
  /** Print `{ cases: [...] }` as JSON instead of a table. */
  json?: boolean;
  /** Also time the CUDA kernels when a device exists (default true). */
  cuda?: boolean;
  numThreads?: number;
  /** Where lines go (default console.log). */
  log?: (line: string) => void;
}

export interface KernelBenchmarkCase {
  keyLength: number;
  tsMs: number;
  nativeMs: number | null;
  speedup: number | null;
  cudaMs?: number;
}

export interface KernelBenchmarkResult {
  shape: { numHeads: number; numKvHeads: number; headDim: number; window: number; kept: number; poolKernel: number };
  device: string;
  cases: KernelBenchmarkCase[];
  reason?: string;
}

/** Deterministic uniform(−1, 1) floats (mulberry32). */
function randomFloats(length: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/**
 * SpecKV selection for one layer, TS reference vs native CPU (and CUDA), side by side in one process:
 * window scoring (Hq 14, Hkv 2, d 64, w 97, reduce max) + max-pool 7 + top-k (C − W = 224 per KV head) +
 * gather of keys and values. Prints a table (or JSON with `json`) and returns the numbers.
 */
export async function runKernelBenchmark(options: KernelBenchmarkOptions = {}): Promise<KernelBenchmarkResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const keyLengths = options.keyLengths ?? [4096, 16384, 65536];
  const shape = { numHeads: 14, numKvHeads: 2, headDim: 64, window: 97, kept: 224, poolKernel: 7 };
  const info = nativeInfo();
  const useCuda = (options.cuda ?? true) && info.cuda.devices > 0;
  const now = () => performance.now();

  const once = async (n: number, impl: 'ts' | 'cpu' | 'cuda'): Promise<number> => {
    const { numHeads: hq, numKvHeads: hkv, headDim: d, window: w } = shape;
    const q = randomFloats(hq * w * d, 1 + n);
    const k = randomFloats(hkv * n * d, 2 + n);
    const v = randomFloats(hkv * n * d, 3 + n);
    const opts = { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, keyCount: n, op: 'max' as const };
    const pool = { kernel: shape.poolKernel, type: 'max' as const, padding: 'same' as const, rows: hkv };
    const sel = { rows: hkv, length: n, k: shape.kept };
    const gshape = { numKvHeads: hkv, length: n, headDim: d };
    const start = now();
    if (impl === 'ts') {
      const kept = topKPerRow(pool1d(windowAttentionScores(q, k, opts), pool), sel);
      gatherRows(k, gshape, kept);
      gatherRows(v, gshape, kept);
    } else {
      const call = { device: impl, numThreads: options.numThreads } as const;
      const scores = await nativeWindowScores(q, k, { ...opts, ...call });
      const kept = await nativeTopK(await nativePool1d(scores, { ...pool, ...call }), { ...sel, ...call });
      await Promise.all([nativeGatherRows(k, gshape, kept, call), nativeGatherRows(v, gshape, kept, call)]);
    }
    return now() - start;
  };

  // Warm up the JIT and the addon on a small case.
  await once(1024, 'ts');
  if (info.native) await once(1024, 'cpu');
  if (useCuda) await once(1024, 'cuda');

  const cases: KernelBenchmarkCase[] = [];
  if (!options.json) {
    log(`SpecKV layer selection: Hq ${shape.numHeads}, Hkv ${shape.numKvHeads}, d ${shape.headDim}, window ${shape.window}, pool ${shape.poolKernel}, top-${shape.kept}, gather K+V`);
    if (!info.native) log(`native: unavailable (${info.reason})`);
    log(`${'keys'.padStart(8)} ${'TS ms'.padStart(10)} ${'native ms'.padStart(10)} ${'speedup'.padStart(8)}${useCuda ? ` ${'cuda ms'.padStart(10)}` : ''}`);
  }
  for (const n of keyLengths) {
    const tsMs = await once(n, 'ts');
    const nativeMs = info.native ? await once(n, 'cpu') : null;
    const row: KernelBenchmarkCase = { keyLength: n, tsMs: round(tsMs), nativeMs: nativeMs === null ? null : round(nativeMs), speedup: nativeMs ? round(tsMs / nativeMs) : null };
    if (useCuda) row.cudaMs = round(await once(n, 'cuda'));
    cases.push(row);
    if (!options.json) {
      log(
        `${String(n).padStart(8)} ${row.tsMs.toFixed(1).padStart(10)} ${(row.nativeMs?.toFixed(1) ?? '-').padStart(10)} ${(row.speedup === null ? '-' : `${row.speedup.toFixed(1)}x`).padStart(8)}${useCuda ? ` ${row.cudaMs?.toFixed(1).padStart(10)}` : ''}`,
      );
    }
  }
  const result: KernelBenchmarkResult = { shape, device: useCuda ? 'cpu+cuda' : 'cpu', cases, ...(info.native ? {} : { reason: info.reason }) };
  if (options.json) log(JSON.stringify(result, null, 2));
  return result;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
