import {
  draftTokensForTarget,
  forwardWithPrefix,
  greedyContinue,
  InvalidArgumentError,
  type LookaheadInputV1,
  type LookaheadProviderV1,
  type LookaheadResultV1,
  type PolicyConfig,
  range,
  requireInteger,
  throwIfAborted,
} from '@draft/core';

export interface DraftLookaheadOptions {
  /**
   * Draft tokens to generate (L). When omitted, the pipeline's `maxNewTokens` for the answer is used, as in
   * the paper (the draft writes a full approximate answer).
   */
  maxNewTokens?: number;
  /**
   * Reuse `LookaheadInputV1.draftTokenIds` (draft tokens an earlier stage already generated from the full
   * prompt, in the target's vocabulary) instead of running the draft again. Default **false**: those tokens
   * have the earlier stage's length (SpecPC's Lk = 1, SpecPrefill's 8), not SpecKV's L = maxNewTokens. The
   * SpecKV-PC cascade reuses them through `@draft/specpc`'s `ReusedLookahead`; set true only for a compressor
   * whose lookahead was sized for SpecKV.
   */
  reuseDraftTokens?: boolean;
}

export interface DraftLookaheadConfig extends PolicyConfig {
  type: 'draft-lookahead';
  maxNewTokens?: number;
  reuseDraftTokens: boolean;
}

/**
 * SpecKV's lookahead (ALGORITHMS.md SpecKV step 2): the draft greedily answers the prompt; its tokens are
 * appended to the target's prefill so their queries can score the prompt's KV.
 *
 * - Greedy (argmax, lowest id on ties), up to `maxNewTokens`, stops at the draft's EOS and **keeps** it.
 * - Same tokenizer fingerprint: the prompt and the answer cross as ids (`inputIds` is fed to the draft as is).
 * - Different tokenizers: the draft reads `text` with its own tokenizer; its answer crosses as text
 *   (special tokens skipped) and is re-tokenised by the target's tokenizer without special tokens; an EOS
 *   stop becomes the target's first EOS id.
 * - `draftTokenIds` from an earlier stage are ignored unless `reuseDraftTokens: true` (then returned as they
 *   are, the draft is not run, `draftTokens: 0`).
 */
export class DraftLookahead implements LookaheadProviderV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'draft-lookahead';
  readonly needs = 'draft' as const;
  readonly maxNewTokens: number | undefined;
  readonly reuseDraftTokens: boolean;

  constructor(options: DraftLookaheadOptions = {}) {
    this.maxNewTokens = options.maxNewTokens === undefined ? undefined : requireInteger('maxNewTokens', options.maxNewTokens, 0);
    if (options.reuseDraftTokens !== undefined && typeof options.reuseDraftTokens !== 'boolean') {
      throw new InvalidArgumentError({ argument: 'reuseDraftTokens', value: options.reuseDraftTokens, expected: 'a boolean' });
    }
    this.reuseDraftTokens = options.reuseDraftTokens ?? false;
  }

  async lookahead(input: LookaheadInputV1): Promise<LookaheadResultV1> {
    const { draft, target, signal } = input;
    if (this.reuseDraftTokens && input.draftTokenIds) {
      const tokenIds = Array.from(input.draftTokenIds);
      return { tokenIds, text: target.tokenizer.decode(tokenIds, { skipSpecialTokens: true }), draftTokens: 0 };
    }
    if (!draft) {
      throw new InvalidArgumentError({ argument: 'draft', value: draft, expected: 'a draft CausalLMV1 (DraftLookahead needs a draft model)' });
    }
    const maxNewTokens = this.maxNewTokens ?? requireInteger('maxNewTokens', input.maxNewTokens, 0);
    const sameVocabulary = draft.tokenizer.fingerprint === target.tokenizer.fingerprint;
    if (maxNewTokens === 0) return { tokenIds: [], text: '', draftTokens: 0 };
    const promptIds = sameVocabulary ? Array.from(input.inputIds) : draft.tokenizer.encode(input.text);
    if (promptIds.length === 0) {
      throw new InvalidArgumentError({ argument: 'inputIds', value: [], expected: 'a non-empty prompt' });
    }
    throwIfAborted(signal);
    input.onProgress?.({ stage: 'lookahead', completed: 0, total: maxNewTokens });
    // A stored draft prefix (document cache) saves the document's draft prefill; a prompt that does not extend it
    // (another tokenizer splitting the boundary differently) is run in full.
    const prefix = input.prefixes?.draft;
    const prefill = prefix
      ? await forwardWithPrefix({ model: draft, inputIds: promptIds, prefix, onMismatch: 'full', signal })
      : await draft.forward({ inputIds: promptIds, positionIds: range(0, promptIds.length), signal });
    let generated: { tokens: number[]; stoppedAtEos: boolean };
    try {
      generated = await greedyContinue({
        model: draft,
        cache: prefill.cache,
        logits: prefill.logits,
        maxNewTokens,
        signal,
        onProgress: input.onProgress,
        stage: 'lookahead',
      });
    } finally {
      prefill.cache.dispose();
    }
    const { tokens, stoppedAtEos } = generated;
    return { ...draftTokensForTarget({ tokens, stoppedAtEos, draftTokenizer: draft.tokenizer, target }), draftTokens: tokens.length };
  }

  toConfig(): DraftLookaheadConfig {
    return {
      type: 'draft-lookahead',
      ...(this.maxNewTokens === undefined ? {} : { maxNewTokens: this.maxNewTokens }),
      reuseDraftTokens: this.reuseDraftTokens,
    };
  }
}

/** `new DraftLookahead(options)`. */
export function draftLookahead(options: DraftLookaheadOptions = {}): DraftLookahead {
  return new DraftLookahead(options);
}
