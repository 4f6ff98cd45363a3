import {
  type CausalLMV1,
  draftTokensForTarget,
  InvalidArgumentError,
  type LookaheadInputV1,
  type LookaheadProviderV1,
  type LookaheadResultV1,
  type PolicyConfig,
  requireInteger,
  requireOneOf,
  type TokenizerV1,
} from '@draft/core';
import { greedyAnswer } from './internal/greedy.js';
import { type SpecPCConfig, SpecPCCompressor, type SpecPCOptions } from './specpc-compressor.js';

/** SpecKV-PC's prompt-compression stage (ALGORITHMS.md, SpecKV-PC): C_pc = 2048, k = N = 32, 20 draft tokens. */
export const SPECKV_PC_DEFAULTS = Object.freeze({ budget: 2048, kernelSize: 32, neighbourTokens: 32, lookaheadTokens: 20 });

/** Remembered answers kept at most (oldest dropped first). */
export const MAX_PENDING = 16;

/** A draft answer remembered for one compressed prompt. */
export interface RememberedLookahead {
  /** The compressed prompt in the draft's ids (what SpecKV will prefill, when the vocabularies agree). */
  promptIds: readonly number[];
  /** The compressed prompt's text. */
  promptText: string;
  /** Draft tokens (draft vocabulary), an EOS that stopped generation included. */
  tokenIds: readonly number[];
  stoppedAtEos: boolean;
  /** The draft's tokenizer, to carry the answer across vocabularies. */
  draftTokenizer: TokenizerV1;
}

export interface ReusedLookaheadOptions {
  /**
   * When no remembered answer matches the prompt: 'generate' (default) runs the draft greedily on it (the
   * compressor passed a short prompt through without running the draft, so this is still the only draft run),
   * 'error' throws an InvalidArgumentError.
   */
  onMissing?: 'generate' | 'error';
  /** Tokens for the 'generate' fallback. Default 20 (SpecKV-PC's lookahead). */
  maxNewTokens?: number;
}

export interface ReusedLookaheadConfig extends PolicyConfig {
  type: 'reused-lookahead';
  onMissing: 'generate' | 'error';
  maxNewTokens: number;
}

/**
 * SpecKV's lookahead in the SpecKV-PC cascade: hands SpecKV the draft tokens the SpecPC stage already
 * generated from the **full** prompt, so one draft run serves both stages.
 *
 * `input.draftTokenIds` (core's pipeline passes the compressor's tokens, in the target's vocabulary) is
 * used first. Otherwise (other pipelines, different vocabularies) the compressor `remember`s its answer
 * keyed by the compressed prompt, and `lookahead` takes (and forgets) the most recent entry whose compressed text equals `input.text` or whose ids equal `input.inputIds`, so
 * concurrent requests over different prompts do not mix. All remembered tokens are returned (the cascade's
 * lookahead length is fixed by the compressor, not by `maxNewTokens`). Vocabularies: same tokenizer
 * fingerprint → ids as is; otherwise the answer crosses as text (special tokens skipped), is re-tokenised by
 * the target without special tokens, and an EOS stop becomes the target's first EOS id (as DraftLookahead).
 */
