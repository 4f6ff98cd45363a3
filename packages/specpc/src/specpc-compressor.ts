import {
  type Budget,
  InvalidArgumentError,
  type PolicyConfig,
  type PromptCompressionInputV1,
  type PromptCompressionResultV1,
  type PromptCompressorV1,
  range,
  requireBoolean,
  requireInteger,
  requireOneOf,
  resolveBudget,
  throwIfAborted,
  type TokenizerV1,
} from '@draft/core';
import { runSpecPCDraft } from './internal/draft-run.js';
import { selectSpecPC } from './select-specpc.js';

/** Defaults of ALGORITHMS.md, SpecPC. */
export const SPECPC_DEFAULTS = Object.freeze({
  budget: 1024,
  windowSize: 64,
  kernelSize: 64,
  lookaheadTokens: 1,
  startingLayerIndex: 8,
  weightedQuery: true,
  reduce: 'max' as 'max' | 'mean',
  keepOriginalPositions: false,
});

export interface SpecPCOptions {
  /**
   * C: prompt tokens kept, window included (reference `max_capacity_prompt`), as a number or any core `Budget`.
   * Stored as a `Budget`: it is the **default** prompt budget of core's `createPipeline` (whose `promptBudget`
   * option wins). `compress` always keeps `input.budget` tokens, so the pipeline's n ≤ C check and the result
   * agree; this option is used only when a caller passes no budget (then 1024).
   */
  budget?: number | Budget;
  /** W: last prompt positions whose queries score the prompt and which are always kept. Default 64. */
  windowSize?: number;
  /** k: max-pool kernel (centred zero padding; any k ≥ 1). Default 64 (use 32 for Llama-family pairs). */
  kernelSize?: number;
  /** N: neighbourhood kept around each selected token; 0 disables. Default k. */
  neighbourTokens?: number;
  /** Lk: draft tokens generated; Lk − 1 fed-back tokens also score the prompt. Default 1 (one forward pass). */
  lookaheadTokens?: number;
  /** First draft layer used; clamped to numLayers − 1 (the used value is in the result). Default 8. */
  startingLayerIndex?: number;
  /** Window query row j weighted by j/(W−1). Default true. */
  weightedQuery?: boolean;
  /** Aggregation over heads, queries, layers and steps: 'max' (default) or a true 'mean'. */
  reduce?: 'max' | 'mean';
  /** Return `positionIds` = the kept original positions (SpecPrefill style) instead of re-indexing. Default false. */
  keepOriginalPositions?: boolean;
  /** Draft prefill chunk size (bounds activation memory); default: the draft's own. */
  chunkSize?: number;
  /** Called with every result (the SpecKV-PC cascade hands the draft tokens to its `ReusedLookahead`). */
  onResult?: (result: SpecPCResult, context: { draftTokenizer?: TokenizerV1; stoppedAtEos: boolean; draftEosTokenIds: readonly number[] }) => void;
}

export interface SpecPCConfig extends PolicyConfig {
  type: 'specpc';
  budget?: Budget;
  windowSize: number;
  kernelSize: number;
  neighbourTokens: number;
  lookaheadTokens: number;
  startingLayerIndex: number;
  weightedQuery: boolean;
  reduce: 'max' | 'mean';
  keepOriginalPositions: boolean;
  /**
   * Draft prefill chunk size; `undefined` = the draft's own. `toConfig()` always has the key (a JSON copy drops
   * it), so its keys are every option the compressor takes.
   */
  chunkSize?: number;
}

export interface SpecPCResult extends PromptCompressionResultV1 {
  /** Kept / prompt tokens. */
  keepRatio: number;
  /** n. */
  promptTokens: number;
  /** The starting layer actually used (clamped to the draft's numLayers − 1); undefined when the draft did not run. */
  startingLayerIndex?: number;
  /** Whether the draft ran (false: n ≤ C, passed through). */
  compressed: boolean;
}

/**
 * SpecPC (Galim et al., "Draft-based Approximate Inference for LLMs", §4; ALGORITHMS.md SpecPC): prompt
 * compression scored by the draft's own attention. The draft reads the prompt once (plus Lk − 1 greedy decode
 * steps); its last W queries (weighted 0 → 1) and fed-back tokens' queries score every prompt token in layers
 * ≥ startingLayerIndex; max-pool + top-C + neighbourhoods + window pick exactly min(C, n) tokens.
 *
 * A prompt with n ≤ C passes through unchanged without running the draft. Works in front of any target: the
 * result has ids, detokenised text, kept indices and (optionally) the original positions.
 */
