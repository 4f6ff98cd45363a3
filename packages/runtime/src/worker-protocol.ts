import type { AttentionPattern, QueryCaptureSpec } from './graph/instrument.js';
import type { FloatType } from './graph/kv-io.js';
import type { KvCacheDtype } from './model-files.js';
import type { RopeParameters } from './rope-scaling.js';

/** Messages between OrtCausalLM (main thread) and its worker. Every request carries an id; replies echo it. */
export type WorkerRequest =
  | {
      id: number;
      type: 'init';
      modelPath: string;
      /** config.json, named by errors about the graph not matching it. */
      configPath: string;
      /** Declared by transformers.js_config; checked against the graph's KV inputs. */
      kvCacheDtype?: KvCacheDtype;
      numLayers: number;
      numHeads: number;
      numKvHeads: number;
      headDim: number;
      vocabSize: number;
      ropeTheta: number;
      /** The config's RoPE (type, scaling), for graphs without cos/sin tables. */
      rope?: RopeParameters;
      maxPositions: number;
      threads?: number;
      debugOutputs?: string[];
      keyBias?: boolean;
      /** Most single-token steps of different caches run as one batch (default 8; 1 = never). */
      maxDecodeBatch?: number;
      /** Milliseconds to wait for the rest of a batch's next steps (default 20). */
      batchGatherMs?: number;
      /** Split the graph into per-layer sessions (layer-wise prefill with selection in the loop). */
      layerwise?: boolean;
      /** Decode steps write new K/V rows into caches kept in place (default true where the graph allows). */
      inPlaceDecode?: boolean;
      /** Recreate the ORT session after this many idle milliseconds, returning its arena's memory (default never). */
      releaseMemoryWhenIdleMs?: number;
      /** Decode single-token steps with this native engine (the module the worker imports) instead of ORT. */
      decodeEngine?: { name: string; module: string; slidingWindow?: number; modelType: string; rmsNormEps?: number };
      /** Prefill with the same native engine too; the ORT session is then released after the load check. */
      nativePrefill?: boolean;
      /** Element type caches are kept in (native prefill and decode only): 'float16' halves their bytes. */
      kvStorage?: FloatType;
    }
  | {
      id: number;
      type: 'forward';
      cache: number | null;
      inputIds: Int32Array;
      positionIds: Int32Array;
      /** Positions of the captured window: the last `captureQueries` of this call (0 = none). */
      captureQueries: number;
      logits: 'last' | 'all';
      chunkSize: number;
      debugOutputs?: string[];
      /** false: the caller takes no progress (a decode step's reply then comes alone). */
      progress?: boolean;
    }
  /** `kept[layer][kvHead]`: ascending **slot** indices; counts may differ (padded caches). */
  /** `consume`: the source's arrays are freed layer by layer as the result is built, and its handle is forgotten. */
  | { id: number; type: 'gather'; cache: number; kept: Int32Array[][]; consume?: boolean }
  | { id: number; type: 'crop'; cache: number; length: number }
  | { id: number; type: 'clone'; cache: number }
  /** Valid entries of each head (equal counts required), or with `slots` the padded tensor and validity. */
  | { id: number; type: 'read'; cache: number; layer: number; which: 'key' | 'value'; slots?: boolean }
  | { id: number; type: 'release'; cache: number }
  /** The KV allocator's counters (`KvPoolStats`); `resetPeak` starts a new peak after reading. */
  | { id: number; type: 'kvStats'; resetPeak?: boolean }
  /** Counters of batched decode (`DecodeBatchStats`). */
  | { id: number; type: 'batchStats' }
  /** How often the idle session was recreated (`SessionMemoryStats`). */
  | { id: number; type: 'sessionStats' }
  /** Every layer's keys and values in the graph's element type (float16 as bits): document caches. */
  | { id: number; type: 'export'; cache: number }
  /** A new cache from stored tensors, per layer (numKvHeads, length, headDim) in the graph's element type. */
  | { id: number; type: 'import'; keys: (Float32Array | Uint16Array)[]; values: (Float32Array | Uint16Array)[]; length: number }
  | { id: number; type: 'cancel'; target: number }
  /**
   * Layer-wise prefill from an empty cache (layered sessions only): every chunk of layer l, then a 'layer' reply
   * with its keys and window queries; the worker waits for 'layerKept' and keeps only those entries.
   */
  | { id: number; type: 'prefillSelect'; inputIds: Int32Array; positionIds: Int32Array; captureQueries: number; chunkSize: number }
  /** The kept indices of one layer of a 'prefillSelect' request (`target`), per KV head, ascending. */
  | { id: number; type: 'layerKept'; target: number; layer: number; kept: Int32Array[] };

