import {
  allButLast,
  getKernelBackend,
  type KernelBackendV1,
  type KernelProgram,
  referenceKernelBackend,
  requireInteger,
  runAsync,
  runSync,
  validateBudgetWindow,
  validateHeads,
  validateKernel,
  validateLayerTensors,
  validateWindowInPrompt,
  withWindow,
} from '@draft/core';

export interface SelectH2OOptions {
  /** Per layer, post-RoPE queries of **every** prompt position: (numHeads, promptLength, headDim). */
  queries: readonly Float32Array[];
  /** Per layer, post-RoPE prompt keys: (numKvHeads, promptLength, headDim). */
  keys: readonly Float32Array[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Prompt length n. */
  promptLength: number;
  /** C per (layer, KV head), window included (`max_capacity_prompt`). Default 256. */
  budget?: number;
  /** W: recent prompt positions always kept, 0 < W < C, W < n. Default 32. */
  windowSize?: number;
  /** Optional max-pooling of the accumulated scores, odd; H2O itself does not pool. Default 1 (none). */
  kernelSize?: number;
  /** Queries scored per kernel call (bounds memory at O(block × keys)). Default 512. */
  queryBlockSize?: number;
}

interface H2OInput {
  queries: readonly Float32Array[];
  keys: readonly Float32Array[];
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  budget: number;
  windowSize: number;
  kernelSize: number;
  queryBlockSize: number;
}

/** @internal */
export function prepareH2O(options: SelectH2OOptions): H2OInput {
  validateHeads(options);
  const n = requireInteger('promptLength', options.promptLength, 1);
  const { budget, windowSize } = validateBudgetWindow(options.budget ?? 256, options.windowSize ?? 32);
  // n ≤ C is a passthrough (all of [0, n − 1) kept), so n ≤ W is valid then.
  if (n > budget) validateWindowInPrompt(windowSize, n);
  const kernelSize = validateKernel(options.kernelSize ?? 1);
  const queryBlockSize = requireInteger('queryBlockSize', options.queryBlockSize ?? 512, 1);
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = options;
  const numLayers = validateLayerTensors(options.queries, options.keys, {
    queries: hq * n * d,
    keys: hkv * n * d,
    queriesShape: `(numHeads ${hq}, promptLength ${n}, headDim ${d})`,
    keysShape: `(numKvHeads ${hkv}, promptLength ${n}, headDim ${d})`,
  });
  return { ...options, numLayers, promptLength: n, budget, windowSize, kernelSize, queryBlockSize };
}

/**
 * @internal H2O scores of one layer over the candidates: (numKvHeads, n − W − 1). Each query head's causal
 * attention is computed in query blocks [a, b) against keys [0, b) — contiguous sub-arrays, no copies — and
 * summed into its KV head's row (sum is additive over heads and blocks).
 */
export function* h2oLayerScores(input: H2OInput, layer: number, backend: KernelBackendV1): KernelProgram<Float32Array> {
  const { numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, windowSize: w } = input;
  const m = n - w - 1;
  const group = hq / hkv;
  const queries = input.queries[layer];
  const keys = input.keys[layer];
  const acc = new Float64Array(hkv * m);
  for (let kvh = 0; kvh < hkv; kvh++) {
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      for (let start = 0; start < n; start += input.queryBlockSize) {
        const end = Math.min(n, start + input.queryBlockSize);
        const scores = (yield backend.windowAttentionScores(
          queries.subarray((h * n + start) * d, (h * n + end) * d),
          keys.subarray(kvh * n * d, (kvh * n + end) * d),
          { numHeads: 1, numKvHeads: 1, headDim: d, queryCount: end - start, keyCount: end, causalTail: true, op: 'sum' },
        )) as Float32Array;
        for (let j = 0; j < Math.min(m, end); j++) acc[kvh * m + j] += scores[j];
      }
    }
  }
  return Float32Array.from(acc);
}

/** @internal */
export function* selectH2OLayer(input: H2OInput, layer: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
  const { numKvHeads: hkv, promptLength: n, budget, windowSize: w } = input;
  if (n <= budget) return Array.from({ length: hkv }, () => allButLast(n));
  const m = n - w - 1;
  let scores = yield* h2oLayerScores(input, layer, backend);
  if (input.kernelSize > 1) {
    scores = (yield backend.pool1d(scores, { kernel: input.kernelSize, type: 'max', padding: 'same', rows: hkv })) as Float32Array;
  }
  const top = (yield backend.topKPerRow(scores, { rows: hkv, length: m, k: budget - w })) as Int32Array[];
  return top.map((selected) => withWindow(selected, n, w));
}

function* program(input: H2OInput, backend: KernelBackendV1): KernelProgram<Int32Array[][]> {
  const out: Int32Array[][] = [];
  for (let l = 0; l < input.numLayers; l++) out.push(yield* selectH2OLayer(input, l, backend));
  return out;
}

/**
 * H2O (Zhang et al. 2023) at prefill, on explicit tensors (ALGORITHMS.md "Baselines"): every prompt query
 * attends causally; a key's score is the **sum** of its attention over (group heads × all prompt queries);
 * top C − W of the candidates [0, n − W − 1) (ties -> lower position) + the window [n − W − 1, n − 1).
 * No compression when n ≤ C. Higher score = keep.
 *
 * @returns per layer, per KV head: ascending kept prompt positions.
 */
export function selectH2O(options: SelectH2OOptions): Int32Array[][] {
  return runSync(program(prepareH2O(options), referenceKernelBackend));
}

/** `selectH2O` on a kernel backend (default `getKernelBackend()`). */
export function selectH2OAsync(options: SelectH2OOptions & { backend?: KernelBackendV1; signal?: AbortSignal }): Promise<Int32Array[][]> {
  const input = prepareH2O(options);
  return runAsync(program(input, options.backend ?? getKernelBackend()), options.signal);
}
