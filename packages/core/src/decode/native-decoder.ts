/**
 * Native decode engines: a decode step done by native code over the model's own weights instead of the
 * runtime's graph executor (ORT). A step is memory-bound (every weight is read once per token), and a graph
 * executor called from JS adds per-node dispatch and copies that a fused native step does not (decision
 * record 2026-12-06-native-decode.md).
 *
 * A runtime keeps its model in a worker thread, where objects of the main thread cannot go, so an engine is
 * registered by the **module** a worker imports (an absolute path or a package specifier), which exports
 * `createNativeDecoder` (NativeDecoderModuleV1). `@draft/cuda`'s `registerNativeBackend()` registers its CPU
 * decoder; a third party can register its own.
 */

import { InvalidArgumentError } from '../spec/errors.js';

/** Shape of a Llama-family decoder (RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU MLP). */
export interface NativeDecoderConfigV1 {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  /** Threads of the decoder's pool (default: one per core). */
  threads?: number;
  /**
   * Element type of every cache the decoder reads and writes: 'float32' (default), or 'float16' (caches are
   * Uint16Arrays of IEEE half bits: half the bytes; new K/V are rounded to nearest even when written, and every
   * read, a prefill's own attention included, sees the stored values). An engine that honours it says so in
   * NativeDecoderV1.kvDtype.
   */
  kvDtype?: NativeKvDtype;
  /**
   * Element type of the matrices (embed, q/k/v/o, gate/up/down, lmHead): 'float32' (default, Float32Arrays), or
   * 'float16' (Uint16Arrays of IEEE half bits, as fp16 exports store them: widened exactly as they are read, with
   * activations and sums in float32, so a step reads half the weight bytes). Norms and biases stay Float32Arrays.
   * An engine that honours it says so in NativeDecoderV1.weightDtype.
   */
  weightDtype?: NativeWeightDtype;
}

/** Element type of a native decoder's matrices; 'float16' matrices are Uint16Arrays of half bits. */
export type NativeWeightDtype = 'float32' | 'float16';

/** A matrix of a native decoder: Float32Array ('float32') or Uint16Array of half bits ('float16'). */
export type NativeWeightArray = Float32Array | Uint16Array;

/** Element type of a native decoder's caches; 'float16' caches hold half bits in Uint16Arrays. */
export type NativeKvDtype = 'float32' | 'float16';

/** A cache array of a native decoder: Float32Array ('float32') or Uint16Array of half bits ('float16'). */
export type NativeKvArray = Float32Array | Uint16Array;

/** One layer's weights, row-major (out, in) as torch's nn.Linear stores them; matrices of the config's weightDtype. */
export interface NativeDecoderLayerV1 {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  q: NativeWeightArray;
  k: NativeWeightArray;
  v: NativeWeightArray;
  o: NativeWeightArray;
  /** Qwen2-style projection biases. */
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
  gate: NativeWeightArray;
  up: NativeWeightArray;
  down: NativeWeightArray;
}

export interface NativeDecoderWeightsV1 {
  embed: NativeWeightArray;
  layers: NativeDecoderLayerV1[];
  finalNorm: Float32Array;
  lmHead: NativeWeightArray;
}

/**
 * One sequence's step. Its cache is per layer (numKvHeads, capacity, headDim) of the decoder's kvDtype; the step writes the token's
 * K/V (after RoPE) at column `used` and attends over the columns below it that `mask` marks, plus the new one.
 */
export interface NativeDecoderRowV1 {
  token: number;
  /** (headDim) rotation of this token's position, rotate-half layout (each half's angles repeated). */
  cos: Float32Array;
  sin: Float32Array;
  keys: NativeKvArray[];
  values: NativeKvArray[];
  capacity: number;
  used: number;
  /** (used) 1 = attend; absent = every column below `used`. */
  mask?: Uint8Array;
  /**
   * Per layer (numKvHeads, capacity): 1 = that KV head attends to the column (ragged caches padded per head), on top
   * of `mask`. Absent = no per-head padding.
   */
  headMasks?: Uint8Array[];
  /** (vocabSize) written by the step. */
  logits: Float32Array;
  /**
   * Packed heads (caches that hold exactly what each KV head keeps): per layer, KV head g holds `headUsed[l][g]`
   * entries at rows `headOffsets[l][g]` … of that layer's keys/values (rows of headDim); the step writes the token's
   * K/V right after them and attends over them plus it. `mask` and `headMasks` do not apply; `capacity` and `used`
   * must still satisfy 0 ≤ used < capacity. Both or neither.
   */
  headOffsets?: Int32Array[];
  headUsed?: Int32Array[];
}

