import {
  AbortError,
  type CallbackIterable,
  type CallOptions,
  type CapabilitiesV1,
  type CausalLMV1,
  type ChatMessage,
  callbackToAsyncIterable,
  type DecodeLoopResult,
  type DecodePolicyV1,
  DisposedError,
  DraftError,
  decodeLoop,
  type ForwardRequestV1,
  type ForwardResultV1,
  type GenerationOptionsV1,
  type GenerationResultV1,
  InvalidArgumentError,
  type LayerwisePrefillRequestV1,
  type ModelInfoV1,
  PromptTooLongError,
  registeredDecodeEngine,
  UnsupportedCapabilityError,
  validateSamplerOptions,
} from '@draft/core';
import { basename, join, resolve } from 'node:path';
import { type CacheContext, OrtKvCache } from './kv-cache.js';
import type { KvPoolStats } from './kv-pool.js';
import { readModelFolder } from './model-folder.js';
import { type ModelFileOptions, validateDtype } from './model-files.js';
import { recordModelSource } from './model-source.js';
import { requestHeapTrim } from './heap-trim.js';
import { HfTokenizer } from './tokenizer.js';
import { releaseBytesNow } from './release-bytes.js';
import { WorkerClient } from './worker-client.js';
import type { DecodeBatchStats, ForwardResult, InitResult, SessionMemoryStats } from './worker-protocol.js';

