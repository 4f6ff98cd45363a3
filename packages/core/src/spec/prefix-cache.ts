import type { KvCacheV1 } from './kv-cache.js';

/**
 * A model's KV for the first tokens of a prompt, computed once and reused by later calls ("prefill a document
 * once, ask many questions"). The prompt of a call that uses it must start with `inputIds`; only the tokens
 * after them are prefilled.
 *
 * Owned by whoever made it (e.g. `@draft/runtime`'s `openDocumentCache`): calls read `cache` (forward leaves it
 * intact) and never dispose it.
 */
export interface PrefixCacheV1 {
  /** Token ids of the prefix, in the model's vocabulary, at positions 0 … k − 1. */
  readonly inputIds: readonly number[];
  /** KV of exactly those k tokens (every layer and KV head holds k entries; `nextPosition` = k). */
  readonly cache: KvCacheV1;
  /**
   * Post-RoPE queries of the last `queryCount` prefix positions, per layer: (numHeads, queryCount, headDim).
   * Cache policies whose query window reaches back into the prefix (a question shorter than the window, H2O's
   * 'all') read them here instead of re-running the prefix. Absent = none stored (`queryCount` 0).
   */
  readonly queries?: readonly Float32Array[];
  /** Prefix positions whose queries `queries` holds (0 ≤ queryCount ≤ k). */
  readonly queryCount: number;
}

/** Prefixes of one pipeline call: the target's, and the draft's for lookahead providers that run the draft. */
export interface PrefixCachesV1 {
  target?: PrefixCacheV1;
  draft?: PrefixCacheV1;
}
