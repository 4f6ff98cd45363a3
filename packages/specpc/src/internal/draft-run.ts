import {
  argmax,
  type CausalLMV1,
  getKernelBackend,
  type KvCacheV1,
  type ProgressCallback,
  range,
  throwIfAborted,
  UnsupportedCapabilityError,
} from '@draft/core';
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
 * Runs the draft for SpecPC (steps 1–3): one prefill capturing the last W queries, then greedy decoding of
 * Lk tokens where each fed-back token's query scores the prompt keys. Layer tensors are read one layer at a
 * time and scored through the active kernel backend (`getKernelBackend()`), so memory holds one layer's keys.
 */
export async function runSpecPCDraft(options: SpecPCDraftRunOptions): Promise<SpecPCDraftRun> {
  const { draft, inputIds, windowSize: w, signal, onProgress, reduce } = options;
  if (!draft.capabilities.queryCapture) {
    throw new UnsupportedCapabilityError({ capability: 'queryCapture', component: options.component, backend: draft.name });
  }
  const { numLayers, numHeads, numKvHeads, headDim, eosTokenIds, maxPositions } = draft.info;
  const n = inputIds.length;
  const start = resolveStartingLayerIndex(options.startingLayerIndex, numLayers);
  const queryWeights = specPCQueryWeights(w, options.weightedQuery);
  const backend = getKernelBackend();
  const acc = new SpecPCAccumulator(n, reduce);
  const eos = new Set(eosTokenIds);
  const total = 1 + Math.max(0, options.lookaheadTokens - 1);
  throwIfAborted(signal);
  onProgress?.({ stage: 'compress', completed: 0, total });

  const prefill = await draft.forward({ inputIds, positionIds: range(0, n), captureQueries: w, signal, chunkSize: options.chunkSize });
  let cache: KvCacheV1 = prefill.cache;
  try {
    const queries = prefill.queries;
    if (!queries || queries.length !== numLayers) {
      throw new UnsupportedCapabilityError({
        capability: 'queryCapture',
        component: options.component,
        backend: draft.name,
        message: `${options.component}: the draft '${draft.name}' returned no captured queries for its ${numLayers} layers.`,
      });
    }
    acc.beginStep();
    for (let l = start; l < numLayers; l++) {
      throwIfAborted(signal);
      const keys = await cache.readKeys(l);
      const scores = await backend.windowAttentionScores(queries[l], keys, {
        numHeads,
        numKvHeads,
        headDim,
        queryCount: w,
        keyCount: n,
        op: reduce,
        queryWeights,
        causalTail: true,
      });
      acc.addLayer(scores, numKvHeads, n);
    }
    acc.endStep();
    onProgress?.({ stage: 'compress', completed: 1, total });

    const tokens = [argmax(prefill.logits)];
    let stoppedAtEos = eos.has(tokens[0]);
    while (tokens.length < options.lookaheadTokens && !stoppedAtEos && cache.nextPosition < maxPositions) {
      throwIfAborted(signal, { tokens: tokens.slice() });
      const step = await draft.forward({
        inputIds: [tokens[tokens.length - 1]],
        positionIds: [cache.nextPosition],
        cache,
        captureQueries: 1,
        signal,
      });
      if (cache !== prefill.cache) cache.dispose();
      cache = step.cache;
      const stepQueries = step.queries;
      if (!stepQueries || stepQueries.length !== numLayers) {
        throw new UnsupportedCapabilityError({ capability: 'queryCapture', component: options.component, backend: draft.name });
      }
      acc.beginStep();
      for (let l = start; l < numLayers; l++) {
        const keys = await cache.readKeys(l);
        const m = keys.length / (numKvHeads * headDim);
        const scores = await backend.windowAttentionScores(stepQueries[l], keys, {
          numHeads,
          numKvHeads,
          headDim,
          queryCount: 1,
          keyCount: m,
          op: reduce,
          causalTail: true,
        });
        acc.addLayer(scores, numKvHeads, m);
      }
      acc.endStep();
      tokens.push(argmax(step.logits));
      stoppedAtEos = eos.has(tokens[tokens.length - 1]);
      onProgress?.({ stage: 'compress', completed: tokens.length, total });
    }
    return { scores: acc.result(), tokens, stoppedAtEos, startingLayerIndex: start };
  } finally {
    if (cache !== prefill.cache) cache.dispose();
    prefill.cache.dispose();
  }
}
