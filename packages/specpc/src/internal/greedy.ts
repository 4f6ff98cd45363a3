import { type CausalLMV1, greedyContinue, type ProgressCallback, range, throwIfAborted } from '@draft/core';

/**
 * Greedy draft answer: prefill at positions 0 … n−1, then core's `greedyContinue` (argmax, lowest id on ties;
 * stop at an EOS (kept) or after `maxNewTokens` or at the model's last position; the last token is not fed back).
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
  if (maxNewTokens === 0) return { tokens: [], stoppedAtEos: false };
  throwIfAborted(signal);
  const prefill = await model.forward({ inputIds: options.inputIds, positionIds: range(0, options.inputIds.length), signal });
  try {
    return await greedyContinue({ model, cache: prefill.cache, logits: prefill.logits, maxNewTokens, signal, onProgress: options.onProgress, stage: options.stage });
  } finally {
    prefill.cache.dispose();
  }
}