export class SpecPCCompressor implements PromptCompressorV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'specpc';
  readonly needs = 'draft' as const;
  readonly budget: Budget | undefined;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly neighbourTokens: number;
  readonly lookaheadTokens: number;
  readonly startingLayerIndex: number;
  readonly weightedQuery: boolean;
  readonly reduce: 'max' | 'mean';
  readonly keepOriginalPositions: boolean;
  readonly chunkSize: number | undefined;
  private readonly onResult: SpecPCOptions['onResult'];

  constructor(options: SpecPCOptions = {}) {
    const d = SPECPC_DEFAULTS;
    this.budget = normaliseBudget(options.budget);
    this.windowSize = requireInteger('windowSize', options.windowSize ?? d.windowSize, 1);
    this.kernelSize = requireInteger('kernelSize', options.kernelSize ?? d.kernelSize, 1);
    this.neighbourTokens = requireInteger('neighbourTokens', options.neighbourTokens ?? this.kernelSize, 0);
    this.lookaheadTokens = requireInteger('lookaheadTokens', options.lookaheadTokens ?? d.lookaheadTokens, 1);
    this.startingLayerIndex = requireInteger('startingLayerIndex', options.startingLayerIndex ?? d.startingLayerIndex, 0);
    this.weightedQuery = requireBoolean('weightedQuery', options.weightedQuery ?? d.weightedQuery);
    this.reduce = requireOneOf('reduce', options.reduce ?? d.reduce, ['max', 'mean'] as const);
    this.keepOriginalPositions = requireBoolean('keepOriginalPositions', options.keepOriginalPositions ?? d.keepOriginalPositions);
    this.chunkSize = options.chunkSize === undefined ? undefined : requireInteger('chunkSize', options.chunkSize, 1);
    this.onResult = options.onResult;
  }

  /** Builds a compressor from a serialisable config (`type` is ignored; options are validated by the constructor). */
  static fromConfig(config: PolicyConfig | Partial<SpecPCConfig>): SpecPCCompressor {
    const { type: _type, ...options } = config;
    return new SpecPCCompressor(options as SpecPCOptions);
  }

  async compress(input: PromptCompressionInputV1): Promise<SpecPCResult> {
    const ids = Array.from(input.inputIds ?? []);
    const n = ids.length;
    if (n < 1) throw new InvalidArgumentError({ argument: 'inputIds', value: [], expected: 'a non-empty prompt' });
    const budget =
      input.budget === undefined ? resolveBudget(this.budget ?? { tokens: SPECPC_DEFAULTS.budget }, n) : requireInteger('budget', input.budget, 1);
    const lookaheadTokens = requireInteger('lookaheadTokens', input.lookaheadTokens ?? this.lookaheadTokens, 1);
    throwIfAborted(input.signal);
    const draft = input.draft;

    if (n <= budget) {
      // ALGORITHMS.md: a prompt with n ≤ C passes through unchanged, without running the draft.
      const kept = range(0, n);
      const result: SpecPCResult = {
        keptIndices: kept,
        inputIds: ids,
        text: input.text,
        ...(this.keepOriginalPositions ? { positionIds: kept.slice() } : {}),
        draftTokens: 0,
        keepRatio: 1,
        promptTokens: n,
        compressed: false,
      };
      this.onResult?.(result, { draftTokenizer: draft?.tokenizer, stoppedAtEos: false, draftEosTokenIds: draft?.info.eosTokenIds ?? [] });
      return result;
    }
    if (!draft) throw new InvalidArgumentError({ argument: 'draft', value: draft, expected: 'a draft CausalLMV1 (SpecPC scores with a draft model)' });
    if (this.windowSize > n) {
      throw new InvalidArgumentError({ argument: 'windowSize', value: this.windowSize, expected: `≤ the prompt length (${n})` });
    }
    const run = await runSpecPCDraft({
      draft,
      inputIds: ids,
      windowSize: this.windowSize,
      lookaheadTokens,
      startingLayerIndex: this.startingLayerIndex,
      weightedQuery: this.weightedQuery,
      reduce: this.reduce,
      chunkSize: this.chunkSize,
      signal: input.signal,
      onProgress: input.onProgress,
      component: 'SpecPCCompressor',
    });
    throwIfAborted(input.signal);
    const kept = selectSpecPC({
      scores: run.scores,
      budget,
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      neighbourTokens: this.neighbourTokens,
    });
    const keptIds = Array.from(kept, (i) => ids[i]);
    const result: SpecPCResult = {
      keptIndices: kept,
      inputIds: keptIds,
      text: draft.tokenizer.decode(keptIds, { skipSpecialTokens: true }),
      ...(this.keepOriginalPositions ? { positionIds: kept.slice() } : {}),
      draftTokenIds: run.tokens,
      draftTokens: run.tokens.length,
      keepRatio: kept.length / n,
      promptTokens: n,
      startingLayerIndex: run.startingLayerIndex,
      compressed: true,
    };
    this.onResult?.(result, { draftTokenizer: draft.tokenizer, stoppedAtEos: run.stoppedAtEos, draftEosTokenIds: draft.info.eosTokenIds });
    return result;
  }

  toConfig(): SpecPCConfig {
    return {
      type: 'specpc',
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      neighbourTokens: this.neighbourTokens,
      lookaheadTokens: this.lookaheadTokens,
      startingLayerIndex: this.startingLayerIndex,
      weightedQuery: this.weightedQuery,
      reduce: this.reduce,
      keepOriginalPositions: this.keepOriginalPositions,
      chunkSize: this.chunkSize,
    };
  }
}

/** A budget option as a core Budget (validated; a number C becomes `{ tokens: C }`). */
function normaliseBudget(budget: number | Budget | undefined): Budget | undefined {
  if (budget === undefined) return undefined;
  if (typeof budget === 'number') return { tokens: requireInteger('budget', budget, 1) };
  resolveBudget(budget, 1); // throws InvalidArgumentError on a malformed budget or an out-of-range ratio
  return { ...budget };
}

/** `new SpecPCCompressor(options)`. */
export function specPC(options: SpecPCOptions = {}): SpecPCCompressor {
  return new SpecPCCompressor(options);
}
