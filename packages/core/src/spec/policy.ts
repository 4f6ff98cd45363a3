import type { CapabilityName } from './capabilities.js';
import type { CallOptions, KeptIndices } from './common.js';
import type { KvCacheV1 } from './kv-cache.js';
import type { CausalLMV1 } from './model.js';
import type { PrefixCachesV1 } from './prefix-cache.js';

/** A serialisable method configuration: `type` picks the factory in the policy registry. */
export interface PolicyConfig {
  type: string;
  [option: string]: unknown;
}

/** Everything a cache policy may look at for one prefill. All keys and queries are post-RoPE. */
export interface SelectionContextV1 {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Prompt length n. */
  promptLength: number;
  /** Lookahead tokens L appended after the prompt (0 without lookahead). */
  lookaheadLength: number;
  /** Budget C per (layer, KV head), window included. */
  budget: number;
  /** Queries captured per layer: the last `queryCount` positions of prompt ++ lookahead. */
  queryCount: number;
  /** Post-RoPE queries of layer `layer`: (numHeads, queryCount, headDim). */
  queries(layer: number): Promise<Float32Array>;
  /**
   * Keys of layer `layer` over all n + L entries: (numKvHeads, n + L, headDim). In a layer-wise prefill
   * (`selectLayer`), keys and queries are valid until the selection's promise settles; copy what must outlive it.
   */
  keys(layer: number): Promise<Float32Array>;
  signal?: AbortSignal;
}

/**
 * KV selection at prefill (stage 3): scorer + budget allocator + selector.
 *
 * Contract (checked by the pipeline): `select` returns, per (layer, KV head), ascending, distinct indices in
 * [0, n − 1). The last prompt token is not kept: the pipeline re-runs it at position n − 1 over the compacted
 * cache to get the first logits, as the paper's reference does. Higher score = keep.
 */
export interface CachePolicyV1 {
  readonly specificationVersion: 'v1';
  readonly type: string;
  /** Capabilities the target backend must offer. */
  readonly requires: readonly CapabilityName[];
  /** Trailing prompt positions whose queries scoring needs (lookahead positions come on top), or 'all'. */
  readonly queryWindow: number | 'all';
  /** Whether this policy wants lookahead tokens (SpecKV, LAQ++) appended to the prefill. */
  readonly usesLookahead: boolean;
  select(context: SelectionContextV1): Promise<KeptIndices>;
  /**
   * Optional, for layer-local policies: the kept indices of one layer (per KV head), reading only
   * `context.queries(layer)` and `context.keys(layer)`, equal to `select(context)[layer]`. With it, a target that
   * offers `prefillSelect` selects each layer right after its attention and never holds every layer's full KV.
   */
  selectLayer?(context: SelectionContextV1, layer: number): Promise<Int32Array[]>;
  toConfig(): PolicyConfig;
}

/** Stage 2: extra query tokens appended to the target prefill to stand for the future answer. */
export interface LookaheadInputV1 extends CallOptions {
  /** Prompt in the target's token ids. */
  inputIds: readonly number[];
  /** Prompt text (used when draft and target tokenizers differ). */
  text: string;
  maxNewTokens: number;
  target: CausalLMV1;
  draft?: CausalLMV1;
  /**
   * Draft tokens an earlier stage already generated from the uncompressed prompt (SpecPC's lookahead), in the
   * target's vocabulary (core's pipeline carries them across as text, `draftTokensForTarget`, when the
   * vocabularies differ). A provider may reuse them instead of running the draft again (SpecKV-PC: one draft
   * run serves both stages).
   */
  draftTokenIds?: readonly number[];
  /**
   * The run's resolved KV budget C per (layer, KV head), window included (core's pipeline fills it). A provider
   * that compresses its own cache while generating (LAQ++'s SnapKV pass) may use it when not configured.
   */
  budget?: number;
  /**
   * Stored KV of the prompt's first tokens (a document cache), for providers that prefill a model on the prompt:
   * `target` in the target's ids (extends `inputIds`), `draft` in the draft's. Reuse them with core's
   * `forwardWithPrefix({ onMismatch: 'full' })`; a provider that ignores them stays correct, only slower.
   */
  prefixes?: PrefixCachesV1;
}

export interface LookaheadResultV1 {
  /** Lookahead tokens in the target's vocabulary. */
  tokenIds: number[];
  text: string;
  /** Tokens the draft generated (0 for target pseudo-lookahead). */
  draftTokens: number;
}

export interface LookaheadProviderV1 {
  readonly specificationVersion: 'v1';
  readonly type: string;
  /** 'draft' when a draft model is required. */
  readonly needs: 'draft' | 'target';
  lookahead(input: LookaheadInputV1): Promise<LookaheadResultV1>;
}

/** Stage 1: prompt tokens -> kept token indices. */
export interface PromptCompressionInputV1 extends CallOptions {
  /** Prompt in the draft's token ids. */
  inputIds: readonly number[];
  text: string;
  /**
   * Tokens to keep (window included), in the draft's tokens; the result has exactly min(budget, n) tokens. (Core's
   * pipeline calibrates it when the target has another tokenizer, whose tokens its own budget counts.)
   */
  budget: number;
  draft?: CausalLMV1;
  /** Draft lookahead tokens to generate for scoring (compressor default when absent). */
  lookaheadTokens?: number;
}

export interface PromptCompressionResultV1 {
  /** Ascending indices into the input prompt. */
  keptIndices: Int32Array;
  inputIds: number[];
  /** Detokenised kept prompt, for text targets. */
  text: string;
  /** Original positions of the kept tokens, for `keepOriginalPositions` with backends taking position ids. */
  positionIds?: Int32Array;
  /** Draft tokens generated while scoring (lookahead); reusable by a later SpecKV stage. */
  draftTokenIds?: number[];
  draftTokens: number;
}

export interface PromptCompressorV1 {
  readonly specificationVersion: 'v1';
  readonly type: string;
  readonly needs: 'draft' | 'none';
  compress(input: PromptCompressionInputV1): Promise<PromptCompressionResultV1>;
  toConfig(): PolicyConfig;
}

/** Stage 4: optional eviction while decoding. */
export interface DecodeStepContextV1 {
  cache: KvCacheV1;
  /** Decode steps done so far. */
  step: number;
  promptLength: number;
}

export interface DecodePolicyV1 {
  readonly specificationVersion: 'v1';
  readonly type: string;
  readonly requires: readonly CapabilityName[];
  /** Entries to keep after this step, or null to keep everything. */
  afterStep(context: DecodeStepContextV1): Promise<KeptIndices | null>;
  toConfig(): PolicyConfig;
}