/** Options of `loadModel`; `dtype` and `modelFileName` pick the ONNX file as transformers.js does. */
export interface LoadModelOptions extends CallOptions, ModelFileOptions {
  /** ORT intra-op threads (default: ORT's choice, one per physical core). Inter-op is always 1. */
  threads?: number;
  /**
   * Extra graph tensors to expose for debugging (e.g. a Softmax output); returned by `forward` in `debug`
   * when also named in the request's `debugOutputs`.
   */
  debugOutputs?: string[];
  /**
   * Let caches keep a different number of entries per layer and KV head (AdaKV, PyramidKV): the graph gets a
   * per-(layer, head) key bias before each Softmax; shorter heads are padded to the longest and the padding is
   * masked. Decomposed attention only (GroupQueryAttention ignores masks inside the past): an
   * UnsupportedCapabilityError otherwise, unless `prefillEngine` is 'native', which packs such caches itself
   * (any attention style; the option then changes nothing). Costs one elementwise Add over the attention scores
   * per layer, and memory of the padding. Default false.
   */
  raggedCache?: boolean;
  /**
   * Notices that do not stop the load: an unknown `model_type` read as Llama-compatible, a sliding window or
   * attention soft-capping the cache policies do not model. Default: `console.warn`.
   */
  onWarning?: (message: string) => void;
  /**
   * Concurrent decode steps (e.g. `Promise.all` over several `generate` calls, or a server's parallel requests)
   * of up to this many sequences run as one ORT batch: caches of different lengths and methods are padded to
   * the longest and the padding masked, so each sequence gets the tokens it would get alone. Decomposed
   * attention only (`graph.maxDecodeBatch` says what the loaded graph does); 1 turns batching off. Default 8.
   */
  maxDecodeBatch?: number;
  /**
   * Run the graph as one ORT session per layer (split at load, weights not duplicated): every call works as
   * before, and `prefillSelect` can prefill layer by layer, selecting each layer's entries right after its
   * attention, so a compressed prefill never holds more than one layer's full KV (core's pipeline uses it for
   * layer-local policies). Costs one session run per layer per step. UnsupportedCapabilityError for a graph
   * that cannot be split at its layers. Default false.
   */
  layerwise?: boolean;
  /**
   * Decode steps keep the cache in place: the past is fed at its buffer's capacity with the free columns
   * masked, only the new K/V rows are fetched and written into the next free column, so no step copies the
   * cache out of ORT. Decomposed attention with an attention mask (`graph.inPlaceDecode` says whether the
   * loaded graph does it). Default true; false fetches whole presents every step (the previous engine).
   */
  inPlaceDecode?: boolean;
  /**
   * Who runs single-token decode steps. 'ort' (default): the ONNX graph. 'native': the native decode engine
   * registered with @draft/core (`import '@draft/cuda/register'` registers @draft/cuda's CPU decoder): one fused
   * step over the graph's own weights (found by their Hugging Face names, else by their place in the graph) and the same in-place caches, a few
   * times faster than ORT on small models; prefill, captures and every cache operation stay in ORT. At load
   * the worker runs a short prompt through both and refuses (UnsupportedCapabilityError, capability
   * 'nativeDecode') a graph whose logits differ, as it does graphs the decoder does not implement (fused
   * sliding windows, partial RoPE, non-Llama maths). Logits match ORT's to float rounding, so greedy tokens can part
   * at exact near-ties. An fp16 export (`dtype: 'fp16'`: float16 weights and KV) decodes with its matrices read as
   * half bits (half the bytes per step) and float32 activations, so its logits are closer to the float32 model's
   * than ORT's fp16 run is (checked at load within 5e-2 of the scale; `graph.nativeWeightDtype` says 'float16').
   * `graph.decodeEngine` says which one runs.
   */
  decodeEngine?: 'ort' | 'native';
  /**
   * Who runs prefills (every multi-token forward, and `prefillSelect`). 'ort' (default): the ONNX graph.
   * 'native' (needs `decodeEngine: 'native'` and an engine with `prefill`, as @draft/cuda's has): the same
   * native engine runs the tokens through one layer at a time (blocked attention, no score matrix, no graph
   * arena), checked against ORT at load like decode; the ORT session is then released, so the model holds
   * its weights once, and is made again only for a request that needs it (`debugOutputs`). `prefillSelect`
   * becomes available (layer-wise selection with one layer's full KV at most), and caches with different counts
   * per KV head (AdaKV, PyramidKV) hold exactly their entries, on decomposed and fused-attention graphs alike,
   * without `raggedCache`. `graph.prefillEngine` says which one runs.
   */
  prefillEngine?: 'ort' | 'native';
  /**
   * Element type the KV caches are kept in. 'float32' (default): the graph's. 'float16' (needs `decodeEngine`
   * and `prefillEngine` 'native', and an engine whose decoder honours `kvDtype`, as @draft/cuda's does): every
   * cache holds IEEE half bits, so its bytes (`byteSize()`, the pool's `liveBytes`, what a decode step reads)
   * halve; new K/V are rounded to nearest even when written, and attention (a prefill's own included) reads the
   * stored values in fp32. Logits then differ from the float32 graph's by the rounding (about 1e-3 relative), so
   * greedy tokens can part where two candidates are that close. `readKeys`/`readValues` give float32 copies;
   * `exportKv` gives half bits (`kvType` 'float16'). Requests that need the ORT graph with a cache
   * (`debugOutputs`) are refused.
   */
  kvStorage?: 'float32' | 'float16';
  /**
   * Release the ORT session's memory after the model has had nothing to run for this many milliseconds: the
   * session is released and created again from the same graph (weights re-read from the model file), because
   * ORT's CPU arena keeps the largest activations it ever needed and onnxruntime-node cannot shrink it. Caches
   * are kept. Meant for a draft: it runs once per request and then idles through the target's prefill, holding
   * its prefill's peak. Each release costs a session creation in the worker's thread, and the first run after
   * it ORT's warm-up; requests that arrive meanwhile wait. `sessionMemoryStats()` counts releases. Default:
   * never.
   */
  releaseMemoryWhenIdleMs?: number;
  /**
   * Return the native memory the worker frees to the OS: after the session is created (ORT parses the model
   * and copies the weights, then frees ~weights' size), after a prefill (≥ 64 tokens) and after an idle
   * release, a registered heap trimmer (@draft/core's `registerHeapTrimmer`; `import '@draft/cuda/register'`
   * registers `malloc_trim` on glibc) is asked to give freed pages back. Without it glibc keeps them, and a
   * draft's freed pages stay resident through the target's prefill. A no-op when no trimmer is registered.
   * `sessionMemoryStats().heapTrims` counts the trims. Default true.
   */
  trimHeap?: boolean;
  /**
   * Score bytes one prefill chunk may materialise per layer when a call names no `chunkSize` (default
   * `PREFILL_SCORE_BUDGET_BYTES`, 32 MiB): long prompts get shorter chunks. ORT's arena keeps the largest
   * activations a session ever needed, so a smaller budget lowers the model's resident peak at some prefill
   * speed. Meant for a draft, whose prefill peak would otherwise sit under the target's (8 MiB on the perf draft
   * at 8K: see README's engines section).
   */
  prefillScoreBudgetBytes?: number;
}

/** A forward request with runtime extras. */
export interface OrtForwardRequest extends ForwardRequestV1 {
  /** Names from `LoadModelOptions.debugOutputs` to return (last chunk only). */
  debugOutputs?: string[];
}

export interface OrtForwardResult extends ForwardResultV1 {
  cache: OrtKvCache;
  debug?: Record<string, { data: Float32Array; dims: number[] }>;
}

/** A prompt: text (tokenised with special tokens), chat messages (chat template) or token ids. */
export type PromptInput = string | { messages: readonly ChatMessage[] } | { inputIds: readonly number[] };

/** Generation options of the runtime: the spec's options plus chunked prefill and a decode-time policy. */
export interface GenerateOptions extends GenerationOptionsV1 {
  /** Prefill in chunks of this many tokens (default `defaultPrefillChunk`: ≤ 512, shorter for long prompts). */
  chunkSize?: number;
  /** Optional eviction while decoding. */
  decodePolicy?: DecodePolicyV1;
}

