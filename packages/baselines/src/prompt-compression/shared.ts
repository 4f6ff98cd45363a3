import {
  InvalidArgumentError,
  type PromptCompressionInputV1,
  type PromptCompressionResultV1,
  requireInteger,
  type TokenizerV1,
} from '@draft/core';

/** A prompt compression result with the achieved ratio. */
export interface CompressionResult extends PromptCompressionResultV1 {
  /** Kept / prompt tokens. */
  keepRatio: number;
  promptTokens: number;
  /** False when the prompt was passed through (n ≤ C). */
  compressed: boolean;
}

/** Validated prompt ids and budget of a call. */
export function readInput(input: PromptCompressionInputV1): { ids: number[]; budget: number } {
  const ids = Array.from(input.inputIds ?? []);
  if (ids.length < 1) throw new InvalidArgumentError({ argument: 'inputIds', value: [], expected: 'a non-empty prompt' });
  return { ids, budget: requireInteger('budget', input.budget, 1) };
}

/**
 * Builds a result from ascending kept indices. Text: the kept ids detokenised (special tokens skipped) with
 * `tokenizer`; the input text when everything is kept; '' when no tokenizer is available (the input carries
 * none: pass `tokenizer` to the compressor or a draft).
 */
export function buildResult(options: {
  input: PromptCompressionInputV1;
  ids: readonly number[];
  kept: Int32Array;
  tokenizer?: TokenizerV1;
  keepOriginalPositions: boolean;
  draftTokenIds?: number[];
}): CompressionResult {
  const { input, ids, kept, tokenizer } = options;
  const all = kept.length === ids.length;
  const keptIds = Array.from(kept, (i) => ids[i]);
  return {
    keptIndices: kept,
    inputIds: keptIds,
    text: all ? input.text : tokenizer ? tokenizer.decode(keptIds, { skipSpecialTokens: true }) : '',
    ...(options.keepOriginalPositions ? { positionIds: kept.slice() } : {}),
    ...(options.draftTokenIds ? { draftTokenIds: options.draftTokenIds } : {}),
    draftTokens: options.draftTokenIds?.length ?? 0,
    keepRatio: kept.length / ids.length,
    promptTokens: ids.length,
    compressed: !all,
  };
}
