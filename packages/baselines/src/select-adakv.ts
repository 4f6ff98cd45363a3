import {
  allButLast,
  getKernelBackend,
  InvalidArgumentError,
  type KernelBackendV1,
  type KernelProgram,
  pooledCandidateScores,
  referenceKernelBackend,
  requireInteger,
  runAsync,
  runSync,
  topKPerRow,
  type ValidatedWindowInput,
  withWindow,
} from '@draft/core';
import { decimalFraction, roundHalfEvenRational } from './internal/round.js';
import { prepareSnapKV, type SelectSnapKVOptions } from './select-snapkv.js';

/** AdaKV's floor α (ALGORITHMS.md): each head keeps at least about α·(C − W). */
export const ADAKV_DEFAULT_ALPHA = 0.2;

function validateAlpha(alpha: unknown): number {
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) {
    throw new InvalidArgumentError({ argument: 'alpha', value: alpha, expected: 'a number in [0, 1] (the floor share of C − W per head)' });
  }
  return alpha;
}

export interface AdaKVHeadBudgetsOptions {
  /** Pooled candidate scores of one layer, (numKvHeads, candidates); higher = keep. */
  scores: Float32Array;
  numKvHeads: number;
  /** B = C − W, the uniform per-head share. */
  perHeadBudget: number;
  /** α in [0, 1]. Default 0.2. */
  alpha?: number;
}

/**
 * Ada-SnapKV's per-head shares for one layer (ALGORITHMS.md "Baselines" and "Details"): take the global top
 * Hkv·B of all heads' scores (ties -> lower head, then lower position); with count_h of them in head h, head h
 * keeps round_half_even(count_h·(1 − α) + α·B), computed exactly (α as a decimal fraction), clipped to the
 * candidates. Shares are ragged across heads and may sum to Hkv·B ± a rounding unit per head.
 */
export function adaKVHeadBudgets(options: AdaKVHeadBudgetsOptions): number[] {
  const hkv = requireInteger('numKvHeads', options.numKvHeads, 1);
  const share = requireInteger('perHeadBudget', options.perHeadBudget, 0);
  const alpha = validateAlpha(options.alpha ?? ADAKV_DEFAULT_ALPHA);
  if (!(options.scores instanceof Float32Array) || options.scores.length % hkv !== 0) {
    throw new InvalidArgumentError({ argument: 'scores.length', value: options.scores?.length, expected: `a Float32Array of numKvHeads (${hkv}) × candidates` });
  }
  const m = options.scores.length / hkv;
  const counts = globalCounts(topKPerRow(options.scores, { rows: 1, length: hkv * m, k: hkv * share })[0], hkv, m);
  return blend(counts, share, alpha, m);
}

function globalCounts(flatTop: Int32Array, hkv: number, m: number): number[] {
  const counts = new Array<number>(hkv).fill(0);
  for (const index of flatTop) counts[Math.floor(index / m)]++;
  return counts;
}

function blend(counts: number[], share: number, alpha: number, m: number): number[] {
  const { numerator: a, denominator: d } = decimalFraction(alpha);
  return counts.map((count) => Math.min(m, roundHalfEvenRational(count * (d - a) + a * share, d)));
}

export interface SelectAdaKVOptions extends SelectSnapKVOptions {
  /** Floor α in [0, 1] (`floor_alpha`). Default 0.2. */
  alpha?: number;
}

/** @internal One layer of Ada-SnapKV. */
export function* selectAdaKVLayer(input: ValidatedWindowInput, layer: number, alpha: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
  const { numKvHeads: hkv, promptLength: n, budget, windowSize: w, candidates: m } = input;
  if (n <= budget) return Array.from({ length: hkv }, () => allButLast(n));
  const share = budget - w;
  const pooled = yield* pooledCandidateScores(input, input.queries[layer], input.keys[layer], backend);
  // Flattened head-major, so "lower flat index" = lower head, then lower position: the stable tie rule.
  const flat = (yield backend.topKPerRow(pooled, { rows: 1, length: hkv * m, k: hkv * share })) as Int32Array[];
  const budgets = blend(globalCounts(flat[0], hkv, m), share, alpha, m);
  const top = (yield backend.topKPerRow(pooled, { rows: hkv, length: m, k: budgets })) as Int32Array[];
  return top.map((selected) => withWindow(selected, n, w));
}

function* program(input: ValidatedWindowInput, alpha: number, backend: KernelBackendV1): KernelProgram<Int32Array[][]> {
  const out: Int32Array[][] = [];
  for (let l = 0; l < input.numLayers; l++) out.push(yield* selectAdaKVLayer(input, l, alpha, backend));
  return out;
}

/**
 * AdaKV (Ada-SnapKV, Feng et al. 2024) on explicit tensors: SnapKV scores (mean reduce, pooled); per layer,
 * per-head budgets from `adaKVHeadBudgets`; each head keeps its own top share + the window. Counts differ
 * across KV heads (needs a ragged per-head cache). No compression when n ≤ C. Higher score = keep.
 *
 * @returns per layer, per KV head: ascending kept prompt positions (ragged).
 */
export function selectAdaKV(options: SelectAdaKVOptions): Int32Array[][] {
  const input = prepareSnapKV(options);
  return runSync(program(input, validateAlpha(options.alpha ?? ADAKV_DEFAULT_ALPHA), referenceKernelBackend));
}

/** `selectAdaKV` on a kernel backend (default `getKernelBackend()`). */
export function selectAdaKVAsync(options: SelectAdaKVOptions & { backend?: KernelBackendV1; signal?: AbortSignal }): Promise<Int32Array[][]> {
  const input = prepareSnapKV(options);
  const alpha = validateAlpha(options.alpha ?? ADAKV_DEFAULT_ALPHA);
  return runAsync(program(input, alpha, options.backend ?? getKernelBackend()), options.signal);
}

/** @internal */
export { validateAlpha };