/**
 * Largest prefill chunk used when a call names none. The decomposed attention materialises (heads × chunk ×
 * past) scores per layer; 512 was the fastest of 256 / 512 / 1024 / whole on the perf model at 2K–4K (the
 * causal upper triangle past each chunk is never computed). See docs/decisions/2026-12-05-engine-memory.md.
 */
export const DEFAULT_PREFILL_CHUNK = 512;

/** Score bytes one chunk may materialise per layer when the call names no chunk size. */
export const PREFILL_SCORE_BUDGET_BYTES = 32 * 2 ** 20;

/**
 * The chunk a prefill of `tokens` after `past` cached entries uses by default: the largest multiple of 64 up
 * to `DEFAULT_PREFILL_CHUNK` whose float32 scores (heads × chunk × (past + tokens)) fit the budget, at least
 * 64. Long prompts get shorter chunks, so activations stay bounded as the context grows (at 8K on the perf
 * model: 128 tokens, peak RSS 1.5 → 1.0 GB at the same prefill time; decision record 2026-12-06).
 */
export function defaultPrefillChunk(tokens: number, past: number, numHeads: number, budgetBytes = PREFILL_SCORE_BUDGET_BYTES): number {
  const perToken = numHeads * (past + tokens) * 4;
  const fits = Math.floor(budgetBytes / perToken / 64) * 64;
  return Math.max(64, Math.min(DEFAULT_PREFILL_CHUNK, fits));
}

/** `stream()` result: text pieces, plus the final result once iteration ends. */
export type GenerationStream = CallbackIterable<string, GenerationResultV1>;

const CAPABILITIES: CapabilitiesV1 = Object.freeze({
  tokenIds: true,
  queryCapture: true,
  allQueryCapture: true,
  kvSelection: true,
  raggedKvHeads: false,
  raggedLayers: false,
  positionIds: true,
});

const asyncDispose: symbol = (Symbol as unknown as { asyncDispose?: symbol }).asyncDispose ?? Symbol.for('Symbol.asyncDispose');

function isAbort(error: unknown): error is AbortError {
  return (error as { code?: string })?.code === 'ABORTED';
}

/**
 * A decoder ONNX model (Llama, Qwen2, …) run by onnxruntime-node in a worker thread, with query capture and
 * a position-aware KV cache. Create with `loadModel(dir)`.
 */
export class OrtCausalLM implements CausalLMV1 {
  readonly specificationVersion = 'v1' as const;
  readonly capabilities: CapabilitiesV1;
  private disposed = false;
  private readonly cacheContext: CacheContext;

  /** @internal use `loadModel` */
  constructor(
    readonly name: string,
    readonly info: ModelInfoV1,
    readonly tokenizer: HfTokenizer,
    /** How the graph was instrumented (its attention pattern, the captured tensor per layer) and its KV/logits types. */
    readonly graph: InitResult,
    private readonly client: WorkerClient,
    ragged: boolean,
    private readonly settings: {
      /** Heap trims this model's worker asked for that returned memory (`LoadModelOptions.trimHeap`). */
      heapTrims: { count: number };
      /** `LoadModelOptions.prefillScoreBudgetBytes`. */
      prefillScoreBudgetBytes: number;
    } = { heapTrims: { count: 0 }, prefillScoreBudgetBytes: PREFILL_SCORE_BUDGET_BYTES },
  ) {
    this.capabilities = Object.freeze({ ...CAPABILITIES, raggedKvHeads: ragged, raggedLayers: ragged });
    if (graph.layerwise) this.prefillSelect = (request) => this.runPrefillSelect(request);
    this.cacheContext = {
      client,
      numLayers: info.numLayers,
      numKvHeads: info.numKvHeads,
      headDim: info.headDim,
      owner: this,
      ragged,
      bytesPerElement: graph.kvType === 'float16' ? 2 : 4,
    };
  }

  private check(): void {
    if (this.disposed) throw new DisposedError('OrtCausalLM');
  }

  /** @internal what this model's caches share (document caches export and import tensors through it). */
  get kvContext(): CacheContext {
    this.check();
    return this.cacheContext;
  }

