import { argmax, type CausalLMV1, type KvCacheV1, type ProgressCallback, throwIfAborted } from '@draft/core';
import { range } from './validate.js';

/**
 * Greedy draft answer: prefill at positions 0 … n−1, argmax (lowest id on ties), stop at an EOS (kept) or
 * after `maxNewTokens` or at the model's last position. The last token is not fed back.
 */
export async function greedyAnswer(options: {
  model: CausalLMV1;
  inputIds: readonly number[];
  maxNewTokens: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  stage: string;
}): Promise<{ tokens: number[]; stoppedAtEos: boolean }> {
  const { model, maxNewTokens, signal } = options;
  const tokens: number[] = [];
  if (maxNewTokens === 0) return { tokens, stoppedAtEos: false };
  const eos = new Set(model.info.eosTokenIds);
  throwIfAborted(signal);
  const prefill = await model.forward({ inputIds: options.inputIds, positionIds: range(0, options.inputIds.length), signal });
  let cache: KvCacheV1 = prefill.cache;
  let logits = prefill.logits;
  try {
    while (tokens.length < maxNewTokens) {
      throwIfAborted(signal, { tokens: tokens.slice() });
      const id = argmax(logits);
      tokens.push(id);
      options.onProgress?.({ stage: options.stage, completed: tokens.length, total: maxNewTokens });
      if (eos.has(id)) return { tokens, stoppedAtEos: true };
      if (tokens.length >= maxNewTokens || cache.nextPosition >= model.info.maxPositions) break;
      const step = await model.forward({ inputIds: [id], positionIds: [cache.nextPosition], cache, signal });
      if (cache !== prefill.cache) cache.dispose();
      cache = step.cache;
      logits = step.logits;
    }
    return { tokens, stoppedAtEos: false };
  } finally {
    if (cache !== prefill.cache) cache.dispose();
    prefill.cache.dispose();
  }
}