/**
 * One layer of a prefill over `count` tokens whose hidden states are `hidden` (count, hiddenSize), updated in
 * place. Their K/V (after RoPE) go to columns [used, used + count) of this layer's cache (numKvHeads, capacity,
 * headDim); token t attends causally to columns [0, used + t], those below `used` as `headMask` marks.
 */
export interface NativeLayerCallV1 {
  layer: number;
  hidden: Float32Array;
  count: number;
  /** (count, headDim) each: every token's rotation, rotate-half layout. */
  cos: Float32Array;
  sin: Float32Array;
  keys: NativeKvArray;
  values: NativeKvArray;
  capacity: number;
  used: number;
  /** (numKvHeads, capacity) 1 = attend, read below `used` (caches padded per KV head). Absent = all. */
  headMask?: Uint8Array;
  /** (numHeads, queryRows, headDim) written: post-RoPE queries of the last `queryRows` tokens, unscaled. */
  queries?: Float32Array;
  queryRows?: number;
}

/**
 * A native prefill, one layer at a time, so that a caller can select each layer's entries right after its
 * attention and keep only one layer's full KV (decision record 2026-12-06-native-prefill.md). Synchronous.
 */
export interface NativePrefillV1 {
  /** hidden[t] = the embedding of tokens[t]. */
  embed(tokens: Int32Array, hidden: Float32Array): void;
  layer(call: NativeLayerCallV1): void;
  /** Final norm and LM head: logits (count, vocabSize) of the first `count` rows of `hidden`. */
  head(hidden: Float32Array, count: number, logits: Float32Array): void;
}

export interface NativeDecoderV1 {
  /** One decode step of every row (sequences of one batch share each weight read). Synchronous. */
  step(rows: NativeDecoderRowV1[]): void;
  /** Optional: prefill by the same engine (a runtime's `prefillEngine: 'native'` needs it). */
  readonly prefill?: NativePrefillV1;
  /** The element type its caches hold, as the config asked (absent: 'float32'; an engine without float16 leaves it out). */
  readonly kvDtype?: NativeKvDtype;
  /** The element type its matrices are read as, as the config asked (absent: 'float32'; an engine without float16 weights leaves it out). */
  readonly weightDtype?: NativeWeightDtype;
  /** Stops the decoder's threads; the weights' memory is the caller's. */
  close(): void;
}

/** What an engine's module exports. */
export interface NativeDecoderModuleV1 {
  createNativeDecoder(config: NativeDecoderConfigV1, weights: NativeDecoderWeightsV1): NativeDecoderV1;
  /**
   * Optional: the file's bytes mapped read-only (pages shared with the OS's file cache, no copy); a runtime
   * falls back to reading the weights when absent.
   */
  mapFile?(path: string): ArrayBuffer;
}

export interface DecodeEngineV1 {
  readonly name: string;
  /** Absolute path (or package specifier) of an ES module implementing NativeDecoderModuleV1. */
  readonly module: string;
}

interface DecodeEngineRegistry {
  engine?: DecodeEngineV1;
}

const GLOBAL_KEY = Symbol.for('@draft/core.decodeEngine.v1');

function registry(): DecodeEngineRegistry {
  const holder = globalThis as unknown as Record<symbol, DecodeEngineRegistry | undefined>;
  let r = holder[GLOBAL_KEY];
  if (!r) {
    r = {};
    holder[GLOBAL_KEY] = r;
  }
  return r;
}

/** Registers the process's native decode engine (the last registration wins). Returns an unregister function. */
export function registerDecodeEngine(engine: DecodeEngineV1): () => void {
  if (typeof engine?.name !== 'string' || engine.name.length === 0) {
    throw new InvalidArgumentError({ argument: 'engine.name', value: engine?.name, expected: 'a non-empty string' });
  }
  if (typeof engine.module !== 'string' || engine.module.length === 0) {
    throw new InvalidArgumentError({ argument: 'engine.module', value: engine.module, expected: 'the path or specifier of an ES module exporting createNativeDecoder' });
  }
  const r = registry();
  const entry = { name: engine.name, module: engine.module };
  r.engine = entry;
  return () => {
    if (r.engine === entry) r.engine = undefined;
  };
}

/** The registered engine, or undefined. */
export function registeredDecodeEngine(): DecodeEngineV1 | undefined {
  return registry().engine;
}
