import type { KernelProgram } from '../kernels/kernel-program.js';
import type { KernelBackendV1 } from '../kernels/kernel-backend.js';
import type { ReduceOp } from '../primitives/window-scores.js';
import { requireInteger, requireOneOf } from '../validation/arguments.js';
import { validateBudgetWindow, validateHeads, validateKernel, validateLayerCount, validateLayerTensors, validateWindowInPrompt } from './validate-window.js';

/** Pooling of candidate scores along positions: max pooling or average pooling. */
export type PoolType = 'max' | 'avg';

/**
 * Lookahead-window scoring shared by SpecKV, SnapKV, PyramidKV, AdaKV and LAQ++ (ALGORITHMS.md, SpecKV step 4).
 *
 * Window queries are the last W + 1 prompt positions followed by the L lookahead positions (w = W + 1 + L);
 * they attend causally to all n + L keys. Candidate keys are the prompt positions [0, n − W − 1); the W
 * positions [n − W − 1, n − 1) are the kept window and position n − 1 is re-run by the pipeline.
 */
export interface WindowScoringInput {
  /** Per layer, post-RoPE window queries: (numHeads, windowSize + 1 + lookaheadLength, headDim). */
  queries: readonly Float32Array[];
  /** Per layer, post-RoPE keys of prompt ++ lookahead: (numKvHeads, promptLength + lookaheadLength, headDim). */
  keys: readonly Float32Array[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  lookaheadLength: number;
  budget: number;
  windowSize: number;
  kernelSize: number;
  poolType: PoolType;
  reduce: ReduceOp;
}

/** A `WindowScoringInput` that passed `validateWindowInput`, with its derived counts. */
export interface ValidatedWindowInput extends WindowScoringInput {
  numLayers: number;
  /** Candidates m = n − W − 1. */
  candidates: number;
}

/**
 * Checks a `WindowScoringInput`: head shape, 0 < W < C, odd kernel, pool type and reduce op; then, when n > C
 * (W < n follows from W < C), every layer's tensor lengths (queries (Hq, W + 1 + L, d), keys (Hkv, n + L, d)).
 * With n ≤ C nothing is compressed and the tensors are not read (n ≤ W is then valid: the selection keeps all
 * of [0, n − 1)), so only their layer count is checked. Throws `InvalidArgumentError`.
 */
export function validateWindowInput(input: WindowScoringInput): ValidatedWindowInput {
  validateHeads(input);
  const n = requireInteger('promptLength', input.promptLength, 1);
  const lookahead = requireInteger('lookaheadLength', input.lookaheadLength, 0);
  const { budget: c, windowSize: w } = validateBudgetWindow(input.budget, input.windowSize);
  validateKernel(input.kernelSize);
  requireOneOf('poolType', input.poolType, ['max', 'avg'] as const);
  requireOneOf('reduce', input.reduce, ['max', 'mean', 'sum'] as const);
  if (n <= c) return { ...input, numLayers: validateLayerCount(input.queries, input.keys), candidates: Math.max(0, n - w - 1) };
  validateWindowInPrompt(w, n);
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = input;
  const queryCount = w + 1 + lookahead;
  const numLayers = validateLayerTensors(input.queries, input.keys, {
    queries: hq * queryCount * d,
    keys: hkv * (n + lookahead) * d,
    queriesShape: `(numHeads ${hq}, windowSize + 1 + lookaheadLength = ${queryCount}, headDim ${d})`,
    keysShape: `(numKvHeads ${hkv}, promptLength + lookaheadLength = ${n + lookahead}, headDim ${d})`,
  });
  return { ...input, numLayers, candidates: n - w - 1 };
}

/**
 * Pooled candidate scores of one layer: (numKvHeads, n − W − 1), higher = keep.
 * Softmax runs over all n + L keys (causal tail); only candidate columns are kept, then reduced over the
 * G query heads of each KV head and the w queries, then pooled along positions ('same' padding k//2:
 * −inf for max, zeros with a divide-by-k for avg).
 */
export function* pooledCandidateScores(
  input: ValidatedWindowInput,
  queries: Float32Array,
  keys: Float32Array,
  backend: KernelBackendV1,
): KernelProgram<Float32Array> {
  const { numHeads, numKvHeads, headDim, promptLength: n, lookaheadLength: lookahead, windowSize: w, candidates: m } = input;
  const keyCount = n + lookahead;
  const full = (yield backend.windowAttentionScores(queries, keys, {
    numHeads,
    numKvHeads,
    headDim,
    queryCount: w + 1 + lookahead,
    keyCount,
    causalTail: true,
    op: input.reduce,
  })) as Float32Array;
  const candidates = new Float32Array(numKvHeads * m);
  for (let h = 0; h < numKvHeads; h++) candidates.set(full.subarray(h * keyCount, h * keyCount + m), h * m);
  if (m === 0 || input.kernelSize === 1) return candidates;
  return (yield backend.pool1d(candidates, { kernel: input.kernelSize, type: input.poolType, padding: 'same', rows: numKvHeads })) as Float32Array;
}

/** All prompt positions but the last: [0, n − 1) (no compression). */
export function allButLast(promptLength: number): Int32Array {
  const out = new Int32Array(Math.max(0, promptLength - 1));
  for (let i = 0; i < out.length; i++) out[i] = i;
  return out;
}

/** Ascending `selected` (all < n − W − 1) followed by the window [n − W − 1, n − 1). */
export function withWindow(selected: Int32Array, promptLength: number, windowSize: number): Int32Array {
  const out = new Int32Array(selected.length + windowSize);
  out.set(selected);
  const start = promptLength - windowSize - 1;
  for (let i = 0; i < windowSize; i++) out[selected.length + i] = start + i;
  return out;
}

/** One layer, per KV head: the top C − W pooled candidates + the window (uniform budget). */
export function* selectUniformWindowLayer(
  input: ValidatedWindowInput,
  layer: number,
  backend: KernelBackendV1,
): KernelProgram<Int32Array[]> {
  const { numKvHeads, promptLength: n, budget, windowSize: w, candidates: m } = input;
  if (n <= budget) return Array.from({ length: numKvHeads }, () => allButLast(n));
  const pooled = yield* pooledCandidateScores(input, input.queries[layer], input.keys[layer], backend);
  const top = (yield backend.topKPerRow(pooled, { rows: numKvHeads, length: m, k: budget - w })) as Int32Array[];
  return top.map((selected) => withWindow(selected, n, w));
}

/** Every layer of `input` with `selectUniformWindowLayer`. */
export function* selectUniformWindow(input: ValidatedWindowInput, backend: KernelBackendV1): KernelProgram<Int32Array[][]> {
  const result: Int32Array[][] = [];
  for (let l = 0; l < input.numLayers; l++) result.push(yield* selectUniformWindowLayer(input, l, backend));
  return result;
}

/** The scoring settings of a lookahead-window method (the non-tensor part of `WindowScoringInput`). */
export type WindowSettings = Pick<WindowScoringInput, 'budget' | 'windowSize' | 'kernelSize' | 'poolType' | 'reduce'>;

/**
 * Fills a method's defaults into partial settings and validates the result: the shared `prepare` step of the
 * pure SpecKV / LAQ++ selection functions.
 */
export function validateWindowInputWithDefaults(
  input: Omit<WindowScoringInput, keyof WindowSettings> & Partial<WindowSettings>,
  defaults: Readonly<WindowSettings>,
): ValidatedWindowInput {
  return validateWindowInput({
    ...input,
    budget: input.budget ?? defaults.budget,
    windowSize: input.windowSize ?? defaults.windowSize,
    kernelSize: input.kernelSize ?? defaults.kernelSize,
    poolType: input.poolType ?? defaults.poolType,
    reduce: input.reduce ?? defaults.reduce,
  });
}
