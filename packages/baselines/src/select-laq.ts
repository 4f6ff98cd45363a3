import {
  getKernelBackend,
  type KernelBackendV1,
  type PoolType,
  type ReduceOp,
  referenceKernelBackend,
  runAsync,
  runSync,
  selectUniformWindow,
  validateWindowInputWithDefaults,
} from '@draft/core';

/** LAQ++ defaults: SpecKV's scorer (C = 256, W = 32, max-pool k = 7, max reduce). */
export const LAQ_DEFAULTS = Object.freeze({ budget: 256, windowSize: 32, kernelSize: 7, poolType: 'max' as PoolType, reduce: 'max' as ReduceOp });

export interface SelectLAQOptions {
  /**
   * Per layer, the target's post-RoPE queries of the last W + 1 prompt positions followed by its own L
   * pseudo-lookahead positions: (numHeads, windowSize + 1 + lookaheadLength, headDim).
   */
  queries: readonly Float32Array[];
  /** Per layer, post-RoPE keys of prompt ++ pseudo-lookahead: (numKvHeads, promptLength + lookaheadLength, headDim). */
  keys: readonly Float32Array[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Prompt length n. */
  promptLength: number;
  /** Pseudo-lookahead tokens L the target generated. */
  lookaheadLength: number;
  /** C per (layer, KV head), window included. Default 256. */
  budget?: number;
  /** W, 0 < W < C, W < n. Default 32. */
  windowSize?: number;
  /** Odd pooling kernel; 1 = none. Default 7. */
  kernelSize?: number;
  /** Default 'max'. */
  poolType?: PoolType;
  /** Reduce over group heads × queries. Default 'max'. */
  reduce?: ReduceOp;
}

function prepare(options: SelectLAQOptions) {
  return validateWindowInputWithDefaults(options, LAQ_DEFAULTS);
}

/**
 * LAQ++ selection (ALGORITHMS.md "Baselines"): exactly SpecKV's selection, but the lookahead queries are the
 * target's own pseudo-answer (see `TargetPseudoLookahead`) instead of a draft's. Window [n − W − 1, n − 1)
 * + top C − W of [0, n − W − 1); the last prompt token is re-run; no compression when n ≤ C.
 *
 * @returns per layer, per KV head: ascending kept prompt positions.
 */
export function selectLAQ(options: SelectLAQOptions): Int32Array[][] {
  return runSync(selectUniformWindow(prepare(options), referenceKernelBackend));
}

/** `selectLAQ` on a kernel backend (default `getKernelBackend()`). */
export function selectLAQAsync(options: SelectLAQOptions & { backend?: KernelBackendV1; signal?: AbortSignal }): Promise<Int32Array[][]> {
  const input = prepare(options);
  return runAsync(selectUniformWindow(input, options.backend ?? getKernelBackend()), options.signal);
}
