import type { CapabilitiesV1 } from './capabilities.js';
import type { CallOptions } from './common.js';
import type { KvCacheV1 } from './kv-cache.js';
import type { TokenizerV1 } from './tokenizer.js';

/** Static facts about a decoder model. */
export interface ModelInfoV1 {
  /** e.g. 'llama', 'qwen2'. */
  architecture: string;
  numLayers: number;
  /** Query heads (Hq). */
  numHeads: number;
  /** Key/value heads (Hkv); Hq is a multiple of Hkv (GQA group G = Hq / Hkv). */
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Largest position id + 1 the model supports. */
  maxPositions: number;
  eosTokenIds: readonly number[];
  bosTokenId?: number;
  /**
   * Sliding-window attention span in tokens (HF `sliding_window`, e.g. Mistral, Gemma 2/3, Qwen with
   * `use_sliding_window`): the layers in `slidingWindowLayers` attend only to the last `slidingWindow` positions.
   * Absent when every layer attends to the whole cache. Cache policies score every cached entry regardless.
   */
  slidingWindow?: number;
  /** Layers that use `slidingWindow` (ascending); absent with `slidingWindow` set means every layer. */
  slidingWindowLayers?: readonly number[];
  /**
   * Multiplier of Q·Kᵀ before the softmax when it is not 1/√headDim (Gemma: `query_pre_attn_scalar`^−½,
   * Granite: `attention_multiplier`). Absent = 1/√headDim. Built-in policies score with 1/√headDim.
   */
  attentionScale?: number;
}

export interface ForwardRequestV1 extends CallOptions {
  /** Tokens to process, appended after `cache`. */
  inputIds: readonly number[] | Int32Array;
  /** Positions of the new tokens. Default: `cache.nextPosition`, `+1`, … (0, 1, … without a cache). */
  positionIds?: readonly number[] | Int32Array;
  /** Past entries to attend to. Left intact: the result carries a new cache; dispose the old one yourself. */
  cache?: KvCacheV1;
  /**
   * Capture post-RoPE query states of the last `w` positions processed by this call (a number), or of every
   * position ('all'). Requires the `queryCapture` / `allQueryCapture` capability.
   */
  captureQueries?: number | 'all';
  /** Which logits to return: the last position only (default) or every position of this call. */
  logits?: 'last' | 'all';
  /** Process the input in chunks of this many tokens (bounds activation memory on long prompts). */
  chunkSize?: number;
}

export interface ForwardResultV1 {
  /** (1, vocabSize) for `logits: 'last'`, else (numInputTokens, vocabSize). */
  logits: Float32Array;
  /** The cache after this call: the request's cache followed by the new entries. */
  cache: KvCacheV1;
  /** Per layer, post-RoPE queries of the captured positions: (numHeads, w, headDim). */
  queries?: Float32Array[];
}

/**
 * One layer of a layer-wise prefill, handed to the selection right after the layer's attention ran. `keys` and
 * `queries` are lent for the call: the model may free them as soon as the promise `selectLayer` returned settles
 * (they read as empty afterwards), so a selection copies what it must keep.
 */
export interface LayerSelectionInputV1 {
  layer: number;
  /** Post-RoPE keys of this layer over every prefilled entry: (numKvHeads, n, headDim). */
  keys: Float32Array;
  /** Post-RoPE queries of this layer's captured window: (numHeads, captureQueries, headDim). */
  queries: Float32Array;
}

/** A prefill from an empty cache that keeps, per layer, only the entries `selectLayer` picks. */
export interface LayerwisePrefillRequestV1 extends CallOptions {
  inputIds: readonly number[] | Int32Array;
  /** Default 0, 1, …. */
  positionIds?: readonly number[] | Int32Array;
  /** Trailing positions whose queries each layer's selection receives (0: none). */
  captureQueries: number;
  chunkSize?: number;
  /** Kept indices of `input.layer` per KV head: ascending, distinct, in [0, n). Called once per layer, in order. */
  selectLayer(input: LayerSelectionInputV1): Promise<readonly Int32Array[]>;
}

export interface LayerwisePrefillResultV1 {
  /** Only the kept entries, at their original positions (continues after the largest position kept). */
  cache: KvCacheV1;
}

/**
 * An in-process causal LM: the target or the draft. Implementations decide where the work runs (worker
 * thread, native code); calls are async and must keep the model usable after an error or an abort.
 */
export interface CausalLMV1 {
  readonly specificationVersion: 'v1';
  /** Human-readable name (folder name, model id). */
  readonly name: string;
  readonly info: ModelInfoV1;
  readonly capabilities: CapabilitiesV1;
  readonly tokenizer: TokenizerV1;
  forward(request: ForwardRequestV1): Promise<ForwardResultV1>;
  /**
   * Optional: prefill layer by layer with the selection in the loop, so only one layer's full KV exists at a
   * time (the memory the paper's reference has when it compresses inside each layer's forward). Absent or
   * undefined when the backend cannot (the pipeline then prefills whole and selects afterwards).
   */
  prefillSelect?(request: LayerwisePrefillRequestV1): Promise<LayerwisePrefillResultV1>;
  dispose(): Promise<void>;
}

/** Chat or plain completion request for a text-only target. */
export interface TextCompletionRequestV1 extends CallOptions {
  prompt: string;
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: readonly string[];
}

export interface TextCompletionResultV1 {
  text: string;
  finishReason: FinishReason;
  usage: { promptTokens?: number; completionTokens?: number };
}

/**
 * What a text stream may return when it ends: the async iterator's final `{ done: true, value }` (an async
 * generator's `return` value). Optional: a stream that returns nothing still satisfies `TextTargetV1`.
 */
export interface TextStreamEndV1 {
  /** Why the remote stopped (e.g. OpenAI's `finish_reason`: 'stop' or 'length'). */
  finishReason: FinishReason;
  usage?: { promptTokens?: number; completionTokens?: number };
}

/**
 * A target reachable only as text (e.g. an OpenAI-compatible endpoint). Offers no KV capabilities, so only
 * prompt compression applies in front of it.
 */
export interface TextTargetV1 {
  readonly specificationVersion: 'v1';
  readonly kind: 'text';
  readonly name: string;
  readonly capabilities: CapabilitiesV1;
  complete(request: TextCompletionRequestV1): Promise<TextCompletionResultV1>;
  /**
   * Text pieces as they arrive. Should end by returning a `TextStreamEndV1` (the remote's finish reason and
   * usage); a stream that returns nothing leaves the pipeline to estimate the finish reason.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: an async generator without a return statement returns void; it must stay assignable.
  stream(request: TextCompletionRequestV1): AsyncIterable<string, TextStreamEndV1 | undefined | void>;
}

export type FinishReason = 'stop' | 'length' | 'abort';