export class ReusedLookahead implements LookaheadProviderV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'reused-lookahead';
  readonly needs = 'draft' as const;
  readonly onMissing: 'generate' | 'error';
  readonly maxNewTokens: number;
  private readonly entries: RememberedLookahead[] = [];
  /** Draft runs made by the 'generate' fallback (for tests and usage reports). */
  fallbackRuns = 0;

  constructor(options: ReusedLookaheadOptions = {}) {
    this.onMissing = requireOneOf('onMissing', options.onMissing ?? 'generate', ['generate', 'error'] as const);
    this.maxNewTokens = requireInteger('maxNewTokens', options.maxNewTokens ?? SPECKV_PC_DEFAULTS.lookaheadTokens, 0);
  }

  /** Remembered answers not yet taken. */
  get pending(): number {
    return this.entries.length;
  }

  remember(entry: RememberedLookahead): void {
    this.entries.push({ ...entry, promptIds: Array.from(entry.promptIds), tokenIds: Array.from(entry.tokenIds) });
    // Answers nobody takes (compression without a SpecKV stage) must not pile up.
    if (this.entries.length > MAX_PENDING) this.entries.shift();
  }

  /** Forgets every remembered answer. */
  clear(): void {
    this.entries.length = 0;
  }

  async lookahead(input: LookaheadInputV1): Promise<LookaheadResultV1> {
    const index = this.findEntry(input);
    if (input.draftTokenIds) {
      // core's pipeline hands the compressor's draft tokens over itself (shared vocabularies): use them.
      if (index >= 0) this.entries.splice(index, 1);
      const tokenIds = Array.from(input.draftTokenIds);
      return { tokenIds, text: input.target.tokenizer.decode(tokenIds, { skipSpecialTokens: true }), draftTokens: 0 };
    }
    if (index >= 0) {
      const [entry] = this.entries.splice(index, 1);
      return toTarget(entry.tokenIds, entry.stoppedAtEos, entry.draftTokenizer, input.target, 0);
    }
    if (this.onMissing === 'error') {
      throw new InvalidArgumentError({
        argument: 'inputIds',
        value: `${input.inputIds.length} tokens`,
        expected: 'a prompt compressed by the linked SpecPC compressor (no remembered draft answer matches it)',
      });
    }
    const draft: CausalLMV1 | undefined = input.draft;
    if (!draft) throw new InvalidArgumentError({ argument: 'draft', value: draft, expected: 'a draft CausalLMV1 (ReusedLookahead fallback)' });
    const sameVocabulary = draft.tokenizer.fingerprint === input.target.tokenizer.fingerprint;
    const promptIds = sameVocabulary ? Array.from(input.inputIds) : draft.tokenizer.encode(input.text);
    if (promptIds.length === 0) throw new InvalidArgumentError({ argument: 'inputIds', value: [], expected: 'a non-empty prompt' });
    this.fallbackRuns++;
    const { tokens, stoppedAtEos } = await greedyAnswer({
      model: draft,
      inputIds: promptIds,
      maxNewTokens: this.maxNewTokens,
      signal: input.signal,
      onProgress: input.onProgress,
      stage: 'lookahead',
    });
    return toTarget(tokens, stoppedAtEos, draft.tokenizer, input.target, tokens.length);
  }

  toConfig(): ReusedLookaheadConfig {
    return { type: 'reused-lookahead', onMissing: this.onMissing, maxNewTokens: this.maxNewTokens };
  }

  private findEntry(input: LookaheadInputV1): number {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.promptText === input.text || sameIds(e.promptIds, input.inputIds)) return i;
    }
    return -1;
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toTarget(
  tokens: readonly number[],
  stoppedAtEos: boolean,
  draftTokenizer: TokenizerV1,
  target: CausalLMV1,
  draftTokens: number,
): LookaheadResultV1 {
  return { ...draftTokensForTarget({ tokens, stoppedAtEos, draftTokenizer, target }), draftTokens };
}

export interface SpecKVPCOptions extends Omit<SpecPCOptions, 'onResult'> {
  /** What SpecKV's lookahead does when no compressed prompt matches (see ReusedLookaheadOptions). Default 'generate'. */
  onMissingLookahead?: 'generate' | 'error';
}

export interface SpecKVPCConfig extends PolicyConfig {
  type: 'speckv-pc';
  compressor: SpecPCConfig;
  lookahead: ReusedLookaheadConfig;
}

export interface SpecKVPC {
  /** Stage 1: SpecPC with C_pc = 2048, k = N = 32, 20 draft tokens; its results carry `draftTokenIds`. */
  compressor: SpecPCCompressor;
  /** Stage 2: hands those draft tokens to SpecKV. Pair it with a SpecKV cache policy (@draft/speckv). */
  lookahead: ReusedLookahead;
  toConfig(): SpecKVPCConfig;
}

/**
 * SpecKV-PC (ALGORITHMS.md, SpecKV-PC): SpecPC compresses the prompt while the draft writes 20 lookahead
 * tokens from the **full** prompt; SpecKV then runs on the compressed prompt with those same tokens (one
 * draft run serves both stages). Returns the linked compressor + lookahead; the KV stage is SpecKV's cache
 * policy, e.g. `createPipeline({ compressor, lookahead, cachePolicy: specKV({ budget: 256 }) })`.
 *
 * The compressor's `budget` (C_pc, default `{ tokens: 2048 }`) is core's pipeline default prompt budget
 * (`promptBudget` wins), separate from the pipeline's KV `budget` (SpecKV's C).
 */
export function specKVPC(options: SpecKVPCOptions = {}): SpecKVPC {
  const { onMissingLookahead, ...rest } = options;
  const lookahead = new ReusedLookahead({ onMissing: onMissingLookahead, maxNewTokens: rest.lookaheadTokens ?? SPECKV_PC_DEFAULTS.lookaheadTokens });
  const kernelSize = rest.kernelSize ?? SPECKV_PC_DEFAULTS.kernelSize;
  const compressor = new SpecPCCompressor({
    ...rest,
    budget: rest.budget ?? { tokens: SPECKV_PC_DEFAULTS.budget },
    kernelSize,
    neighbourTokens: rest.neighbourTokens ?? (rest.kernelSize === undefined ? SPECKV_PC_DEFAULTS.neighbourTokens : kernelSize),
    lookaheadTokens: rest.lookaheadTokens ?? SPECKV_PC_DEFAULTS.lookaheadTokens,
    onResult: (result, context) => {
      if (!result.draftTokenIds || !context.draftTokenizer) return;
      lookahead.remember({
        promptIds: result.inputIds,
        promptText: result.text,
        tokenIds: result.draftTokenIds,
        stoppedAtEos: context.stoppedAtEos,
        draftTokenizer: context.draftTokenizer,
      });
    },
  });
  return {
    compressor,
    lookahead,
    toConfig: () => ({ type: 'speckv-pc', compressor: compressor.toConfig(), lookahead: lookahead.toConfig() }),
  };
}