export interface InitResult {
  pattern: AttentionPattern;
  /** Per layer, the capture spec without its RoPE tables (distributive, so each kind keeps its fields). */
  captures: (QueryCaptureSpec extends infer C ? (C extends unknown ? Omit<C, 'cosCache' | 'sinCache'> : never) : never)[];
  inputNames: string[];
  outputNames: string[];
  /** Element type of the KV cache as stored in the worker: the graph's past/present type, or `kvStorage`'s. */
  kvType: FloatType;
  logitsType: FloatType;
  /** External data files the graph references (ORT reads them; empty when weights are inline). */
  externalDataFiles: string[];
  /** Most decode steps this graph runs together (1 where the attention cannot mask per-row padding). */
  maxDecodeBatch: number;
  /** The graph runs as one session per layer (`prefillSelect` available). */
  layerwise: boolean;
  /** Decode steps write new K/V rows into caches kept in place (no present copied out per step). */
  inPlaceDecode: boolean;
  /** Who runs decode steps: 'ort', or the native engine's name (checked against ORT at load). */
  decodeEngine: string;
  /** Who runs prefills (multi-token forwards and layer-wise prefills): 'ort', or the native engine's name. */
  prefillEngine: string;
  /** Largest logit difference between ORT and the native engine in the load-time check (native only). */
  nativeCheckError?: number;
  /** Element type the native engine reads the matrices in: the graph's ('float16' for fp16 exports; native only). */
  nativeWeightDtype?: 'float32' | 'float16';
  loadMs: number;
}

export interface ForwardResult {
  cache: number;
  length: number;
  logits: Float32Array;
  /** Per layer (numHeads, w, headDim) when captured. */
  queries?: Float32Array[];
  debug?: Record<string, { data: Float32Array; dims: number[] }>;
  /** The new cache holds exactly each KV head's entries (packed heads, native engine), no padding. */
  packed?: boolean;
}

export type WorkerReply =
  | { id: number; type: 'result'; result: unknown }
  | { id: number; type: 'error'; error: SerializedError }
  | { id: number; type: 'progress'; stage: string; completed: number; total: number }
  /** One layer of a 'prefillSelect': its keys (numKvHeads, total, d) as float32 and window queries (numHeads, w, d). */
  | { id: number; type: 'layer'; layer: number; keys: Float32Array; queries: Float32Array }
  /** Unsolicited (id 0): the worker just freed a lot of native memory (session made, prefill ran); see heap-trim.ts. */
  | { id: 0; type: 'heapFreed' };

export interface SerializedError {
  name: string;
  code: string;
  message: string;
  details?: Record<string, unknown>;
  stack?: string;
}

/** Reply to 'export': copies of a cache's tensors in the graph's element type. */
export interface ExportedKv {
  kvType: FloatType;
  length: number;
  keys: (Float32Array | Uint16Array)[];
  values: (Float32Array | Uint16Array)[];
}

/** Decode steps that ran batched since load: batches of two or more rows, and the rows they carried. */
export interface DecodeBatchStats {
  batches: number;
  rows: number;
  /** The most rows a batch may have on this graph (1: batching off or not possible). */
  maxDecodeBatch: number;
  /** Sequence steps the native decode engine ran (`decodeEngine: 'native'`; 0 otherwise). */
  nativeSteps: number;
}

/** `OrtCausalLM.sessionMemoryStats()`: idle releases of the ORT session's memory (`releaseMemoryWhenIdleMs`). */
export interface SessionMemoryStats {
  /** The load option, or null when the session is never released. */
  releaseMemoryWhenIdleMs: number | null;
  /** Times the idle session was released and created again since load. */
  releases: number;
  /**
   * Times this model's worker asked for a heap trim after freeing a lot and a registered trimmer returned memory
   * to the OS (`LoadModelOptions.trimHeap`; process totals: @draft/core's `heapTrimStats()`).
   */
  heapTrims: number;
}
