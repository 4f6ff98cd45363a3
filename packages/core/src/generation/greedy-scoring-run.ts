import { range } from '../primitives/kept-indices.js';
import type { ProgressCallback } from '../spec/common.js';
import { throwIfAborted, UnsupportedCapabilityError } from '../spec/errors.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1 } from '../spec/model.js';
import type { GreedyContinueResult } from './greedy-continue.js';
import { argmax } from './sampler.js';

/** One scored step of `greedyScoringRun`. */
export interface GreedyScoringStep {
  /** 0 for the prompt prefill, then 1, 2, … for each fed-back draft token. */
  index: number;
  /**
   * Post-RoPE queries per layer: (numHeads, prefillQueries, headDim) at step 0 (the last `prefillQueries`
   * prompt positions), (numHeads, 1, headDim) for a fed-back token.
   */
  queries: readonly Float32Array[];
  /** Cache holding every key so far (prompt ++ fed-back tokens), (numKvHeads, nextPosition, headDim) per layer. Owned by the run. */
  cache: KvCacheV1;
}

/** Options of `greedyScoringRun`. */
export interface GreedyScoringRunOptions {
  model: CausalLMV1;
  /** The prompt, prefilled at positions 0 … n − 1. */
  inputIds: readonly number[];
  /** Lk ≥ 1 greedy tokens; the Lk − 1 fed back are the query steps after the prefill. */
  maxNewTokens: number;
  /** Trailing prompt queries captured at the prefill (step 0). */
  prefillQueries: number;
  /** Forwarded to the prefill (bounds activation memory on long prompts). */
  chunkSize?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Progress stage name (e.g. `'compress'`). */
  stage: string;
  /** Component named in capability errors (e.g. `"prompt compressor 'specpc'"`). */
  component: string;
  /** Scores one step; called for the prefill and for each fed-back token, in order. */
  score(step: GreedyScoringStep): Promise<void> | void;
}

/**
 * The draft run shared by the draft-attention prompt compressors (SpecPC steps 1–3, SpecPrefill): prefill the
 * prompt capturing its last `prefillQueries` queries, then greedy decoding (argmax, lowest id on ties) of up to
 * `maxNewTokens` tokens where each fed-back token is forwarded with its query captured. `score` sees each
 * step's queries with the cache holding every key so far. Stops at an EOS (kept), after `maxNewTokens` or at
 * the model's last position; the last token is not fed back. Every cache it creates is disposed.
 *
 * Unlike `greedyContinue`, each step captures queries and is scored, so the model must offer 'queryCapture':
 * `UnsupportedCapabilityError` otherwise, or when a forward returns no captured queries for every layer.
 */
export async function greedyScoringRun(options: GreedyScoringRunOptions): Promise<GreedyContinueResult> {
  const { model, inputIds, signal, onProgress, stage, component } = options;
  const missingQueries = (message?: string) =>
    new UnsupportedCapabilityError({ capability: 'queryCapture', component, backend: model.name, ...(message ? { message } : {}) });
  if (!model.capabilities.queryCapture) throw missingQueries();
  const { numLayers, eosTokenIds, maxPositions } = model.info;
  const n = inputIds.length;
  const total = Math.max(1, options.maxNewTokens);
  const eos = new Set(eosTokenIds);
  throwIfAborted(signal);
  onProgress?.({ stage, completed: 0, total });

  const prefill = await model.forward({ inputIds, positionIds: range(0, n), captureQueries: options.prefillQueries, signal, chunkSize: options.chunkSize });
  let cache: KvCacheV1 = prefill.cache;
  try {
    if (!prefill.queries || prefill.queries.length !== numLayers) {
      throw missingQueries(`${component}: the model '${model.name}' returned no captured queries for its ${numLayers} layers.`);
    }
    await options.score({ index: 0, queries: prefill.queries, cache });
    const tokens = [argmax(prefill.logits)];
    let stoppedAtEos = eos.has(tokens[0]);
    onProgress?.({ stage, completed: 1, total });
    while (tokens.length < options.maxNewTokens && !stoppedAtEos && cache.nextPosition < maxPositions) {
      throwIfAborted(signal, { tokens: tokens.slice() });
      const step = await model.forward({ inputIds: [tokens[tokens.length - 1]], positionIds: [cache.nextPosition], cache, captureQueries: 1, signal });
      if (cache !== prefill.cache) cache.dispose();
      cache = step.cache;
      if (!step.queries || step.queries.length !== numLayers) throw missingQueries();
      await options.score({ index: tokens.length, queries: step.queries, cache });
      tokens.push(argmax(step.logits));
      stoppedAtEos = eos.has(tokens[tokens.length - 1]);
      onProgress?.({ stage, completed: tokens.length, total });
    }
    return { tokens, stoppedAtEos };
  } finally {
    if (cache !== prefill.cache) cache.dispose();
    prefill.cache.dispose();
  }
}
