import { type CausalLMV1, getKernelBackend, greedyScoringRun, type ProgressCallback, throwIfAborted } from '@draft/core';
import { resolveStartingLayerIndex, specPCQueryWeights } from '../score-specpc.js';
import { SpecPCAccumulator } from './accumulator.js';

export interface SpecPCDraftRunOptions {
  draft: CausalLMV1;
  inputIds: readonly number[];
  windowSize: number;
  /** Lk ≥ 1 draft tokens generated greedily; Lk − 1 of them are fed back and score the prompt. */
  lookaheadTokens: number;
  startingLayerIndex: number;
  weightedQuery: boolean;
  reduce: 'max' | 'mean';
  chunkSize?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Component name for capability errors. */
  component: string;
}

export interface SpecPCDraftRun {
  /** s, (n). */
  scores: Float32Array;
  /** Greedy draft tokens (an EOS that stopped generation included). */
  tokens: number[];
  stoppedAtEos: boolean;
  /** The starting layer actually used (clamped). */
  startingLayerIndex: number;
}

/**
 * Runs the draft for SpecPC (steps 1–3) through core's `greedyScoringRun`: one prefill capturing the last W
 * queries, then greedy decoding of Lk tokens where each fed-back token's query scores the prompt keys. Layer
 * tensors are read one layer at a time and scored through the active kernel backend (`getKernelBackend()`),
 * so memory holds one layer's keys.
 */
export async function runSpecPCDraft(options: SpecPCDraftRunOptions): Promise<SpecPCDraftRun> {
  const { draft, inputIds, windowSize: w, signal, reduce } = options;
  const { numLayers, numHeads, numKvHeads, headDim } = draft.info;
  const n = inputIds.length;
  const start = resolveStartingLayerIndex(options.startingLayerIndex, numLayers);
  const queryWeights = specPCQueryWeights(w, options.weightedQuery);
  const backend = getKernelBackend();
  const acc = new SpecPCAccumulator(n, reduce);
  const { tokens, stoppedAtEos } = await greedyScoringRun({
    model: draft,
    inputIds,
    maxNewTokens: options.lookaheadTokens,
    prefillQueries: w,
    chunkSize: options.chunkSize,
    signal,
    onProgress: options.onProgress,
    stage: 'compress',
    component: options.component,
    async score({ index, queries, cache }) {
      acc.beginStep();
      for (let l = start; l < numLayers; l++) {
        throwIfAborted(signal);
        const keys = await cache.readKeys(l);
        const m = keys.length / (numKvHeads * headDim);
        // Step 0: the last W prompt queries, weighted (step 2); later steps: one fed-back token's query.
        const scores = await backend.windowAttentionScores(queries[l], keys, {
          numHeads,
          numKvHeads,
          headDim,
          queryCount: index === 0 ? w : 1,
          keyCount: m,
          op: reduce,
          ...(index === 0 ? { queryWeights } : {}),
          causalTail: true,
        });
        acc.addLayer(scores, numKvHeads, m);
      }
      acc.endStep();
    },
  });
  return { scores: acc.result(), tokens, stoppedAtEos, startingLayerIndex: start };
}