  /**
   * Runs `inputIds` after `cache` (left intact; the result carries a new cache). Positions default to
   * `cache.nextPosition`, +1, …. See ForwardRequestV1. Throws PromptTooLongError past `info.maxPositions`,
   * InvalidArgumentError on bad input, AbortError when `signal` fires (checked between chunks).
   */
  async forward(request: OrtForwardRequest): Promise<OrtForwardResult> {
    this.check();
    const { inputIds, cache } = request;
    if (request.signal?.aborted) throw new AbortError({ reason: request.signal.reason });
    if (!inputIds || inputIds.length === 0) throw new InvalidArgumentError({ argument: 'inputIds', value: inputIds, expected: 'a non-empty list of token ids' });
    if (cache !== undefined && (!(cache instanceof OrtKvCache) || cache.owner !== this)) {
      throw new InvalidArgumentError({ argument: 'cache', value: '[foreign cache]', expected: 'a cache produced by this model' });
    }
    if (cache?.isDisposed) throw new DisposedError('OrtKvCache');
    const { ids, positions } = this.checkTokens(inputIds, request.positionIds, cache?.nextPosition ?? 0);
    const S = ids.length;
    let capture = 0;
    if (request.captureQueries === 'all') capture = S;
    else if (request.captureQueries !== undefined && request.captureQueries !== 0) {
      if (!Number.isInteger(request.captureQueries) || request.captureQueries < 0 || request.captureQueries > S) {
        throw new InvalidArgumentError({ argument: 'captureQueries', value: request.captureQueries, expected: `'all' or an integer in [0, ${S}] (tokens in this call)` });
      }
      capture = request.captureQueries;
    }
    const logits = request.logits ?? 'last';
    if (logits !== 'last' && logits !== 'all') throw new InvalidArgumentError({ argument: 'logits', value: logits, expected: "'last' | 'all'" });
    const chunkSize = request.chunkSize ?? defaultPrefillChunk(S, cache?.length ?? 0, this.info.numHeads, this.settings.prefillScoreBudgetBytes);
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new InvalidArgumentError({ argument: 'chunkSize', value: chunkSize, expected: 'an integer ≥ 1' });
    for (const name of request.debugOutputs ?? []) {
      if (!this.graph.outputNames.includes(name)) throw new InvalidArgumentError({ argument: 'debugOutputs', value: name, expected: 'a name given to loadModel({ debugOutputs })' });
    }

    let requestId = 0;
    const onAbort = () => this.client.send({ type: 'cancel', target: requestId });
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.client.request<ForwardResult>(
        {
          type: 'forward',
          cache: cache?.handle ?? null,
          inputIds: ids,
          positionIds: positions,
          captureQueries: capture,
          logits,
          chunkSize,
          debugOutputs: request.debugOutputs,
          progress: request.onProgress !== undefined,
        },
        {
          onId: (id) => {
            requestId = id;
          },
          onProgress: (p) => request.onProgress?.({ stage: p.stage, completed: p.completed, total: p.total }),
        },
      );
      const next = cache ? cache.appended(result.cache, positions, result.packed === true) : OrtKvCache.fresh(this.cacheContext, result.cache, positions);
      return { logits: result.logits, cache: next, ...(result.queries ? { queries: result.queries } : {}), ...(result.debug ? { debug: result.debug } : {}) };
    } catch (error) {
      if (isAbort(error)) throw new AbortError({ reason: request.signal?.reason });
      throw error;
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Token ids and positions of a call, checked (vocabulary, positions ≥ 0 and below `maxPositions`). */
  private checkTokens(inputIds: readonly number[] | Int32Array, positionIds: readonly number[] | Int32Array | undefined, start: number): { ids: Int32Array; positions: Int32Array } {
    if (!inputIds || inputIds.length === 0) throw new InvalidArgumentError({ argument: 'inputIds', value: inputIds, expected: 'a non-empty list of token ids' });
    const ids = Int32Array.from(inputIds);
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(inputIds[i]) || ids[i] < 0 || ids[i] >= this.info.vocabSize) {
        throw new InvalidArgumentError({ argument: `inputIds[${i}]`, value: inputIds[i], expected: `an integer in [0, ${this.info.vocabSize})` });
      }
    }
    const S = ids.length;
    let positions: Int32Array;
    if (positionIds !== undefined) {
      if (positionIds.length !== S) throw new InvalidArgumentError({ argument: 'positionIds.length', value: positionIds.length, expected: `${S} (inputIds.length)` });
      positions = Int32Array.from(positionIds);
      for (let i = 0; i < S; i++) {
        if (!Number.isInteger(positionIds[i]) || positions[i] < 0) {
          throw new InvalidArgumentError({ argument: `positionIds[${i}]`, value: positionIds[i], expected: 'an integer ≥ 0' });
        }
      }
    } else positions = Int32Array.from({ length: S }, (_, i) => start + i);
    let maxPosition = 0;
    for (const p of positions) if (p > maxPosition) maxPosition = p;
    if (maxPosition >= this.info.maxPositions) throw new PromptTooLongError({ promptTokens: maxPosition + 1, maxPositions: this.info.maxPositions });
    return { ids, positions };
  }

  /**
   * Prefill from an empty cache layer by layer (models loaded with `layerwise: true`), calling
   * `selectLayer` with each layer's keys and window queries right after that layer ran over every chunk, and
   * keeping only the entries it returns: at most one layer's full KV exists at a time. Undefined on models
   * loaded without `layerwise` (core's pipeline then prefills whole). Throws like `forward`; a `selectLayer`
   * error aborts the prefill (nothing is kept) and is rethrown.
   */
  readonly prefillSelect?: (request: LayerwisePrefillRequestV1) => Promise<{ cache: OrtKvCache }>;

  private async runPrefillSelect(request: LayerwisePrefillRequestV1): Promise<{ cache: OrtKvCache }> {
    this.check();
    if (request.signal?.aborted) throw new AbortError({ reason: request.signal.reason });
    const { ids, positions } = this.checkTokens(request.inputIds, request.positionIds, 0);
    const S = ids.length;
    if (!Number.isInteger(request.captureQueries) || request.captureQueries < 0 || request.captureQueries > S) {
      throw new InvalidArgumentError({ argument: 'captureQueries', value: request.captureQueries, expected: `an integer in [0, ${S}] (tokens in this call)` });
    }
    const chunkSize = request.chunkSize ?? defaultPrefillChunk(S, 0, this.info.numHeads, this.settings.prefillScoreBudgetBytes);
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new InvalidArgumentError({ argument: 'chunkSize', value: chunkSize, expected: 'an integer ≥ 1' });
    const { numLayers, numKvHeads } = this.info;
    const keptPositions: Int32Array[][] = [];
    let requestId = 0;
    let selectionError: unknown;
    const onAbort = () => this.client.send({ type: 'cancel', target: requestId });
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.client.request<{ cache: number; packed?: boolean }>(
        { type: 'prefillSelect', inputIds: ids, positionIds: positions, captureQueries: request.captureQueries, chunkSize },
        {
          onId: (id) => {
            requestId = id;
          },
          onProgress: (p) => request.onProgress?.({ stage: p.stage, completed: p.completed, total: p.total }),
          onLayer: (reply) => {
            void (async () => {
              try {
                const kept = await request.selectLayer({ layer: reply.layer, keys: reply.keys, queries: reply.queries });
                if (!Array.isArray(kept) || kept.length !== numKvHeads) {
                  throw new InvalidArgumentError({ argument: `selectLayer(${reply.layer})`, value: kept, expected: `${numKvHeads} Int32Arrays (one per KV head)` });
                }
                const heads = kept.map((idx, h) => {
                  if (!(idx instanceof Int32Array)) throw new InvalidArgumentError({ argument: `selectLayer(${reply.layer})[${h}]`, value: idx, expected: 'an Int32Array of kept indices' });
                  for (let j = 0; j < idx.length; j++) {
                    if (!(idx[j] >= 0 && idx[j] < S) || (j > 0 && idx[j] <= idx[j - 1])) {
                      throw new InvalidArgumentError({ argument: `selectLayer(${reply.layer})[${h}][${j}]`, value: idx[j], expected: `ascending distinct indices in [0, ${S})` });
                    }
                  }
                  return Int32Array.from(idx);
                });
                keptPositions[reply.layer] = heads.map((idx) => idx.map((i) => positions[i]));
                this.client.send({ type: 'layerKept', target: requestId, layer: reply.layer, kept: heads });
              } catch (error) {
                selectionError ??= error;
                this.client.send({ type: 'cancel', target: requestId });
              } finally {
                // Lent for the call (LayerSelectionInputV1): 4 MiB of keys per layer at 8K on the perf target would
                // otherwise wait for this thread's next GC, and pile up across layers and requests.
                releaseBytesNow(reply.keys);
                releaseBytesNow(reply.queries);
              }
            })();
          },
        },
      );
      if (keptPositions.length !== numLayers) throw new DraftError('INTERNAL', `prefillSelect returned after ${keptPositions.length} of ${numLayers} layers.`);
      return { cache: OrtKvCache.selected(this.cacheContext, result.cache, keptPositions, result.packed === true) };
    } catch (error) {
      if (selectionError) throw selectionError;
      if (isAbort(error)) throw new AbortError({ reason: request.signal?.reason });
      throw error;
    } finally {
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Token ids of a prompt: text is encoded with special tokens; messages go through the chat template. */
  encodePrompt(prompt: PromptInput): number[] {
    if (typeof prompt === 'string') return this.tokenizer.encode(prompt);
    if (prompt && 'inputIds' in prompt) return Array.from(prompt.inputIds);
    if (prompt && 'messages' in prompt) {
      if (!this.tokenizer.applyChatTemplate) {
        throw new UnsupportedCapabilityError({ capability: 'chatTemplate', component: 'OrtCausalLM.generate', backend: this.name, message: `${this.name} has no chat_template in tokenizer_config.json.` });
      }
      const text = this.tokenizer.applyChatTemplate(prompt.messages, { addGenerationPrompt: true });
      return this.tokenizer.encode(text, { addSpecialTokens: false });
    }
    throw new InvalidArgumentError({ argument: 'prompt', value: prompt, expected: 'a string, { messages } or { inputIds }' });
  }

  /**
   * Prefills the prompt (optionally in chunks) and decodes with `decodeLoop`. On abort it throws an
   * `AbortError` whose `partial` is a `GenerationResultV1` with `finishReason: 'abort'` and what was generated
   * so far. The model stays usable after any error or abort.
   */
  generate(prompt: PromptInput, options: GenerateOptions): Promise<GenerationResultV1> {
    return this.run(prompt, options);
  }

  /**
   * Streams text pieces as they are generated (pieces concatenate to the final `text`; text that may begin a
   * stop string is held back). `result` resolves to the final GenerationResultV1.
   */
  stream(prompt: PromptInput, options: GenerateOptions): GenerationStream {
    return callbackToAsyncIterable<string, GenerationResultV1>((push) => this.run(prompt, options, push));
  }

  private async run(prompt: PromptInput, options: GenerateOptions, onText?: (piece: string) => void): Promise<GenerationResultV1> {
    this.check();
    const started = performance.now();
    if (!options || !(Number.isInteger(options.maxNewTokens) && options.maxNewTokens >= 0)) {
      throw new InvalidArgumentError({ argument: 'maxNewTokens', value: options?.maxNewTokens, expected: 'an integer ≥ 0' });
    }
    validateSamplerOptions(options);
    if (options.chunkSize !== undefined && !(Number.isInteger(options.chunkSize) && options.chunkSize >= 1)) {
      throw new InvalidArgumentError({ argument: 'chunkSize', value: options.chunkSize, expected: 'an integer ≥ 1' });
    }
    const ids = this.encodePrompt(prompt);
    const n = ids.length;
    if (n === 0) throw new InvalidArgumentError({ argument: 'prompt', value: prompt, expected: 'at least one token' });
    if (n > this.info.maxPositions) throw new PromptTooLongError({ promptTokens: n, maxPositions: this.info.maxPositions });

    let prefillMs = 0;
    let ttftMs: number | undefined;
    let kvAfterPrefill = 0;
    const build = (decoded: Pick<DecodeLoopResult, 'tokens' | 'text' | 'finishReason' | 'decodeMs'>, finalBytes: number): GenerationResultV1 => {
      const totalMs = performance.now() - started;
      return {
        text: decoded.text,
        tokens: decoded.tokens,
        finishReason: decoded.finishReason,
        usage: {
          promptTokens: n,
          compressedPromptTokens: n,
          keptKvTokens: Array.from({ length: this.info.numLayers }, () => new Array<number>(this.info.numKvHeads).fill(kvAfterPrefill > 0 ? n : 0)),
          completionTokens: decoded.tokens.length,
          draftTokens: 0,
        },
        timings: {
          compressMs: 0,
          draftMs: 0,
          prefillMs,
          selectMs: 0,
          decodeMs: decoded.decodeMs,
          ttftMs: ttftMs ?? totalMs,
          totalMs,
          decodeTokensPerSecond: decoded.decodeMs > 0 ? decoded.tokens.length / (decoded.decodeMs / 1000) : 0,
        },
        kvBytes: { afterPrefill: kvAfterPrefill, final: finalBytes },
      };
    };

    let prefill: OrtForwardResult;
    try {
      prefill = await this.forward({ inputIds: ids, chunkSize: options.chunkSize, signal: options.signal, onProgress: options.onProgress });
    } catch (error) {
      if (isAbort(error)) throw new AbortError({ reason: options.signal?.reason, partial: build({ tokens: [], text: '', finishReason: 'abort', decodeMs: 0 }, 0) });
      throw error;
    }
    prefillMs = performance.now() - started;
    kvAfterPrefill = prefill.cache.byteSize();
    const userOnToken = options.onToken;
    const onToken = (token: { id: number; text: string }) => {
      ttftMs ??= performance.now() - started;
      userOnToken?.(token);
    };
    let finalCache: OrtKvCache | undefined;
    try {
      const decoded = await decodeLoop({
        model: this,
        cache: prefill.cache,
        firstLogits: prefill.logits,
        generation: { ...options, onToken },
        decodePolicy: options.decodePolicy,
        promptLength: n,
        onText,
      });
      finalCache = decoded.cache as OrtKvCache;
      return build(decoded, finalCache.byteSize());
    } catch (error) {
      if (isAbort(error) && (error as AbortError).partial) {
        const partial = (error as AbortError).partial as DecodeLoopResult;
        finalCache = partial.cache as OrtKvCache;
        throw new AbortError({ reason: options.signal?.reason, partial: build(partial, finalCache.byteSize()) });
      }
      throw error;
    } finally {
      if (finalCache && finalCache !== prefill.cache) finalCache.dispose();
      prefill.cache.dispose();
    }
  }

  /**
   * Counters of the worker's KV allocator: bytes of KV arrays held by caches and by forward calls in flight,
   * their peak (since load or the last `resetPeak`), and freed bytes kept for reuse. Measured by the allocator,
   * not RSS: the basis of the KV-memory tests and of `draft bench perf`'s KV peak.
   */
  async kvMemoryStats(options: { resetPeak?: boolean } = {}): Promise<KvPoolStats> {
    this.check();
    return this.client.request<KvPoolStats>({ type: 'kvStats', resetPeak: options.resetPeak ?? false });
  }

  /**
   * How much decoding ran batched: batches of two or more concurrent steps and the rows they carried since
   * load (mean batch = rows / batches), with the graph's `maxDecodeBatch`.
   */
  async decodeBatchStats(): Promise<DecodeBatchStats> {
    this.check();
    return this.client.request<DecodeBatchStats>({ type: 'batchStats' });
  }

  /** Idle releases of the ORT session (`LoadModelOptions.releaseMemoryWhenIdleMs`) and heap trims since load. */
  async sessionMemoryStats(): Promise<SessionMemoryStats> {
    this.check();
    const worker = await this.client.request<Omit<SessionMemoryStats, 'heapTrims'>>({ type: 'sessionStats' });
    return { ...worker, heapTrims: this.settings.heapTrims.count };
  }

  /** Terminates the worker (all caches of this model become unusable). Later calls throw DisposedError. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.client.terminate();
  }

  [asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** What the worker needs to open a native decoder, from the folder the main thread already read. */
function nativeDecodeRequest(engine: { name: string; module: string }, folder: ReturnType<typeof readModelFolder>) {
  const eps = folder.config.rms_norm_eps;
  return {
    name: engine.name,
    module: engine.module,
    modelType: folder.architecture.modelType,
    ...(typeof eps === 'number' ? { rmsNormEps: eps } : {}),
    ...(folder.info.slidingWindow !== undefined ? { slidingWindow: folder.info.slidingWindow } : {}),
  };
}

/**
 * Loads a decoder folder in the Hugging Face / transformers.js layout (config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, onnx/model<dtype suffix>.onnx and its external data, if any),
 * instruments its graph for query capture and starts its ORT session in a worker thread. Weights in external
 * data files are read by ORT only.
 *
 * An unknown `model_type` is read as Llama-compatible and reported through `onWarning`; the graph decides.
 * Throws InvalidArgumentError (bad options, unknown dtype), ModelLayoutError (missing/malformed files,
 * missing or truncated external data, a graph whose KV inputs do not match config.json, bad config fields),
 * GraphPatternError (no recognisable attention), UnsupportedCapabilityError (a graph that ignores
 * position_ids), AbortError (signal).
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<OrtCausalLM> {
  const { signal, onProgress } = options;
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
    throw new InvalidArgumentError({ argument: 'threads', value: options.threads, expected: 'an integer ≥ 1' });
  }
  validateDtype(options.dtype);
  if (options.maxDecodeBatch !== undefined && !(Number.isInteger(options.maxDecodeBatch) && options.maxDecodeBatch >= 1 && options.maxDecodeBatch <= 256)) {
    throw new InvalidArgumentError({ argument: 'maxDecodeBatch', value: options.maxDecodeBatch, expected: 'an integer in [1, 256]' });
  }
  const budget = options.prefillScoreBudgetBytes;
  if (budget !== undefined && !(Number.isInteger(budget) && budget >= 1)) {
    throw new InvalidArgumentError({ argument: 'prefillScoreBudgetBytes', value: budget, expected: 'an integer number of bytes ≥ 1 (chunks never go below 64 tokens)' });
  }
  const idleMs = options.releaseMemoryWhenIdleMs;
  if (idleMs !== undefined && !(Number.isInteger(idleMs) && idleMs >= 0 && idleMs <= 2 ** 31 - 1)) {
    throw new InvalidArgumentError({ argument: 'releaseMemoryWhenIdleMs', value: idleMs, expected: 'an integer number of milliseconds in [0, 2147483647], or undefined (never)' });
  }
  if (options.decodeEngine !== undefined && options.decodeEngine !== 'ort' && options.decodeEngine !== 'native') {
    throw new InvalidArgumentError({ argument: 'decodeEngine', value: options.decodeEngine, expected: "'ort' or 'native'" });
  }
  if (options.prefillEngine !== undefined && options.prefillEngine !== 'ort' && options.prefillEngine !== 'native') {
    throw new InvalidArgumentError({ argument: 'prefillEngine', value: options.prefillEngine, expected: "'ort' or 'native'" });
  }
  if (options.prefillEngine === 'native' && options.decodeEngine !== 'native') {
    throw new InvalidArgumentError({ argument: 'prefillEngine', value: options.prefillEngine, expected: "'ort', or 'native' together with decodeEngine: 'native'" });
  }
  if (options.kvStorage !== undefined && options.kvStorage !== 'float32' && options.kvStorage !== 'float16') {
    throw new InvalidArgumentError({ argument: 'kvStorage', value: options.kvStorage, expected: "'float32' or 'float16'" });
  }
  if (options.kvStorage === 'float16' && options.prefillEngine !== 'native') {
    throw new InvalidArgumentError({
      argument: 'kvStorage',
      value: options.kvStorage,
      expected: "'float32', or 'float16' together with decodeEngine: 'native' and prefillEngine: 'native' (the ORT graph reads its own KV type)",
    });
  }
  const nativePrefill = options.prefillEngine === 'native';
  const engine = options.decodeEngine === 'native' ? registeredDecodeEngine() : undefined;
  if (options.decodeEngine === 'native' && !engine) {
    throw new UnsupportedCapabilityError({
      capability: 'nativeDecode',
      component: "loadModel({ decodeEngine: 'native' })",
      message: "decodeEngine: 'native' needs a registered native decode engine: import '@draft/cuda/register' (or call registerNativeBackend() from @draft/cuda) first.",
    });
  }
  const total = 3;
  if (signal?.aborted) throw new AbortError({ reason: signal.reason });
  const folder = readModelFolder(resolve(dir), { dtype: options.dtype, modelFileName: options.modelFileName });
  const warn = options.onWarning ?? ((message: string) => console.warn(`@draft/runtime: ${message}`));
  for (const message of folder.architecture.warnings) warn(message);
  onProgress?.({ stage: 'load', completed: 1, total });
  const tokenizer = await HfTokenizer.create(folder.tokenizerJson, folder.tokenizerConfig, `${folder.dir}/tokenizer.json`);
  onProgress?.({ stage: 'load', completed: 2, total });
  if (signal?.aborted) throw new AbortError({ reason: signal.reason });
  const heapTrims = { count: 0 };
  const onHeapFreed = () =>
    void requestHeapTrim().then((trimmed) => {
      if (trimmed) heapTrims.count++;
    });
  const client = new WorkerClient(options.trimHeap === false ? undefined : onHeapFreed);
  try {
    const info = folder.info;
    const graph = await client.request<InitResult>({
      type: 'init',
      modelPath: folder.modelPath,
      configPath: join(folder.dir, 'config.json'),
      kvCacheDtype: folder.files.kvCacheDtype,
      numLayers: info.numLayers,
      numHeads: info.numHeads,
      numKvHeads: info.numKvHeads,
      headDim: info.headDim,
      vocabSize: info.vocabSize,
      ropeTheta: folder.ropeTheta,
      rope: folder.rope,
      maxPositions: info.maxPositions,
      threads: options.threads,
      debugOutputs: options.debugOutputs,
      // A native prefill packs ragged caches itself (ORT then only checks the engine at load): no key bias needed,
      // so fused-attention graphs, which cannot take one, get ragged caches too.
      keyBias: (options.raggedCache ?? false) && !nativePrefill,
      maxDecodeBatch: options.maxDecodeBatch,
      inPlaceDecode: options.inPlaceDecode,
      layerwise: options.layerwise ?? false,
      releaseMemoryWhenIdleMs: idleMs,
      ...(engine ? { decodeEngine: nativeDecodeRequest(engine, folder) } : {}),
      ...(nativePrefill ? { nativePrefill } : {}),
      ...(options.kvStorage === 'float16' ? { kvStorage: 'float16' as const } : {}),
    });
    if (signal?.aborted) throw new AbortError({ reason: signal.reason });
    onProgress?.({ stage: 'load', completed: 3, total });
    // Caches padded per KV head need a key bias in the graph, or no graph at all (the native engine masks them).
    const ragged = (options.raggedCache ?? false) || graph.prefillEngine !== 'ort';
    const model = new OrtCausalLM(basename(folder.dir), info, tokenizer, graph, client, ragged, {
      heapTrims,
      prefillScoreBudgetBytes: options.prefillScoreBudgetBytes ?? PREFILL_SCORE_BUDGET_BYTES,
    });
    recordModelSource(model, folder, join(folder.dir, 'config.json'));
    return model;
  } catch (error) {
    await client.terminate();
    throw error;
  }
}
