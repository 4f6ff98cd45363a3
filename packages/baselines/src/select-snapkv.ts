import {
  getKernelBackend,
  type KernelBackendV1,
  type PoolType,
  referenceKernelBackend,
  runAsync,
  runSync,
  selectUniformWindow,
  validateWindowInput,
} from '@draft/core';

export type { PoolType } from '@draft/core';

/**
 * SnapKV defaults (ALGORITHMS.md "Baselines"): C = 256, W = 32, max-pool k = 7, mean reduce. The original
 * SnapKV paper used avg-pool k = 5: `{ poolType: 'avg', kernelSize: 5 }`.
 */
export const SNAPKV_DEFAULTS = Object.freeze({ budget: 256, windowSize: 32, kernelSize: 7, poolType: 'max' as PoolType });

/** Options shared by the window-scored baselines (SnapKV, PyramidKV, AdaKV). */
export interface SelectSnapKVOptions {
  /** Per layer, post-RoPE queries of the last W + 1 prompt positions n − W − 1 … n − 1: (numHeads, windowSize + 1, headDim). */
  queries: readonly Float32Array[];
  /** Per layer, post-RoPE prompt keys: (numKvHeads, promptLength, headDim). */
  keys: readonly Float32Array[];
  /** Query heads Hq (a multiple of numKvHeads). */
  numHeads: number;
  /** Key/value heads Hkv; one selection per KV head. */
  numKvHeads: number;
  headDim: number;
  /** Prompt length n. */
  promptLength: number;
  /** C: entries kept per (layer, KV head), window included (`max_capacity_prompt`). Default 256. */
  budget?: number;
  /** W: trailing prompt positions always kept, 0 < W < C, W < n (`window_size`). Default 32. */
  windowSize?: number;
  /** Pooling kernel, odd; 1 = no pooling (`kernel_size`). Default 7. */
  kernelSize?: number;
  /** 'max' (−inf padding, default) or 'avg' (zero padding, divides by k) (`pooling`). */
  poolType?: PoolType;
}

/** @internal */
export function prepareSnapKV(options: SelectSnapKVOptions) {
  return validateWindowInput({
    ...options,
    lookaheadLength: 0,
    budget: options.budget ?? SNAPKV_DEFAULTS.budget,
    windowSize: options.windowSize ?? SNAPKV_DEFAULTS.windowSize,
    kernelSize: options.kernelSize ?? SNAPKV_DEFAULTS.kernelSize,
    poolType: options.poolType ?? SNAPKV_DEFAULTS.poolType,
    reduce: 'mean',
  });
}

/**
 * SnapKV (Li et al. 2024) on explicit tensors, with this project's window convention (ALGORITHMS.md): the
 * last W + 1 prompt queries score the candidates [0, n − W − 1) with a softmax over all n keys (causal
 * tail); the score is the **mean** over (group heads × window queries); pooled; top C − W (ties -> lower
 * position) + the window [n − W − 1, n − 1), so the cache holds C entries before the last token is re-run.
 * No compression when n ≤ C. Higher score = keep.
 *
 * @returns per layer, per KV head: ascending kept prompt positions.
 */
export function selectSnapKV(options: SelectSnapKVOptions): Int32Array[][] {
  return runSync(selectUniformWindow(prepareSnapKV(options), referenceKernelBackend));
}

/** `selectSnapKV` on a kernel backend (default `getKernelBackend()`). */
export function selectSnapKVAsync(options: SelectSnapKVOptions & { backend?: KernelBackendV1; signal?: AbortSignal }): Promise<Int32Array[][]> {
  const input = prepareSnapKV(options);
  return runAsync(selectUniformWindow(input, options.backend ?? getKernelBackend()), options.signal);
}
