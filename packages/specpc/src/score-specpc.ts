import { InvalidArgumentError, requireInteger, requireOneOf, windowAttentionScores } from '@draft/core';
import { SpecPCAccumulator } from './internal/accumulator.js';

/** One draft layer's tensors for SpecPC's window scoring. All post-RoPE. */
export interface SpecPCLayerInput {
  /** Queries of the last W prompt positions, (numHeads, W, headDim). */
  queries: Float32Array;
  /** Keys of the n prompt positions, (numKvHeads, n, headDim). */
  keys: Float32Array;
}

/**
 * One layer of one decode step (a fed-back draft token), either as tensors or as attention rows:
 * - `{ queries (numHeads, q, headDim), keys (numKvHeads, m, headDim) }`: the q queries are the last q of the m
 *   ≥ n keys (prompt ++ draft tokens so far ++ itself), scored with softmax over all m keys;
 * - `{ attention (numHeads, m) }`: that step's softmax probabilities, m ≥ n.
 * Either way only the first n keys (the prompt) count. No query weighting applies to decode steps.
 */
export type SpecPCDecodeLayerInput = { queries: Float32Array; keys: Float32Array } | { attention: Float32Array };

export interface ScoreSpecPCInput {
  /**
   * Per draft layer (index = layer index). Layers below the used `startingLayerIndex` are ignored and may be
   * null; every later layer must be present.
   */
  layers: readonly (SpecPCLayerInput | null | undefined)[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** n. */
  promptLength: number;
  /** W: window queries per layer (1 ≤ W ≤ n). */
  windowSize: number;
  /** Weight window query row j by j/(W−1) (linspace 0…1) before reducing; no weighting when W = 1. Default true. */
  weightedQuery?: boolean;
  /**
   * First layer used (reference `starting_layer_index`); clamped to layers.length − 1 (see
   * `resolveStartingLayerIndex`). Default 0: the caller passes exactly the layers to use.
   */
  startingLayerIndex?: number;
  /** 'max' (default, the paper) or 'mean' (a true mean at every level; the reference sums). */
  reduce?: 'max' | 'mean';
  /** Per decode step (fed-back draft token), per layer as in `layers`. */
  decodeSteps?: readonly (readonly (SpecPCDecodeLayerInput | null | undefined)[])[];
  /** Keys per chunk for the fused window scoring (memory bound); default 1024. */
  chunkSize?: number;
}

/** The used starting layer: `min(startingLayerIndex, numLayers − 1)` (the reference fails past the last layer). */
export function resolveStartingLayerIndex(startingLayerIndex: number, numLayers: number): number {
  requireInteger('startingLayerIndex', startingLayerIndex, 0);
  requireInteger('numLayers', numLayers, 1);
  return Math.min(startingLayerIndex, numLayers - 1);
}

/** SpecPC's window query weights: row j gets j/(W−1) (0 … 1); undefined (no weighting) when W = 1 or disabled. */
export function specPCQueryWeights(windowSize: number, weightedQuery = true): Float32Array | undefined {
  requireInteger('windowSize', windowSize, 1);
  if (!weightedQuery || windowSize === 1) return undefined;
  const weights = new Float32Array(windowSize);
  for (let j = 0; j < windowSize; j++) weights[j] = j / (windowSize - 1);
  return weights;
}

/**
 * SpecPC token importance (ALGORITHMS.md, SpecPC steps 2–3), the TypeScript reference.
 *
 * For each layer l ≥ startingLayerIndex: A = softmax(Q·Kᵀ/√d) of the last W prompt queries over all n keys
 * (causal among the last W keys), row j multiplied by j/(W−1), reduced over all query heads and the W queries.
 * Each decode step adds, per layer l ≥ startingLayerIndex, the attention of that step's query over its keys,
 * reduced over heads and truncated to the n prompt keys. With 'max' (default) s = max over heads, queries,
 * layers and steps; with 'mean' each level is a true mean (layers within a step, then steps, the window
 * being step 0).
 *
 * @returns s, (n): higher score = keep
 */
export function scoreSpecPC(input: ScoreSpecPCInput): Float32Array {
  const { numHeads, numKvHeads, headDim } = input;
  const n = requireInteger('promptLength', input.promptLength, 1);
  const windowSize = requireInteger('windowSize', input.windowSize, 1);
  if (windowSize > n) throw new InvalidArgumentError({ argument: 'windowSize', value: windowSize, expected: `≤ promptLength (${n})` });
  const op = requireOneOf('reduce', input.reduce ?? 'max', ['max', 'mean'] as const);
  const numLayers = input.layers?.length ?? 0;
  if (numLayers < 1) throw new InvalidArgumentError({ argument: 'layers.length', value: numLayers, expected: 'at least one layer' });
  const start = resolveStartingLayerIndex(input.startingLayerIndex ?? 0, numLayers);
  const queryWeights = specPCQueryWeights(windowSize, input.weightedQuery ?? true);
  const acc = new SpecPCAccumulator(n, op);

  acc.beginStep();
  for (let l = start; l < numLayers; l++) {
    const layer = requireLayer(input.layers[l], `layers[${l}]`);
    const scores = windowAttentionScores(layer.queries, layer.keys, {
      numHeads,
      numKvHeads,
      headDim,
      queryCount: windowSize,
      keyCount: n,
      op,
      queryWeights,
      causalTail: true,
      chunkSize: input.chunkSize,
    });
    acc.addLayer(scores, numKvHeads, n);
  }
  acc.endStep();

  (input.decodeSteps ?? []).forEach((step, t) => {
    acc.beginStep();
    for (let l = start; l < numLayers; l++) {
      const layer = requireLayer(step?.[l], `decodeSteps[${t}][${l}]`);
      if ('attention' in layer) {
        const m = layer.attention.length / numHeads;
        if (!Number.isInteger(m) || m < n) {
          throw new InvalidArgumentError({
            argument: `decodeSteps[${t}][${l}].attention.length`,
            value: layer.attention.length,
            expected: `numHeads·m with m ≥ promptLength (${n})`,
          });
        }
        acc.addLayer(layer.attention, numHeads, m);
        continue;
      }
      const m = layer.keys.length / (numKvHeads * headDim);
      const q = layer.queries.length / (numHeads * headDim);
      if (!Number.isInteger(m) || m < n) {
        throw new InvalidArgumentError({
          argument: `decodeSteps[${t}][${l}].keys.length`,
          value: layer.keys.length,
          expected: `numKvHeads·m·headDim with m ≥ promptLength (${n})`,
        });
      }
      const scores = windowAttentionScores(layer.queries, layer.keys, {
        numHeads,
        numKvHeads,
        headDim,
        queryCount: q,
        keyCount: m,
        op,
        causalTail: true,
        chunkSize: input.chunkSize,
      });
      acc.addLayer(scores, numKvHeads, m);
    }
    acc.endStep();
  });
  return acc.result();
}

function requireLayer<T>(layer: T | null | undefined, argument: string): T {
  if (layer === null || layer === undefined) {
    throw new InvalidArgumentError({ argument, value: layer, expected: 'the tensors of a layer at or above startingLayerIndex' });
  }
  return layer;
}
