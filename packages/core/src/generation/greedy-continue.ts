import type { ProgressCallback } from '../spec/common.js';
import { throwIfAborted } from '../spec/errors.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1 } from '../spec/model.js';
import { argmax } from './sampler.js';

/** Options of `greedyContinue`. */
export interface GreedyContinueOptions {
  model: CausalLMV1;
  /** Cache holding the processed tokens; left intact (the caller owns it). */
  cache: KvCacheV1;
  /** Logits of the last processed position, (vocabSize) or (1, vocabSize). */
  logits: Float32Array;
  maxNewTokens: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Progress stage name (e.g. `'lookahead'`). */
  stage: string;
}

/** What `greedyContinue` generated. */
export interface GreedyContinueResult {
  /** Generated ids; an EOS that stopped generation is included (the reference keeps it). */
  tokens: number[];
  stoppedAtEos: boolean;
}

/**
 * Greedy continuation for lookaheads (SpecKV's draft answer, LAQ++'s pseudo answer, SpecPC's draft run):
 * argmax (lowest id on ties, as core's sampler), stop at an EOS id (kept) or after `maxNewTokens` or at the
 * model's last position. The last token is not fed back: nothing needs its KV. Each new token goes in at the
 * explicit position `cache.nextPosition`. Every cache it creates is disposed; `options.cache` is not.
 *
 * Not `decodeLoop`: that loop drops the stop token and decodes text every step; the lookahead needs the EOS id
 * itself (ALGORITHMS.md: "stop at EOS, EOS kept") and no text until the end.
 */
export async function greedyContinue(options: GreedyContinueOptions): Promise<GreedyContinueResult> {
  const { model, maxNewTokens, signal } = options;
  const eos = new Set(model.info.eosTokenIds);
  const tokens: number[] = [];
  let cache = options.cache;
  let logits = options.logits;
  try {
    while (tokens.length < maxNewTokens) {
      throwIfAborted(signal, { tokens: tokens.slice() });
      const id = argmax(logits);
      tokens.push(id);
      options.onProgress?.({ stage: options.stage, completed: tokens.length, total: maxNewTokens });
      if (eos.has(id)) return { tokens, stoppedAtEos: true };
      if (tokens.length >= maxNewTokens || cache.nextPosition >= model.info.maxPositions) break;
      const step = await model.forward({ inputIds: [id], positionIds: [cache.nextPosition], cache, signal });
      if (cache !== options.cache) cache.dispose();
      cache = step.cache;
      logits = step.logits;
    }
    return { tokens, stoppedAtEos: false };
  } finally {
    if (cache !== options.cache) cache.dispose();
  }
}
