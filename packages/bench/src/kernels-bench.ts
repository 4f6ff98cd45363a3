import type { KernelBenchmarkResult } from '@draft/cuda';
import { checkIntegers } from './options.js';

/** `runKernelsBench` options: the settings of `draft bench kernels`'s flags, as values. */
export interface KernelsBenchOptions {
  /** Key lengths N, each ≥ 256 (default 4K, 16K, 64K). */
  keyLengths?: readonly number[];
  /** Receives the table, line by line (default: nothing is printed). */
  log?: (line: string) => void;
  /** Also time the CUDA kernels when a device exists (default true). */
  cuda?: boolean;
}

/** What `runKernelsBench` returns and `draft bench kernels --json` prints. */
export type KernelsBenchReport = KernelBenchmarkResult;

/** The benchmark keeps top-224 of a 97-query window per KV head: shorter key lengths are refused. */
export const KERNEL_BENCH_MIN_KEYS = 256;

/**
 * SpecKV layer selection (window scores, pooling, top-k, gather), TypeScript reference vs native CPU (and CUDA)
 * side by side, from `@draft/cuda` (loaded on demand: without its addon the native columns say why).
 */
export async function runKernelsBench(options: KernelsBenchOptions = {}): Promise<KernelsBenchReport> {
  const keyLengths = options.keyLengths === undefined ? undefined : checkIntegers('keyLengths', options.keyLengths, KERNEL_BENCH_MIN_KEYS);
  const cuda = await import('@draft/cuda');
  // The benchmark prints JSON itself when asked: ask for the table only, sent to `log` (or nowhere).
  return cuda.runKernelBenchmark({ json: false, keyLengths, cuda: options.cuda, log: options.log ?? (() => {}) });
}
