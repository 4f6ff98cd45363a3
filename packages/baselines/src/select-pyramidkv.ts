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
  validateBudgetWindow,
  type ValidatedWindowInput,
  withWindow,
} from '@draft/core';
import { roundHalfEvenRational } from './internal/round.js';
import { prepareSnapKV, type SelectSnapKVOptions } from './select-snapkv.js';

/** PyramidKV's β (ALGORITHMS.md): the smallest layer share is (C − W)/β. */
export const PYRAMIDKV_DEFAULT_BETA = 20;

export interface PyramidLayerBudgetsOptions {
  numLayers: number;
  /** C per (layer, KV head), window included; the mean layer share stays C − W. */
  budget: number;
  windowSize: number;
  /** β, an integer ≥ 1 (1 = uniform). Default 20. */
  beta?: number;
}

/**
 * PyramidKV's per-layer shares of the non-window budget B = C − W (ALGORITHMS.md "Baselines" and "Details"):
 * min = B/β, max = 2B − min, layer l gets max − l·(max − min)/(layers − 1), computed exactly as a rational and
 * rounded half to even, so the shares sum to layers·B. One layer gets B. Not clipped to the candidates
 * (`selectPyramidKV` clips per prompt). Lower layers keep more.
 *
 * E.g. B = 20, β = 20, 5 layers: 39, 29.5, 20, 10.5, 1 -> [39, 30, 20, 10, 1].
 */
export function pyramidLayerBudgets(options: PyramidLayerBudgetsOptions): number[] {
  const layers = requireInteger('numLayers', options.numLayers, 1);
  const { budget, windowSize } = validateBudgetWindow(options.budget, options.windowSize);
  const beta = requireInteger('beta', options.beta ?? PYRAMIDKV_DEFAULT_BETA, 1);
  const share = budget - windowSize;
  if (layers === 1) return [share];
  // max − l·(max − min)/(layers − 1) = B·[(2β − 1)(layers − 1) − 2l(β − 1)] / [β(layers − 1)]
  const denominator = beta * (layers - 1);
  return Array.from({ length: layers }, (_, l) =>
    roundHalfEvenRational(share * ((2 * beta - 1) * (layers - 1) - 2 * l * (beta - 1)), denominator),
  );
}

export interface SelectPyramidKVOptions extends SelectSnapKVOptions {
  /** β ≥ 1 (integer). Default 20. */
  beta?: number;
  /** Layers of the model (the schedule's length). Default: `queries.length`. */
  numLayers?: number;
  /** Model layer of `queries[0]` / `keys[0]`, for scoring a slice of layers (e.g. one at a time). Default 0. */
  firstLayer?: number;
}

/** @internal One layer with an explicit non-window share (clipped to the n − W − 1 candidates; 0 keeps only the window). */
export function* selectPyramidLayer(
  input: ValidatedWindowInput,
  layer: number,
  share: number,
  backend: KernelBackendV1,
): KernelProgram<Int32Array[]> {
  const { numKvHeads, promptLength: n, budget, windowSize: w, candidates: m } = input;
  if (n <= budget) return Array.from({ length: numKvHeads }, () => allButLast(n));
  const k = Math.min(share, m);
  if (k === 0) return Array.from({ length: numKvHeads }, () => withWindow(new Int32Array(0), n, w));
  const pooled = yield* pooledCandidateScores(input, input.queries[layer], input.keys[layer], backend);
  const top = (yield backend.topKPerRow(pooled, { rows: numKvHeads, length: m, k })) as Int32Array[];
  return top.map((selected) => withWindow(selected, n, w));
}

function prepare(options: SelectPyramidKVOptions) {
  const input = prepareSnapKV(options);
  const numLayers = requireInteger('numLayers', options.numLayers ?? input.numLayers, 1);
  const firstLayer = requireInteger('firstLayer', options.firstLayer ?? 0, 0);
  if (firstLayer + input.numLayers > numLayers) {
    throw new InvalidArgumentError({
      argument: 'firstLayer',
      value: firstLayer,
      expected: `firstLayer + queries.length (${input.numLayers}) ≤ numLayers (${numLayers})`,
    });
  }
  const shares = pyramidLayerBudgets({ numLayers, budget: input.budget, windowSize: input.windowSize, beta: options.beta });
  return { input, shares: shares.slice(firstLayer, firstLayer + input.numLayers) };
}

function* program(input: ValidatedWindowInput, shares: number[], backend: KernelBackendV1): KernelProgram<Int32Array[][]> {
  const out: Int32Array[][] = [];
  for (let l = 0; l < input.numLayers; l++) out.push(yield* selectPyramidLayer(input, l, shares[l], backend));
  return out;
}

/**
 * PyramidKV (Cai et al. 2024) on explicit tensors: SnapKV scoring (mean reduce, pooled) with per-layer
 * budgets from `pyramidLayerBudgets`: layer l keeps min(share_l, n − W − 1) candidates + the window, the same
 * count for every KV head of the layer (layers differ: needs a backend with ragged layers). No compression
 * when n ≤ C. Higher score = keep.
 *
 * @returns per layer, per KV head: ascending kept prompt positions.
 */
export function selectPyramidKV(options: SelectPyramidKVOptions): Int32Array[][] {
  const { input, shares } = prepare(options);
  return runSync(program(input, shares, referenceKernelBackend));
}

/** `selectPyramidKV` on a kernel backend (default `getKernelBackend()`). */
export function selectPyramidKVAsync(
  options: SelectPyramidKVOptions & { backend?: KernelBackendV1; signal?: AbortSignal },
): Promise<Int32Array[][]> {
  const { input, shares } = prepare(options);
  return runAsync(program(input, shares, options.backend ?? getKernelBackend()), options.signal);
}
