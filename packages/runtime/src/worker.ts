/**
 * Worker thread owning the onnxruntime-node InferenceSession and every KV cache tensor of one model.
 *
 * Why the cache lives here: a decode step feeds the whole past back to ORT; keeping presents in the worker
 * (behind integer handles) makes each step move only token ids in and one logits row out, instead of copying
 * the full cache across threads twice per token. Reads (`read`) return copies.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute } from 'node:path';
import { parentPort } from 'node:worker_threads';
import onnxProto from 'onnx-proto';
import { checkExternalData, externalizeInlineWeights, externalRef, readExternalBytes, resolveExternalLocations } from './graph/external-data.js';
import { type AttentionPattern, decodeModel, instrumentGraph, type QueryCaptureSpec } from './graph/instrument.js';
import { type FloatType, readKvIo } from './graph/kv-io.js';
import { halfToFloat32 } from './float16.js';
import { appendColumn, groupByLength, MAX_BATCH_TENSOR_BYTES, packedMask, packLayer, paddedPastLength, unpackLayerRow } from './batched-decode.js';
import { type KvArray, KvPool } from './kv-pool.js';
import { GraphSplitError, splitLayers } from './graph/split-layers.js';
import { type GraphRunner, LayeredSession } from './layered-session.js';
import { releaseBytesNow } from './release-bytes.js';
import { applyRopeInPlace, RopeTableCache } from './rope.js';
import { type DecoderGraph, NativeDecodeUnsupported, nativeWeights, RopeRows } from './native-decode.js';
import type { NativeDecoderModuleV1, NativeDecoderRowV1, NativeDecoderV1, NativePrefillV1 } from '@draft/core';
import { pathToFileURL } from 'node:url';
import type { ExportedKv, ForwardResult, InitResult, SerializedError, SessionMemoryStats, WorkerReply, WorkerRequest } from './worker-protocol.js';

const { onnx } = onnxProto;

type Ort = typeof import('onnxruntime-node');
type Tensor = InstanceType<Ort['Tensor']>;
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

interface CacheEntry {
  /** Per layer (numKvHeads, length, headDim). */
  keys: KvArray[];
  values: KvArray[];
  /** Slots per (layer, KV head). */
  length: number;
  /** Padded caches: per layer (numKvHeads · length), 1 = a real entry, 0 = padding (masked by the key bias). */
  valid?: Uint8Array[];
  /** Packed caches: keys[l] / values[l] hold each KV head's entries exactly, at rows of its own (see PackedHeads). */
  packed?: PackedHeads;
}

/**
 * Caches that hold only what they keep (the native engine, counts that differ per layer and KV head): head g of
 * layer l holds `base[l][g] + tail` entries at rows `offsets[l][g]` … of keys[l] / values[l] (rows of headDim), with
 * room up to `caps[l][g]` rows for decode steps to append in place. The main thread addresses entries as if padded
 * (base entries at slots 0…, the tail after the largest base count of all layers): `padPacked` builds that form for
 * every operation other than a native decode step. Decision record 2026-12-06-native-prefill.md.
 */
interface PackedHeads {
  offsets: Int32Array[];
  caps: Int32Array[];
  /** Entries each head kept at selection. */
  base: Int32Array[];
  /** Tokens appended to every head since (decode steps). */
  tail: number;
  /** The one handle that may append in place (entries of one decode chain share their arrays). */
  writer: { handle: number };
}

/** A session over the whole graph, or its layer segments (`layerwise`): both run the whole graph the same way. */
interface Runner {
  session: GraphRunner & { release(): Promise<void> };
  layered?: LayeredSession;
}

interface State extends Runner {
  /** Makes the session again (`releaseMemoryWhenIdleMs`): see releaseIdleSession. */
  createRunner?: () => Promise<Runner>;
  init: Extract<WorkerRequest, { type: 'init' }>;
  captures: QueryCaptureSpec[];
  pattern: AttentionPattern;
  hasAttentionMask: boolean;
  hasNumLogitsToKeep: boolean;
  keyBiasInputs?: string[];
  kvType: FloatType;
  ropeFallback?: RopeTableCache;
  /** Every KV array of every cache and forward step comes from here (counted, reused). */
  pool: KvPool;
  /** Most decode steps run together (1: never batch). */
  maxDecodeBatch: number;
  /** How long the pump waits for the rest of the last batch's next steps. */
  batchGatherMs: number;
  /**
   * Graph outputs holding each layer's new K/V rows, when decode steps keep their cache in place (decomposed
   * attention with an attention mask): undefined when every step fetches whole presents.
   */
  newKv?: { key: string; value: string }[];
  /** Single-token steps run by a native decoder over the same in-place buffers (`decodeEngine`). */
  native?: { decoder: NativeDecoderV1; rope: RopeRows; name: string; hiddenSize: number };
  /** Prefills run by the native decoder too (`prefillEngine: 'native'`); the ORT session is then made on demand. */
  nativePrefill?: NativePrefillV1;
}

const port = parentPort;
if (!port) throw new Error('@draft/runtime worker must run in a worker thread.');
let state: State | undefined;
const caches = new Map<number, CacheEntry>();
let nextHandle = 1;
const cancelled = new Set<number>();
/** Requests not yet started, in arrival order (the pump runs them one at a time, decode steps in batches). */
const pending: WorkerRequest[] = [];
let pumping = false;
let pumpScheduled = false;
/** Decode steps run in batches of two or more, and the rows they carried (`decodeBatchStats`). */
const batchCounts = { batches: 0, rows: 0, nativeSteps: 0 };
/** The last batched step's rows: their next steps are expected, so the pump waits a moment for them. */
let lastBatch: ResidentBatch | undefined;
/** The requests the pump is running now (a run awaits between layers and batches, so messages come in meanwhile). */
let running: WorkerRequest[] = [];
/**
 * Caches released while a request sent before the release still needs them: `dispose()` right after
 * `forward({ cache })` must not free (and let the pool hand out) arrays that forward reads. Freed once no queued or
 * running request names them.
 */
const deferredReleases = new Set<number>();

const names = (handle: number) => (request: WorkerRequest) => 'cache' in request && request.cache === handle;

function release(handle: number): void {
  if (running.some(names(handle)) || pending.some(names(handle))) deferredReleases.add(handle);
  else releaseEntry(handle);
}

/** Runs requests taken off the queue as the running ones, then frees the releases that waited for them. */
async function runAsCurrent(requests: WorkerRequest[], run: () => unknown): Promise<void> {
  running = requests;
  try {
    await run();
  } finally {
    running = [];
    for (const handle of deferredReleases) {
      if (pending.some(names(handle))) continue;
      deferredReleases.delete(handle);
      releaseEntry(handle);
    }
  }
}

class WorkerError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(reply, transfer);
}

/** Prompts shorter than this free too little for a heap trim to be worth its milliseconds (decode steps never ask). */
const HEAP_TRIM_MIN_TOKENS = 64;

/** Tells the client that native memory was just freed, so it can return it to the OS (heap-trim.ts). */
function heapFreed(): void {
  post({ id: 0, type: 'heapFreed' });
}

function serialize(error: unknown): SerializedError {
  const e = error as { name?: string; code?: string; message?: string; details?: Record<string, unknown>; stack?: string };
  return {
    name: e?.name ?? 'Error',
    code: typeof e?.code === 'string' ? e.code : 'INTERNAL',
    message: e?.message ?? String(error),
    details: e?.details,
    stack: e?.stack,
  };
}

function s(): State {
  if (!state) throw new WorkerError('INTERNAL', 'Worker not initialised.');
  if (idleRelease.error) throw new WorkerError('INTERNAL', `The ORT session could not be created again after idling: ${(idleRelease.error as Error).message ?? idleRelease.error}`);
  return state;
}

function getCache(handle: number): CacheEntry {
  if (residentRows.has(handle)) materialize(handle);
  const entry = caches.get(handle);
  if (!entry) throw new WorkerError('DISPOSED', `KV cache ${handle} has been disposed.`, { resource: 'KvCache' });
  return entry.packed ? padPacked(entry) : entry;
}

/** Arrays made for the request being handled only (a packed cache's padded form): released when it ends. */
const transient: KvArray[] = [];

/** A packed cache in the padded form every other path reads (slots as the main thread numbers them), transient. */
function padPacked(entry: CacheEntry): CacheEntry {
  const s = state as State;
  const p = entry.packed as PackedHeads;
  const { numKvHeads: hkv, headDim: d } = s.init;
  const maxBase = Math.max(0, ...p.base.flatMap((b) => Array.from(b)));
  const slots = maxBase + p.tail;
  const pad = (src: KvArray, l: number): KvArray => {
    const out = s.pool.alloc(hkv * slots * d);
    transient.push(out);
    out.fill(0);
    for (let h = 0; h < hkv; h++) {
      const from = p.offsets[l][h] * d;
      const base = p.base[l][h];
      out.set(src.subarray(from, from + base * d) as never, h * slots * d);
      out.set(src.subarray(from + base * d, from + (base + p.tail) * d) as never, (h * slots + maxBase) * d);
    }
    return out;
  };
  const valid = p.base.map((b) => {
    const v = new Uint8Array(hkv * slots);
    for (let h = 0; h < hkv; h++) {
      v.fill(1, h * slots, h * slots + b[h]);
      v.fill(1, h * slots + maxBase, (h + 1) * slots);
    }
    return v;
  });
  return { keys: entry.keys.map(pad), values: entry.values.map(pad), length: slots, valid };
}

/** Rows of room each packed head gets for decode steps to append in place. */
const PACKED_ROOM = 32;

/** Packs per-head kept entries (`rows(l, h)`: (count, d) of each head) with room after each head's block. */
function packHeads(counts: Int32Array[], rows: (which: 0 | 1, l: number, h: number) => KvArray): { keys: KvArray[]; values: KvArray[]; offsets: Int32Array[]; caps: Int32Array[] } {
  const s = state as State;
  const { headDim: d } = s.init;
  const offsets = counts.map((c) => new Int32Array(c.length));
  const caps = counts.map((c) => c.map((n) => n + Math.max(PACKED_ROOM, n >> 4)));
  const out: KvArray[][] = [[], []];
  try {
    counts.forEach((c, l) => {
      let row = 0;
      for (let h = 0; h < c.length; h++) {
        offsets[l][h] = row;
        row += caps[l][h];
      }
      for (const which of [0, 1] as const) {
        const a = s.pool.alloc(row * d);
        out[which].push(a);
        a.fill(0);
        for (let h = 0; h < c.length; h++) a.set(rows(which, l, h) as never, offsets[l][h] * d);
      }
    });
  } catch (error) {
    releaseArrays([...out[0], ...out[1]]);
    throw error;
  }
  return { keys: out[0], values: out[1], offsets, caps };
}

/**
 * One sequence's part of a native decode step, prepared before the engine runs (`row`): `finish` records what the
 * step wrote and returns the new cache's result, `abandon` gives back what preparing took when the step fails.
 */
interface NativeStepRow {
  row: NativeDecoderRowV1;
  finish: () => ForwardResult;
  abandon: () => void;
}

/**
 * A packed cache's row: the token's K/V go right after each head's entries, in place when this cache is its arrays'
 * writer and every head has room (the old handle still reads its own rows), else into freshly packed arrays. No
 * padding is read or written.
 */
function packedStepRow(request: ForwardRequest, entry: CacheEntry): NativeStepRow {
  const s = state as State;
  const native = s.native as NonNullable<State['native']>;
  const { headDim: d, vocabSize } = s.init;
  const p = entry.packed as PackedHeads;
  const counts = p.base.map((b) => b.map((n) => n + p.tail));
  const room = counts.every((c, l) => c.every((n, h) => n < p.caps[l][h]));
  let { keys, values } = entry;
  let { offsets, caps } = p;
  let writer = p.writer;
  if (writer.handle === request.cache && room) {
    for (const a of [...keys, ...values]) s.pool.retain(a);
  } else {
    const repacked = packHeads(counts, (which, l, h) => {
      const src = (which === 0 ? entry.keys : entry.values)[l];
      return src.subarray(p.offsets[l][h] * d, (p.offsets[l][h] + counts[l][h]) * d);
    });
    ({ keys, values, offsets, caps } = repacked);
    writer = { handle: -1 };
  }
  const logits = new Float32Array(vocabSize);
  return {
    row: { token: request.inputIds[0], ...native.rope.at(request.positionIds[0]), keys, values, capacity: 1, used: 0, headOffsets: offsets, headUsed: counts, logits },
    finish: () => {
      const handle = store({ keys, values, length: entry.length + 1, packed: { offsets, caps, base: p.base, tail: p.tail + 1, writer } });
      writer.handle = handle;
      return { cache: handle, length: entry.length + 1, logits, packed: true };
    },
    abandon: () => releaseArrays([...keys, ...values]),
  };
}

/** Stores `entry`, which takes over the holds on its arrays. */
function store(entry: CacheEntry): number {
  const handle = nextHandle++;
  caches.set(handle, entry);
  return handle;
}

function releaseArrays(arrays: KvArray[]): void {
  const pool = state?.pool;
  if (pool) for (const a of arrays) pool.release(a);
}

function releaseEntry(handle: number): void {
  expectedSteps.delete(handle);
  const resident = residentRows.get(handle);
  if (resident) {
    residentRows.delete(handle);
    dropRow(resident.batch);
    return;
  }
  const entry = caches.get(handle);
  if (!entry) return;
  caches.delete(handle);
  releaseArrays(entry.keys);
  releaseArrays(entry.values);
}

const i64 = (values: ArrayLike<number>, dims: number[]): Tensor => {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
};

/** A float32 view or copy of a float tensor's data (float16 bits are converted). */
function floats(tensor: Tensor): Float32Array {
  return tensor.type === 'float16' ? halfToFloat32(tensor.data as Uint16Array) : (tensor.data as Float32Array);
}

/** A zeroed KV array from the pool (pooled buffers are reused, so zero them). */
function allocZeroed(length: number): KvArray {
  const out = (state as State).pool.alloc(length);
  out.fill(0);
  return out;
}

async function init(request: Extract<WorkerRequest, { type: 'init' }>): Promise<InitResult> {
  const started = performance.now();
  const path = request.modelPath;
  const baseDir = dirname(path);
  // With external data the .onnx file is only the graph (weights stay in the data files, which JS never reads).
  const fileBytes = readFileSync(path);
  let model = decodeModel(fileBytes, path);
  if (!model.graph) throw new WorkerError('MODEL_LAYOUT', `ONNX model ${path} has no graph.`, { path });
  const dataFiles = checkExternalData(model.graph.initializer ?? [], baseDir, path);
  // Where ORT resolves the (possibly rewritten) locations: the model's folder unless data files are symlinks.
  let dataFolder = dataFiles.length > 0 ? resolveExternalLocations(model.graph.initializer ?? [], baseDir, path) : baseDir;
  let weightsByReference = false;
  if (dataFiles.length === 0) {
    // Inline weights: ORT reads them from the model file by byte range, and the graph is decoded again from
    // its small re-encoding, so nothing keeps the file's bytes alive in JS once the session exists.
    const moved = externalizeInlineWeights(model.graph.initializer ?? [], fileBytes, path);
    if (moved.bytes > 0) {
      model = decodeModel(onnx.ModelProto.encode(model).finish(), path);
      dataFolder = moved.folder;
      weightsByReference = true;
      // Nothing refers to the file's bytes any more (the graph was decoded again from its re-encoding).
      releaseBytesNow(fileBytes);
    }
  }
  const graphProto = model.graph as NonNullable<typeof model.graph>;
  const io = readKvIo(
    { input: graphProto.input ?? [], output: graphProto.output ?? [] },
    { numLayers: request.numLayers, numKvHeads: request.numKvHeads, headDim: request.headDim, modelPath: path, configPath: request.configPath },
  );
  if (request.kvCacheDtype && request.kvCacheDtype !== io.kvType) {
    throw new WorkerError('MODEL_LAYOUT', `${request.configPath}: transformers.js_config.kv_cache_dtype is ${request.kvCacheDtype} but ${path} has ${io.kvType} KV inputs.`, { path });
  }
  const graph = instrumentGraph(model, {
    numLayers: request.numLayers,
    headDim: request.headDim,
    path,
    debugOutputs: request.debugOutputs,
    keyBias: request.keyBias,
    groupQueryHeads: { numHeads: request.numHeads, numKvHeads: request.numKvHeads },
    // Only RoPE tables are read this way: kilobytes, by their byte range.
    readExternal: (t) => readExternalBytes(externalRef(t, dataFolder, path) as NonNullable<ReturnType<typeof externalRef>>),
  });
  const options: Record<string, unknown> = { graphOptimizationLevel: 'all', interOpNumThreads: 1, executionMode: 'sequential' };
  if (request.threads !== undefined) options.intraOpNumThreads = request.threads;
  // The session is made from the instrumented graph's bytes, so ORT has no model path to resolve relative
  // external-data locations against: this session config entry gives it the folder, and ORT reads (or maps)
  // the weights itself.
  if (dataFiles.length > 0 || weightsByReference) options.extra = { session: { model_external_initializers_file_folder_path: dataFolder } };
  let segments: ReturnType<typeof splitLayers>['segments'] | undefined;
  if (request.layerwise) {
    try {
      segments = splitLayers(model, request.numLayers).segments;
    } catch (error) {
      if (!(error instanceof GraphSplitError)) throw error;
      throw new WorkerError('UNSUPPORTED_CAPABILITY', `${path} cannot run layer by layer: ${error.message}. Load it without 'layerwise'.`, {
        capability: 'layerwisePrefill',
        component: 'loadModel({ layerwise: true })',
        backend: path,
      });
    }
  }
  const createRunner = async (sessionOptions: Record<string, unknown> = options): Promise<Runner> => {
    if (!segments) return { session: await ort.InferenceSession.create(graph.bytes, sessionOptions) };
    const layered = await LayeredSession.create(ort, segments, sessionOptions, { inputs: graph.inputNames, outputs: graph.outputNames });
    return { session: layered, layered };
  };
  // With both engines native the first session only runs the load check and is released right after: made
  // without graph optimisations and without ORT's arena, it never holds a second, optimised copy of the weights
  // (an fp16 export's Casts folded into float32 matrices: load peak 334 → 253 MiB on the perf target) and checks
  // the native engine against the graph as exported. Decision record 2026-12-07-transient-buffers-freed-at-once.md.
  const checkOnly = request.decodeEngine !== undefined && request.nativePrefill === true;
  const { session, layered } = await createRunner(checkOnly ? { ...options, graphOptimizationLevel: 'disabled', enableCpuMemArena: false, enableMemPattern: false } : options);
  for (const name of ['input_ids', 'position_ids']) {
    if (!session.inputNames.includes(name)) {
      throw new WorkerError('GRAPH_PATTERN', `${request.modelPath} has no '${name}' input; explicit position ids are required.`, { path: request.modelPath });
    }
  }
  for (let l = 0; l < request.numLayers; l++) {
    for (const name of [`past_key_values.${l}.key`, `past_key_values.${l}.value`, `present.${l}.key`, `present.${l}.value`]) {
      const ok = name.startsWith('past') ? session.inputNames.includes(name) : session.outputNames.includes(name);
      if (!ok) throw new WorkerError('GRAPH_PATTERN', `${request.modelPath} lacks '${name}' (expected the transformers.js KV I/O contract).`, { path: request.modelPath });
    }
  }
  state = {
    session,
    ...(layered ? { layered } : {}),
    // Kept only when the session is to be recreated after idling (the graph bytes stay alive with it).
    ...(request.releaseMemoryWhenIdleMs !== undefined ? { createRunner } : {}),
    init: request,
    captures: graph.captures,
    pattern: graph.pattern,
    hasAttentionMask: session.inputNames.includes('attention_mask'),
    hasNumLogitsToKeep: session.inputNames.includes('num_logits_to_keep'),
    keyBiasInputs: graph.keyBiasInputs,
    kvType: io.kvType,
    pool: kvPool(io.kvType, request),
    // Only decomposed attention reads a per-row padding mask inside the past (fused ops take per-row lengths
    // with other padding rules), so other graphs step one sequence at a time.
    maxDecodeBatch: graph.pattern === 'decomposed' && session.inputNames.includes('attention_mask') ? (request.maxDecodeBatch ?? 8) : 1,
    batchGatherMs: request.batchGatherMs ?? 20,
  };
  // In-place decode masks the free capacity of its buffers, which needs the attention mask of decomposed graphs.
  if (graph.newKvOutputs && graph.pattern === 'decomposed' && state.hasAttentionMask && request.inPlaceDecode !== false) {
    state.newKv = graph.newKvOutputs;
    // Caches grow inside their buffers (decode and prefill alike): no ping-pong partner to keep.
    state.pool.keepLiveBytes = false;
  }
  let nativeCheckError: number | undefined;
  if (request.decodeEngine) {
    const expected = await checkLogitsOfOrt(state);
    if (request.nativePrefill) {
      // Every run is native from here: the session (its copy of the weights, its arena) goes before the engine
      // maps the weights, so the two never coexist, and comes back only for a request that needs ORT (debug
      // outputs).
      await state.session.release();
      state.session = sessionOnDemand(createRunner, session);
      heapFreed();
    }
    state.native = await openNativeDecoder(request, graphProto, { dataFolder, modelPath: path });
    // Native rows step over their own caches (nativeStep): batching needs no shared tensor, whatever the graph's
    // attention, and caches grow in place (no ping-pong partner to keep).
    state.maxDecodeBatch = request.maxDecodeBatch ?? 8;
    state.pool.keepLiveBytes = false;
    try {
      if (request.nativePrefill) state.nativePrefill = nativePrefillOf(state.native, request);
      nativeCheckError = checkNativeDecoder(state, expected);
      if (request.kvStorage === 'float16') {
        // Every cache from here on is the engine's: half bits, in a pool of 2-byte elements.
        state.kvType = 'float16';
        state.pool = kvPool('float16', request);
        state.pool.keepLiveBytes = false;
      }
    } catch (error) {
      state.native.decoder.close();
      state.native = undefined;
      state.nativePrefill = undefined;
      throw error;
    }
  }
  const gqa = graph.captures.find((c) => c.kind === 'gqa' && c.doRotary && !c.cosCache);
  if (gqa && gqa.kind === 'gqa') state.ropeFallback = new RopeTableCache(request.maxPositions, request.rope?.rotaryDim ?? gqa.rotaryDim, request.rope ?? request.ropeTheta);
  return {
    pattern: graph.pattern,
    captures: graph.captures.map(({ ...c }) => {
      const copy = { ...c } as Record<string, unknown>;
      delete copy.cosCache;
      delete copy.sinCache;
      return copy as InitResult['captures'][number];
    }),
    inputNames: session.inputNames.slice(),
    outputNames: session.outputNames.slice(),
    kvType: state.kvType,
    logitsType: io.logitsType,
    externalDataFiles: dataFiles,
    maxDecodeBatch: state.maxDecodeBatch,
    layerwise: layered !== undefined || state.nativePrefill !== undefined,
    inPlaceDecode: state.newKv !== undefined,
    decodeEngine: state.native?.name ?? 'ort',
    prefillEngine: state.nativePrefill && state.native ? state.native.name : 'ort',
    ...(nativeCheckError !== undefined ? { nativeCheckError } : {}),
    ...(state.native ? { nativeWeightDtype: state.native.decoder.weightDtype ?? 'float32' } : {}),
    loadMs: performance.now() - started,
  };
}

/** The cache allocator for `kvType` elements. Freed buffers kept: at least 32 MiB, else as much as is live (one decode step's ping-pong partner). */
function kvPool(kvType: FloatType, request: Extract<WorkerRequest, { type: 'init' }>): KvPool {
  return new KvPool(kvType === 'float16' ? 2 : 4, request.numKvHeads * request.headDim, 32 * 2 ** 20);
}

/** Copies positions [from, to) of a call's chunk output into the per-layer query window (numHeads, w, d). */
function copyQueries(
  capture: QueryCaptureSpec,
  tensor: Tensor,
  target: Float32Array,
  chunkStart: number,
  windowStart: number,
  w: number,
  positions: Int32Array,
  s: State,
): void {
  const { numHeads: hq, headDim: d } = s.init;
  const data = floats(tensor);
  const dims = tensor.dims.map(Number);
  // Head-major [B, Hq, S, d] (decomposed graphs; the ONNX Attention op with 4-D inputs) or rows [B, S, Hq·d].
  const headMajor = capture.kind === 'decomposed' || (capture.kind === 'fused' && dims.length === 4);
  const len = headMajor ? dims[2] : dims[1];
  const from = Math.max(chunkStart, windowStart);
  const to = chunkStart + len;
  if (headMajor) {
    if (dims.length !== 4 || dims[1] !== hq || dims[3] !== d) {
      throw new WorkerError('GRAPH_PATTERN', `Captured query '${capture.output}' has shape [${dims}], expected [1, ${hq}, S, ${d}].`);
    }
    for (let h = 0; h < hq; h++) {
      for (let p = from; p < to; p++) {
        const src = (h * len + (p - chunkStart)) * d;
        target.set(data.subarray(src, src + d), (h * w + (p - windowStart)) * d);
      }
    }
    return;
  }
  const rowWidth = dims[2];
  const gqa = capture.kind === 'gqa' ? capture : undefined;
  const expected = gqa?.packed ? (hq + 2 * gqa.kvNumHeads) * d : hq * d;
  if (dims.length !== 3 || rowWidth !== expected) {
    throw new WorkerError('GRAPH_PATTERN', `Captured query '${capture.output}' has shape [${dims}], expected [1, S, ${expected}].`);
  }
  const rotate = gqa?.doRotary === true;
  // Without cos/sin caches: the runtime's tables for the config's RoPE (scaled per HF; dynamic / longrope
  // depend on the call's largest position).
  const fallback = gqa?.cosCache ? undefined : s.ropeFallback;
  const tables = rotate ? fallback?.at(positions.reduce((m, p) => Math.max(m, p), 0) + 1) : undefined;
  const cos = gqa?.cosCache ?? tables?.cos;
  const sin = gqa?.sinCache ?? tables?.sin;
  const rotaryDim = fallback?.rotaryDim ?? gqa?.rotaryDim ?? 0;
  for (let p = from; p < to; p++) {
    for (let h = 0; h < hq; h++) {
      const src = (p - chunkStart) * rowWidth + h * d;
      const dst = (h * w + (p - windowStart)) * d;
      target.set(data.subarray(src, src + d), dst);
      // GQA rotates Q internally (do_rotary=1): reproduce it at the token's true position.
      if (rotate && gqa && cos && sin) applyRopeInPlace(target, dst, positions[p], rotaryDim, cos, sin, gqa.interleaved);
    }
  }
}

/** Families whose maths differs from Llama's under the same weight names (scaled embeddings, other norms, NoPE layers). */
const NOT_LLAMA_MATHS = /^(gemma|granite|smollm3|qwen3|phi)/;

/** Imports the engine's module, maps the graph's weights into it and creates the decoder (typed refusals). */
async function openNativeDecoder(
  request: Extract<WorkerRequest, { type: 'init' }>,
  graph: DecoderGraph,
  files: { dataFolder: string; modelPath: string },
): Promise<NonNullable<State['native']>> {
  const s = state as State;
  const engine = request.decodeEngine as NonNullable<typeof request.decodeEngine>;
  const refuse = (why: string): never => {
    throw new WorkerError('UNSUPPORTED_CAPABILITY', `${request.modelPath} cannot decode with the native engine '${engine.name}': ${why}. Load it without decodeEngine: 'native'.`, {
      capability: 'nativeDecode',
      component: "loadModel({ decodeEngine: 'native' })",
      backend: engine.name,
    });
  };
  // A float16 graph's caches are half bits already (kvStorage 'float32' means the graph's type): the decoder keeps
  // its caches in float16 too.
  const kvDtype = s.kvType === 'float16' || request.kvStorage === 'float16' ? ('float16' as const) : undefined;
  if (engine.slidingWindow !== undefined) refuse(`sliding-window attention (sliding_window ${engine.slidingWindow}) is not implemented natively`);
  const rotaryDim = request.rope?.rotaryDim ?? request.headDim;
  if (rotaryDim !== request.headDim) refuse(`partial rotary embeddings (rotary dim ${rotaryDim} of ${request.headDim})`);
  if (NOT_LLAMA_MATHS.test(engine.modelType)) refuse(`model_type '${engine.modelType}' differs from Llama's maths under the same weight names`);
  // Llama's default when config.json names none; the load check decides whether it was right.
  const eps = engine.rmsNormEps ?? 1e-6;
  let mod: Partial<NativeDecoderModuleV1>;
  try {
    mod = (await import(isAbsolute(engine.module) ? pathToFileURL(engine.module).href : engine.module)) as Partial<NativeDecoderModuleV1>;
  } catch (error) {
    return refuse(`its module ${engine.module} failed to load (${(error as Error).message})`);
  }
  if (typeof mod.createNativeDecoder !== 'function') refuse(`its module ${engine.module} exports no createNativeDecoder`);
  const module = mod as NativeDecoderModuleV1;
  let found: ReturnType<typeof nativeWeights>;
  try {
    found = nativeWeights(graph, request, files, module);
  } catch (error) {
    if (error instanceof NativeDecodeUnsupported) return refuse(error.message);
    throw error;
  }
  const decoder = module.createNativeDecoder(
    {
      hiddenSize: found.hiddenSize,
      numLayers: request.numLayers,
      numHeads: request.numHeads,
      numKvHeads: request.numKvHeads,
      headDim: request.headDim,
      intermediateSize: found.intermediateSize,
      vocabSize: request.vocabSize,
      rmsNormEps: eps,
      ...(request.threads !== undefined ? { threads: request.threads } : {}),
      ...(kvDtype ? { kvDtype } : {}),
      ...(found.weightDtype === 'float16' ? { weightDtype: found.weightDtype } : {}),
    },
    found.weights,
  );
  // An engine that does not echo a type it was asked for would read half bits as floats: refused, not run.
  if (found.weightDtype === 'float16' && decoder.weightDtype !== 'float16') {
    decoder.close();
    refuse(`its weights are float16 and the engine reads float32 weights only (its decoder has no weightDtype 'float16')`);
  }
  if (kvDtype && decoder.kvDtype !== kvDtype) {
    decoder.close();
    const why = request.kvStorage === 'float16' ? `load ${request.modelPath} without kvStorage: 'float16'` : `${request.modelPath}'s graph keeps float16 caches; load it without decodeEngine: 'native'`;
    throw new WorkerError('UNSUPPORTED_CAPABILITY', `The native engine '${engine.name}' keeps float32 caches only (its decoder has no kvDtype 'float16'); ${why}.`, {
      capability: 'kvStorage',
      component: request.kvStorage === 'float16' ? "loadModel({ kvStorage: 'float16' })" : "loadModel({ decodeEngine: 'native' })",
      backend: engine.name,
    });
  }
  const tables = new RopeTableCache(request.maxPositions, request.headDim, request.rope ?? request.ropeTheta);
  return { decoder, rope: new RopeRows(request.headDim, found.rope, (position) => tables.at(position + 1)), name: engine.name, hiddenSize: found.hiddenSize };
}

/** The engine's prefill, or a typed refusal when it has none. */
function nativePrefillOf(native: NonNullable<State['native']>, request: Extract<WorkerRequest, { type: 'init' }>): NativePrefillV1 {
  const prefill = native.decoder.prefill;
  if (!prefill) {
    throw new WorkerError('UNSUPPORTED_CAPABILITY', `The native engine '${native.name}' has no prefill (NativeDecoderV1.prefill); load ${request.modelPath} without prefillEngine: 'native'.`, {
      capability: 'nativePrefill',
      component: "loadModel({ prefillEngine: 'native' })",
      backend: native.name,
    });
  }
  return prefill;
}

/** A released session's stand-in: the same names, and a real session made again on the first run. */
function sessionOnDemand(create: () => Promise<Runner>, released: GraphRunner): Runner['session'] {
  let inner: Runner['session'] | undefined;
  return {
    inputNames: released.inputNames,
    outputNames: released.outputNames,
    async run(feeds, fetches) {
      inner ??= (await create()).session;
      return inner.run(feeds, fetches);
    },
    async release() {
      await inner?.release();
      inner = undefined;
    },
  };
}

/**
 * Frees a native prefill's per-call arrays (hidden states and RoPE rows: 20 MiB for 8K tokens of the perf target) as
 * soon as the call is done, so that they never sit under the next request waiting for this worker's GC.
 */
function releaseTransients(...arrays: Float32Array[]): void {
  for (const a of arrays) releaseBytesNow(a);
}

/** Each token's RoPE rows, (count, headDim) cos and sin, for the native prefill. */
function ropeRows(native: NonNullable<State['native']>, positions: Int32Array, d: number): { cos: Float32Array; sin: Float32Array } {
  const cos = new Float32Array(positions.length * d);
  const sin = new Float32Array(positions.length * d);
  positions.forEach((p, t) => {
    const rows = native.rope.at(p);
    cos.set(rows.cos, t * d);
    sin.set(rows.sin, t * d);
  });
  return { cos, sin };
}

/**
 * A multi-token forward by the native engine: the tokens' hidden states go through the layers one at a time
 * (every token of a layer before the next layer), each layer's cache grown in a pooled array of its own, then
 * the head. Peak: the hidden states, one layer's activations and the caches (no graph arena).
 */
async function nativeForward(request: Extract<WorkerRequest, { type: 'forward' }>, base: CacheEntry): Promise<{ result: ForwardResult; transfer: ArrayBuffer[] }> {
  const s = state as State;
  const native = s.native as NonNullable<State['native']>;
  const prefill = s.nativePrefill as NativePrefillV1;
  const { numLayers, numHeads, numKvHeads: hkv, headDim: d, vocabSize } = s.init;
  const D = native.hiddenSize;
  const S = request.inputIds.length;
  const past = base.length;
  const total = past + S;
  const w = request.captureQueries;
  const hidden = new Float32Array(S * D);
  prefill.embed(request.inputIds, hidden);
  const { cos, sin } = ropeRows(native, request.positionIds, d);
  const queries = w > 0 ? Array.from({ length: numLayers }, () => new Float32Array(numHeads * w * d)) : undefined;
  const valid = base.valid?.map((v) => appendValid(v, hkv, past, S));
  // Unpadded caches are laid out for in-place decode from the start (each head's block `capacity` columns wide, in
  // the room the pool gives every array): the first decode step then writes into them as they are, where moving
  // an 8K cache into that layout cost the step 30–40 ms.
  const capacity = valid ? total : inPlaceCapacity(total, NATIVE_MIN_ROOM);
  const keys: KvArray[] = [];
  const values: KvArray[] = [];
  try {
    for (let l = 0; l < numLayers; l++) {
      if (cancelled.has(request.id)) throw new WorkerError('ABORTED', 'The operation was aborted.');
      for (const [list, from] of [[keys, base.keys[l]], [values, base.values[l]]] as const) {
        const grown = s.pool.alloc(hkv * capacity * d, false);
        list.push(grown);
        for (let h = 0; h < hkv; h++) {
          grown.set(from.subarray(h * past * d, (h + 1) * past * d) as never, h * capacity * d);
          if (capacity > total) grown.fill(0, (h * capacity + total) * d, (h + 1) * capacity * d);
        }
      }
      prefill.layer({
        layer: l,
        hidden,
        count: S,
        cos,
        sin,
        keys: keys[l],
        values: values[l],
        capacity,
        used: past,
        ...(valid ? { headMask: valid[l] } : {}),
        ...(queries ? { queries: queries[l], queryRows: w } : {}),
      });
      post({ id: request.id, type: 'progress', stage: 'prefill', completed: Math.round(((l + 1) / numLayers) * S), total: S });
      // Let a 'cancel' message in between layers.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    releaseArrays(keys);
    releaseArrays(values);
    releaseTransients(hidden, cos, sin);
    throw error;
  }
  const all = request.logits === 'all';
  const logits = new Float32Array(all ? S * vocabSize : vocabSize);
  try {
    prefill.head(all ? hidden : hidden.subarray((S - 1) * D), all ? S : 1, logits);
  } finally {
    releaseTransients(hidden, cos, sin);
  }
  let handle: number;
  if (valid) {
    handle = store({ keys, values, length: total, valid });
  } else {
    // A one-row in-place batch: read as any cache (materialize moves it back to the dense layout in place).
    const mask = new Uint8Array(capacity);
    mask.fill(1, 0, total);
    const batch: ResidentBatch = { keys, values, rows: 1, total: capacity, used: total, mask, counts: [total], live: 1 };
    handle = residentHandle(batch, 0);
  }
  const transfer: ArrayBuffer[] = [logits.buffer as ArrayBuffer];
  if (queries) for (const q of queries) transfer.push(q.buffer as ArrayBuffer);
  return { result: { cache: handle, length: total, logits, ...(queries ? { queries } : {}) }, transfer };
}

/**
 * A single-token step on a cache padded per KV head (ragged: AdaKV, PyramidKV) by the native decoder, which masks
 * each head's padding itself (`headMasks`). The step writes into new arrays with one free column per head, as the
 * ORT path does (the base cache stays as it was for its own handle).
 */
function nativePaddedStep(request: Extract<WorkerRequest, { type: 'forward' }>, base: CacheEntry): { result: ForwardResult; transfer: ArrayBuffer[] } {
  const s = state as State;
  const native = s.native as NonNullable<State['native']>;
  const { numKvHeads: hkv, headDim: d, vocabSize } = s.init;
  const past = base.length;
  const total = past + 1;
  const held: KvArray[] = [];
  const widen = (a: KvArray): KvArray => {
    const out = s.pool.alloc(hkv * total * d);
    held.push(out);
    for (let h = 0; h < hkv; h++) {
      out.set(a.subarray(h * past * d, (h + 1) * past * d) as never, h * total * d);
      out.fill(0, (h * total + past) * d, (h + 1) * total * d);
    }
    return out;
  };
  try {
    const keys = base.keys.map(widen);
    const values = base.values.map(widen);
    const valid = (base.valid as Uint8Array[]).map((v) => appendValid(v, hkv, past, 1));
    const logits = new Float32Array(vocabSize);
    native.decoder.step([
      { token: request.inputIds[0], ...native.rope.at(request.positionIds[0]), keys, values, capacity: total, used: past, headMasks: valid, logits },
    ]);
    batchCounts.nativeSteps++;
    const cache = store({ keys, values, length: total, valid });
    return { result: { cache, length: total, logits }, transfer: [logits.buffer as ArrayBuffer] };
  } catch (error) {
    releaseArrays(held);
    throw error;
  }
}

/** Tokens at positions a few steps in, run by ORT (one call) and by the decoder (one step each). */
const CHECK_POSITIONS = [5, 6, 7];

/** ORT's last logits of the check prompt (CHECK_POSITIONS), which the native engine must reproduce. */
async function checkLogitsOfOrt(s: State): Promise<Float32Array> {
  const { numLayers, numHeads, numKvHeads, headDim: d, vocabSize } = s.init;
  const n = CHECK_POSITIONS.length;
  const feeds: Record<string, Tensor> = {
    input_ids: i64(checkTokens(vocabSize), [1, n]),
    position_ids: i64(CHECK_POSITIONS, [1, n]),
  };
  if (s.hasAttentionMask) feeds.attention_mask = i64(new Int32Array(n).fill(1), [1, n]);
  if (s.hasNumLogitsToKeep) feeds.num_logits_to_keep = i64([1], []);
  if (s.keyBiasInputs) for (const name of s.keyBiasInputs) feeds[name] = new ort.Tensor('float32', new Float32Array(numHeads * n), [1, numHeads, 1, n]);
  const empty = () => (s.kvType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, numKvHeads, 0, d]) : new ort.Tensor('float32', new Float32Array(0), [1, numKvHeads, 0, d]));
  for (let l = 0; l < numLayers; l++) {
    feeds[`past_key_values.${l}.key`] = empty();
    feeds[`past_key_values.${l}.value`] = empty();
  }
  const out = await s.session.run(feeds, { logits: null });
  const all = floats(out.logits);
  return all.slice(all.length - vocabSize);
}

const checkTokens = (vocabSize: number): number[] => CHECK_POSITIONS.map((_, i) => (i * 7 + 1) % vocabSize);

/**
 * Proves the decoder computes what the graph computes before it decodes anything: the last logits of a short
 * prompt from ORT (`expected`) and from native steps (and the native prefill, when it is to run prefills) must
 * agree to 1e-3 of their scale (1e-2 with float16 caches). Returns the largest difference.
 */
function checkNativeDecoder(s: State, expected: Float32Array): number {
  const native = s.native as NonNullable<State['native']>;
  const { numLayers, numKvHeads, headDim: d, vocabSize } = s.init;
  const n = CHECK_POSITIONS.length;
  const ids = checkTokens(vocabSize);
  const capacity = n + 1;
  const Kv = native.decoder.kvDtype === 'float16' ? Uint16Array : Float32Array;
  const keys = Array.from({ length: numLayers }, () => new Kv(numKvHeads * capacity * d));
  const values = Array.from({ length: numLayers }, () => new Kv(numKvHeads * capacity * d));
  const logits = new Float32Array(vocabSize);
  CHECK_POSITIONS.forEach((position, used) => {
    native.decoder.step([{ token: ids[used], ...native.rope.at(position), keys, values, capacity, used, logits }]);
  });
  // The native prefill of the same tokens, when it is to run prefills.
  const prefilled = new Float32Array(vocabSize);
  if (s.nativePrefill) {
    const hidden = new Float32Array(n * native.hiddenSize);
    s.nativePrefill.embed(Int32Array.from(ids), hidden);
    const { cos, sin } = ropeRows(native, Int32Array.from(CHECK_POSITIONS), d);
    for (let l = 0; l < numLayers; l++) {
      s.nativePrefill.layer({ layer: l, hidden, count: n, cos, sin, keys: new Kv(numKvHeads * n * d), values: new Kv(numKvHeads * n * d), capacity: n, used: 0 });
    }
    s.nativePrefill.head(hidden.subarray((n - 1) * native.hiddenSize), 1, prefilled);
  }
  let error = 0;
  let prefillError = 0;
  let scale = 1;
  // Half-precision caches round every K/V (about 2^-11 relative), which moves logits by up to ~1e-3 of their scale
  // on small random models; wrong maths under the same weight names moves them by the scale itself.
  // A float16 graph (float16 weights) has ORT round every activation to half precision too, where the engine keeps
  // them in float32: measured 5e-4 (tiny-llama) and 2.7e-3 (perf model) of the scale (docs/decisions/2026-12-07-native-f16-weights.md).
  const tolerance = native.decoder.weightDtype === 'float16' ? 5e-2 : native.decoder.kvDtype === 'float16' ? 1e-2 : 1e-3;
  for (let i = 0; i < vocabSize; i++) {
    error = Math.max(error, Math.abs(logits[i] - expected[i]));
    if (s.nativePrefill) prefillError = Math.max(prefillError, Math.abs(prefilled[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  if (!(error <= tolerance * scale)) {
    throw new WorkerError(
      'UNSUPPORTED_CAPABILITY',
      `${s.init.modelPath} cannot decode with the native engine '${native.name}': its logits differ from the graph's by ${error.toPrecision(3)} (scale ${scale.toPrecision(3)}), so the graph computes something else under these weight names. Load it without decodeEngine: 'native'.`,
      { capability: 'nativeDecode', component: "loadModel({ decodeEngine: 'native' })", backend: native.name },
    );
  }
  if (!(prefillError <= tolerance * scale)) {
    throw new WorkerError(
      'UNSUPPORTED_CAPABILITY',
      `${s.init.modelPath} cannot prefill with the native engine '${native.name}': its prefill's logits differ from the graph's by ${prefillError.toPrecision(3)} (scale ${scale.toPrecision(3)}) while its decode steps agree. Load it without prefillEngine: 'native'.`,
      { capability: 'nativePrefill', component: "loadModel({ prefillEngine: 'native' })", backend: native.name },
    );
  }
  return Math.max(error, prefillError);
}

async function forward(request: Extract<WorkerRequest, { type: 'forward' }>): Promise<{ result: ForwardResult; transfer: ArrayBuffer[] }> {
  const s = state;
  if (!s) throw new WorkerError('INTERNAL', 'Worker not initialised.');
  const { numLayers, numHeads, numKvHeads, headDim: d, vocabSize } = s.init;
  const empty = (): KvArray => (s.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0));
  const base: CacheEntry =
    request.cache === null ? { keys: Array.from({ length: numLayers }, empty), values: Array.from({ length: numLayers }, empty), length: 0 } : getCache(request.cache);
  const ids = request.inputIds;
  const positions = request.positionIds;
  const S = ids.length;
  if (s.native && base.valid && S === 1 && request.captureQueries === 0 && request.logits === 'last' && !request.debugOutputs?.length) {
    return nativePaddedStep(request, base);
  }
  if (s.nativePrefill && !request.debugOutputs?.length) return nativeForward(request, base);
  if (s.init.kvStorage === 'float16') {
    throw new WorkerError('UNSUPPORTED_CAPABILITY', 'debugOutputs run the ORT graph, which reads float32 caches; load the model without kvStorage: \'float16\' to inspect them.', {
      capability: 'debugOutputs',
      component: 'forward',
    });
  }
  if (base.valid && !s.keyBiasInputs) {
    // Padded per head by the native engine alone: the graph has no key bias to mask the padding.
    throw new WorkerError('UNSUPPORTED_CAPABILITY', 'This cache is padded per KV head and the graph has no key bias to mask it; load the model with raggedCache: true.', { capability: 'raggedKvHeads', component: 'forward' });
  }
  const chunk = Math.max(1, Math.min(request.chunkSize, S));
  const w = request.captureQueries;
  const windowStart = S - w;
  const queries = w > 0 ? Array.from({ length: numLayers }, () => new Float32Array(numHeads * w * d)) : undefined;
  const logits = new Float32Array(request.logits === 'all' ? S * vocabSize : vocabSize);
  let keys = base.keys;
  let values = base.values;
  let past = base.length;
  let valid = base.valid;
  let debug: ForwardResult['debug'];
  // Arrays this call allocated and still holds (the base cache's stay with it).
  let own = false;
  try {
  for (let c0 = 0, c1 = 0; c0 < S; c0 = c1) {
    if (cancelled.has(request.id)) throw new WorkerError('ABORTED', 'The operation was aborted.');
    c1 = Math.min(S, c0 + chunk);
    if (past === 0 && s.pattern === 'gqa') {
      // GroupQueryAttention without a past rotates token j at position_ids[0] + j (only the first id is read):
      // end the first chunk where positions stop being contiguous; later chunks have a past and are exact.
      let end = c0 + 1;
      while (end < c1 && positions[end] === positions[end - 1] + 1) end++;
      c1 = end;
    }
    const n = c1 - c0;
    const feeds: Record<string, Tensor> = {
      input_ids: i64(ids.subarray(c0, c1), [1, n]),
      position_ids: i64(positions.subarray(c0, c1), [1, n]),
    };
    if (s.hasAttentionMask) feeds.attention_mask = i64(new Int32Array(past + n).fill(1), [1, past + n]);
    if (s.hasNumLogitsToKeep) feeds.num_logits_to_keep = i64([request.logits === 'all' ? n : 1], []);
    if (s.keyBiasInputs) {
      for (let l = 0; l < numLayers; l++) feeds[s.keyBiasInputs[l]] = new ort.Tensor('float32', keyBias(valid?.[l], numHeads, numKvHeads, past, n), [1, numHeads, 1, past + n]);
    }
    for (let l = 0; l < numLayers; l++) {
      feeds[`past_key_values.${l}.key`] = new ort.Tensor(s.kvType, keys[l], [1, numKvHeads, past, d]);
      feeds[`past_key_values.${l}.value`] = new ort.Tensor(s.kvType, values[l], [1, numKvHeads, past, d]);
    }
    const fetches: Record<string, Tensor | null> = { logits: null };
    const nextKeys: KvArray[] = [];
    const nextValues: KvArray[] = [];
    if (s.newKv) {
      // Only the new rows leave ORT (the binding copies every fetched output into fresh memory); the next past
      // is assembled after the run, one layer at a time (see below).
      for (const rows of s.newKv) fetches[rows.key] = fetches[rows.value] = null;
    } else {
      // Presents are written by ORT straight into pooled arrays (no copy into fresh JS arrays per step).
      try {
        for (let l = 0; l < numLayers; l++) {
          const k = s.pool.alloc(numKvHeads * (past + n) * d);
          nextKeys.push(k);
          const v = s.pool.alloc(numKvHeads * (past + n) * d);
          nextValues.push(v);
          fetches[`present.${l}.key`] = new ort.Tensor(s.kvType, k, [1, numKvHeads, past + n, d]);
          fetches[`present.${l}.value`] = new ort.Tensor(s.kvType, v, [1, numKvHeads, past + n, d]);
        }
      } catch (error) {
        releaseArrays(nextKeys);
        releaseArrays(nextValues);
        throw error;
      }
    }
    const captureHere = queries !== undefined && c1 > windowStart;
    if (captureHere) for (const c of s.captures) if (!(c.output in fetches)) fetches[c.output] = null;
    for (const name of request.debugOutputs ?? []) if (!(name in fetches)) fetches[name] = null;
    let out: Record<string, Tensor>;
    try {
      out = await s.session.run(feeds, fetches);
    } catch (error) {
      releaseArrays(nextKeys);
      releaseArrays(nextValues);
      throw error;
    }
    if (s.newKv) {
      // Layer by layer, the next past is allocated and the old one freed at once, so the chunk never holds a
      // second all-layer copy of the cache (the KV allocator's peak is one cache plus one layer's). The base
      // cache's arrays and lists stay untouched: the call grows lists of its own.
      const grownKeys = keys.slice();
      const grownValues = values.slice();
      try {
        for (let l = 0; l < numLayers; l++) {
          for (const [list, rows] of [[grownKeys, s.newKv[l].key], [grownValues, s.newKv[l].value]] as const) {
            list[l] = growRows(list[l], out[rows].data as KvArray, own, numKvHeads, past, n, d);
          }
        }
      } catch (error) {
        // Free what this call holds: every grown array, and the old pasts it owned that were not replaced yet.
        for (const [grown, old] of [[grownKeys, keys], [grownValues, values]] as const) {
          grown.forEach((a, l) => {
            if (a !== old[l] || own) s.pool.release(a);
          });
        }
        own = false;
        throw error;
      }
      keys = grownKeys;
      values = grownValues;
    } else {
      // The previous chunk's presents are this chunk's pasts: free now, reused by a later chunk or step.
      if (own) {
        releaseArrays(keys);
        releaseArrays(values);
      }
      keys = nextKeys;
      values = nextValues;
    }
    own = true;
    if (valid) valid = valid.map((v) => appendValid(v, numKvHeads, past, n));
    past += n;
    const rows = out.logits.dims[1] as number;
    const take = request.logits === 'all' ? n : c1 === S ? 1 : 0;
    if (take > 0) {
      // float16 logits: only the rows kept are converted.
      const rowsKept = (out.logits.data as KvArray).subarray((rows - take) * vocabSize, rows * vocabSize);
      logits.set(rowsKept instanceof Uint16Array ? halfToFloat32(rowsKept) : rowsKept, request.logits === 'all' ? c0 * vocabSize : 0);
    }
    if (captureHere && queries) {
      for (const c of s.captures) copyQueries(c, out[c.output], queries[c.layer], c0, windowStart, w, positions, s);
    }
    if (request.debugOutputs?.length) {
      debug = {};
      for (const name of request.debugOutputs) debug[name] = { data: Float32Array.from(floats(out[name])), dims: out[name].dims.map(Number) };
    }
    post({ id: request.id, type: 'progress', stage: 'prefill', completed: c1, total: S });
    // Let a 'cancel' message in between chunks.
    if (c1 < S) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  } catch (error) {
    if (own) {
      releaseArrays(keys);
      releaseArrays(values);
    }
    throw error;
  }
  const handle = store({ keys, values, length: past, ...(valid ? { valid } : {}) });
  const transfer: ArrayBuffer[] = [logits.buffer as ArrayBuffer];
  if (queries) for (const q of queries) transfer.push(q.buffer as ArrayBuffer);
  return { result: { cache: handle, length: past, logits, ...(queries ? { queries } : {}), ...(debug ? { debug } : {}) }, transfer };
}

function gather(request: Extract<WorkerRequest, { type: 'gather' }>): number {
  const s = state as State;
  const { numKvHeads, headDim: d } = s.init;
  const entry = getCache(request.cache);
  let count = 0;
  let ragged = false;
  for (const layer of request.kept) for (const idx of layer) count = Math.max(count, idx.length);
  for (const layer of request.kept) for (const idx of layer) ragged ||= idx.length !== count;
  const valid = ragged
    ? request.kept.map((layer) => {
        const v = new Uint8Array(numKvHeads * count);
        for (let h = 0; h < numKvHeads; h++) v.fill(1, h * count, h * count + layer[h].length);
        return v;
      })
    : undefined;
  const sources = [...entry.keys, ...entry.values];
  const kept = (i: number) => request.kept[i % entry.keys.length];
  const size = numKvHeads * count * d;
  if (request.consume && caches.get(request.cache)?.packed) {
    // Its padded form is transient: gather from it, then free the packed arrays.
    const handle = gather({ ...request, consume: false });
    releaseEntry(request.cache);
    return handle;
  }
  if (request.consume) {
    caches.delete(request.cache);
    const out = consumeGather(sources, kept, entry.length, count);
    const L = entry.keys.length;
    return store({ keys: out.slice(0, L), values: out.slice(L), length: count, ...(valid ? { valid } : {}) });
  }
  // Kept slots first, padding (zeros, marked invalid) after: one slot count for every (layer, KV head).
  const out = sources.map((t, i) => {
    const o = s.pool.alloc(size); // compactRows writes every slot, padding included
    compactRows(t, entry.length, kept(i), count, o, 0);
    return o;
  });
  const L = entry.keys.length;
  return store({ keys: out.slice(0, L), values: out.slice(L), length: count, ...(valid ? { valid } : {}) });
}

/**
 * Writes the kept rows of `src` ((Hkv, length, d)) as (Hkv, count, d) into `dst` from element `at`, padding
 * zeroed. `dst` may be `src` itself with `at` 0: every row moves to an offset at or below its own, in order.
 */
function compactRows(src: KvArray, length: number, kept: readonly Int32Array[], count: number, dst: KvArray, at: number): void {
  const d = (state as State).init.headDim;
  kept.forEach((idx, h) => {
    for (let j = 0; j < idx.length; j++) {
      const from = (h * length + idx[j]) * d;
      const to = at + (h * count + j) * d;
      if (dst === src) dst.copyWithin(to, from, from + d);
      else dst.set(src.subarray(from, from + d) as never, to);
    }
    dst.fill(0, at + (h * count + idx.length) * d, at + (h + 1) * count * d);
  });
}

/**
 * A gather whose source goes away (`consume`): every result array is allocated only after a source array was
 * released, so the allocator never holds the whole source and a whole result at once — a compressed run peaks no
 * higher than the full-KV run of the same prompt. The first source array is compacted in place and lends its
 * spare room as staging for the others (copy out, release the source, allocate, copy in); it is copied out last.
 * Falls back to allocate-then-release when that array has no room for the staging.
 */
function consumeGather(sources: KvArray[], kept: (i: number) => readonly Int32Array[], length: number, count: number): KvArray[] {
  const s = state as State;
  const { numKvHeads, headDim: d } = s.init;
  const size = numKvHeads * count * d;
  const first = sources[0];
  const room = (first.buffer.byteLength - first.byteOffset) / first.BYTES_PER_ELEMENT;
  const out: KvArray[] = new Array(sources.length);
  if (room < 2 * size || !s.pool.exclusive(first) || new Set(sources.map((a) => a.buffer)).size !== sources.length) {
    sources.forEach((t, i) => {
      out[i] = s.pool.alloc(size);
      compactRows(t, length, kept(i), count, out[i], 0);
      s.pool.release(t);
    });
    return out;
  }
  const wide = first instanceof Uint16Array ? new Uint16Array(first.buffer, first.byteOffset, room) : new Float32Array(first.buffer, first.byteOffset, room);
  compactRows(first, length, kept(0), count, wide, 0);
  for (let i = 1; i < sources.length; i++) {
    compactRows(sources[i], length, kept(i), count, wide, size);
    s.pool.release(sources[i]);
    out[i] = s.pool.alloc(size);
    out[i].set(wide.subarray(size, 2 * size) as never);
  }
  out[0] = s.pool.alloc(size);
  out[0].set(wide.subarray(0, size) as never);
  s.pool.release(first);
  return out;
}

/** A 'prefillSelect' waiting for the main thread's kept indices of its current layer. */
const keptWaiters = new Map<number, { resolve: (reply: { layer: number; kept: Int32Array[] }) => void; reject: (error: unknown) => void }>();

function waitKept(requestId: number): Promise<{ layer: number; kept: Int32Array[] }> {
  return new Promise((resolve, reject) => {
    if (cancelled.has(requestId)) reject(new WorkerError('ABORTED', 'The operation was aborted.'));
    else keptWaiters.set(requestId, { resolve, reject });
  }).finally(() => keptWaiters.delete(requestId)) as Promise<{ layer: number; kept: Int32Array[] }>;
}

/** Chunk boundaries of a prefill from an empty cache (GroupQueryAttention: see `forward`). */
function chunkBounds(positions: Int32Array, chunk: number, pattern: AttentionPattern): [number, number][] {
  const S = positions.length;
  const bounds: [number, number][] = [];
  for (let c0 = 0, c1 = 0; c0 < S; c0 = c1) {
    c1 = Math.min(S, c0 + chunk);
    if (c0 === 0 && pattern === 'gqa') {
      let end = 1;
      while (end < c1 && positions[end] === positions[end - 1] + 1) end++;
      c1 = end;
    }
    bounds.push([c0, c1]);
  }
  return bounds;
}

/**
 * Layer-wise prefill with selection in the loop: the prelude over every chunk, then layer by layer every chunk
 * of that layer (its past grows chunk by chunk), its keys and window queries to the main thread, and only the
 * kept entries stay. At most one layer's full KV (plus the chunk's present) is ever allocated; what travels
 * between layers is each chunk's hidden state and projections.
 */
async function prefillSelect(request: Extract<WorkerRequest, { type: 'prefillSelect' }>): Promise<{ cache: number; packed?: boolean }> {
  const s = state as State;
  if (s.nativePrefill) return nativePrefillSelect(request);
  const layered = s.layered;
  if (!layered) throw new WorkerError('UNSUPPORTED_CAPABILITY', 'Layer-wise prefill needs a model loaded with layerwise: true.', { capability: 'layerwisePrefill', component: 'prefillSelect' });
  const { numLayers, numHeads, numKvHeads, headDim: d } = s.init;
  const ids = request.inputIds;
  const positions = request.positionIds;
  const S = ids.length;
  const w = request.captureQueries;
  const windowStart = S - w;
  const bounds = chunkBounds(positions, Math.max(1, Math.min(request.chunkSize, S)), s.pattern);
  const queries = Array.from({ length: numLayers }, () => new Float32Array(numHeads * w * d));
  // Last segment reading each crossing tensor: it is dropped after that.
  const lastReader = new Map<string, number>();
  layered.segments.forEach((seg, i) => {
    for (const name of seg.inputs) if (layered.isCrossing(name)) lastReader.set(name, i);
  });
  const carried: Map<string, Tensor>[] = bounds.map(() => new Map());
  const kept: KeptLayer[] = [];
  const held: KvArray[] = [];
  const totalSteps = layered.segments.length * bounds.length;
  let step = 0;
  try {
    for (let si = 0; si < layered.segments.length; si++) {
      const seg = layered.segments[si];
      const layer = seg.layer;
      const empty = (): KvArray => (s.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0));
      let pastK = empty();
      let pastV = empty();
      let past = 0;
      for (let c = 0; c < bounds.length; c++) {
        if (cancelled.has(request.id)) throw new WorkerError('ABORTED', 'The operation was aborted.');
        const [c0, c1] = bounds[c];
        const n = c1 - c0;
        const tensors = new Map(carried[c]);
        tensors.set('input_ids', i64(ids.subarray(c0, c1), [1, n]));
        tensors.set('position_ids', i64(positions.subarray(c0, c1), [1, n]));
        if (s.hasAttentionMask) tensors.set('attention_mask', i64(new Int32Array(c0 + n).fill(1), [1, c0 + n]));
        if (s.hasNumLogitsToKeep) tensors.set('num_logits_to_keep', i64([1], []));
        if (layer >= 0) {
          if (s.keyBiasInputs) tensors.set(s.keyBiasInputs[layer], new ort.Tensor('float32', new Float32Array(numHeads * (past + n)), [1, numHeads, 1, past + n]));
          tensors.set(`past_key_values.${layer}.key`, new ort.Tensor(s.kvType, pastK, [1, numKvHeads, past, d]));
          tensors.set(`past_key_values.${layer}.value`, new ort.Tensor(s.kvType, pastV, [1, numKvHeads, past, d]));
        }
        const fetches: Record<string, Tensor | null> = {};
        let nextK: KvArray | undefined;
        let nextV: KvArray | undefined;
        if (layer >= 0) {
          nextK = s.pool.alloc(numKvHeads * (past + n) * d);
          held.push(nextK);
          nextV = s.pool.alloc(numKvHeads * (past + n) * d);
          held.push(nextV);
          fetches[`present.${layer}.key`] = new ort.Tensor(s.kvType, nextK, [1, numKvHeads, past + n, d]);
          fetches[`present.${layer}.value`] = new ort.Tensor(s.kvType, nextV, [1, numKvHeads, past + n, d]);
        }
        const captureHere = w > 0 && c1 > windowStart;
        const captures = captureHere ? s.captures.filter((cap) => seg.outputs.includes(cap.output)) : [];
        for (const cap of captures) fetches[cap.output] = null;
        for (const name of seg.outputs) if (layered.isCrossing(name)) fetches[name] = null;
        const out = await seg.session.run(layered.feedsFor(seg, tensors), fetches);
        for (const cap of captures) copyQueries(cap, out[cap.output], queries[cap.layer], c0, windowStart, w, positions, s);
        const next = new Map<string, Tensor>();
        for (const [name, t] of carried[c]) if ((lastReader.get(name) ?? -1) > si) next.set(name, t);
        for (const name of seg.outputs) if (layered.isCrossing(name)) next.set(name, out[name]);
        carried[c] = next;
        if (layer >= 0 && nextK && nextV) {
          releaseHeld(held, pastK);
          releaseHeld(held, pastV);
          pastK = nextK;
          pastV = nextV;
          past += n;
        }
        post({ id: request.id, type: 'progress', stage: 'prefill', completed: ++step, total: totalSteps });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (layer < 0) continue;
      const windowQueries = queries[layer];
      queries[layer] = new Float32Array(0);
      kept.push(await keepLayer(request.id, layer, pastK, pastV, past, windowQueries, held));
    }
  } catch (error) {
    releaseArrays(held.splice(0));
    throw error;
  }
  return storeKept(kept, held);
}

/**
 * Layer-wise prefill by the native engine: the hidden states of every token go through one layer at a time,
 * that layer's full KV lives only until the policy has chosen what it keeps (decision record
 * 2026-12-06-native-prefill.md). No ORT session, no graph segments.
 */
async function nativePrefillSelect(request: Extract<WorkerRequest, { type: 'prefillSelect' }>): Promise<{ cache: number; packed?: boolean }> {
  const s = state as State;
  const native = s.native as NonNullable<State['native']>;
  const prefill = s.nativePrefill as NativePrefillV1;
  const { numLayers, numHeads, numKvHeads: hkv, headDim: d } = s.init;
  const S = request.inputIds.length;
  const w = request.captureQueries;
  const hidden = new Float32Array(S * native.hiddenSize);
  prefill.embed(request.inputIds, hidden);
  const { cos, sin } = ropeRows(native, request.positionIds, d);
  const kept: KeptLayer[] = [];
  const held: KvArray[] = [];
  try {
    for (let layer = 0; layer < numLayers; layer++) {
      if (cancelled.has(request.id)) throw new WorkerError('ABORTED', 'The operation was aborted.');
      const keys = s.pool.alloc(hkv * S * d);
      held.push(keys);
      const values = s.pool.alloc(hkv * S * d);
      held.push(values);
      const queries = new Float32Array(numHeads * w * d);
      prefill.layer({ layer, hidden, count: S, cos, sin, keys, values, capacity: S, used: 0, queries, queryRows: w });
      post({ id: request.id, type: 'progress', stage: 'prefill', completed: layer + 1, total: numLayers });
      kept.push(await keepLayer(request.id, layer, keys, values, S, queries, held));
    }
  } catch (error) {
    releaseArrays(held.splice(0));
    throw error;
  } finally {
    releaseTransients(hidden, cos, sin);
  }
  return storeKept(kept, held);
}

/** One layer's kept entries, (numKvHeads, max count, d) with each head's count. */
interface KeptLayer {
  keys: KvArray;
  values: KvArray;
  counts: number[];
}

/**
 * This layer's selection, made by the main thread's policy on its keys and window queries: only the kept
 * entries are copied out, and the layer's full KV (`pastK`, `pastV`, held) is freed.
 */
async function keepLayer(requestId: number, layer: number, pastK: KvArray, pastV: KvArray, past: number, windowQueries: Float32Array, held: KvArray[]): Promise<KeptLayer> {
  const s = state as State;
  const { numKvHeads, headDim: d } = s.init;
  const asFloat = (t: KvArray): Float32Array => (t instanceof Uint16Array ? halfToFloat32(t) : Float32Array.from(t));
  const keys = asFloat(pastK);
  const waiting = waitKept(requestId);
  post({ id: requestId, type: 'layer', layer, keys, queries: windowQueries }, [keys.buffer as ArrayBuffer, windowQueries.buffer as ArrayBuffer]);
  const reply = await waiting;
  if (reply.layer !== layer || reply.kept.length !== numKvHeads) throw new WorkerError('INTERNAL', `Kept indices for layer ${reply.layer} (${reply.kept.length} heads) while layer ${layer} waits.`);
  const counts = reply.kept.map((idx) => idx.length);
  const count = Math.max(0, ...counts);
  const select = (t: KvArray): KvArray => {
    const outArr = allocZeroed(numKvHeads * count * d);
    held.push(outArr);
    for (let h = 0; h < numKvHeads; h++) {
      const idx = reply.kept[h];
      for (let j = 0; j < idx.length; j++) {
        if (!(idx[j] >= 0 && idx[j] < past)) throw new WorkerError('INVALID_ARGUMENT', `Kept index ${idx[j]} of layer ${layer} head ${h} is outside [0, ${past}).`);
        const src = (h * past + idx[j]) * d;
        outArr.set(t.subarray(src, src + d), (h * count + j) * d);
      }
    }
    return outArr;
  };
  const result = { keys: select(pastK), values: select(pastV), counts };
  releaseHeld(held, pastK);
  releaseHeld(held, pastV);
  return result;
}

/**
 * The kept layers as one cache: with the native engine and counts that differ, each KV head holds exactly its
 * entries (packed); otherwise one slot count for every layer, shorter layers and heads padded and masked.
 */
function storeKept(kept: KeptLayer[], held: KvArray[]): { cache: number; packed?: boolean } {
  const s = state as State;
  const { numKvHeads, headDim: d } = s.init;
  const total = Math.max(...kept.map((k) => Math.max(0, ...k.counts)));
  const ragged = kept.some((k) => k.counts.some((v) => v !== total));
  if (ragged && s.nativePrefill) {
    try {
      const base = kept.map((k) => Int32Array.from(k.counts));
      const packed = packHeads(base, (which, l, h) => {
        const src = which === 0 ? kept[l].keys : kept[l].values;
        const count = Math.max(0, ...kept[l].counts);
        return src.subarray(h * count * d, (h * count + kept[l].counts[h]) * d);
      });
      releaseArrays(held.splice(0));
      const writer = { handle: -1 };
      writer.handle = store({ keys: packed.keys, values: packed.values, length: total, packed: { offsets: packed.offsets, caps: packed.caps, base, tail: 0, writer } });
      return { cache: writer.handle, packed: true };
    } catch (error) {
      releaseArrays(held.splice(0));
      throw error;
    }
  }
  if (ragged && !s.keyBiasInputs && !s.nativePrefill) {
    releaseArrays(held.splice(0));
    throw new WorkerError('UNSUPPORTED_CAPABILITY', 'Kept counts differ between layers or KV heads; load the model with raggedCache: true.', { capability: 'raggedKvHeads', component: 'prefillSelect' });
  }
  const widen = (t: KvArray, count: number): KvArray => {
    if (count === total) return t;
    const outArr = allocZeroed(numKvHeads * total * d);
    for (let h = 0; h < numKvHeads; h++) outArr.set(t.subarray(h * count * d, (h + 1) * count * d), h * total * d);
    s.pool.release(t);
    return outArr;
  };
  const keys = kept.map((k) => widen(k.keys, Math.max(0, ...k.counts)));
  const values = kept.map((k) => widen(k.values, Math.max(0, ...k.counts)));
  const valid = ragged
    ? kept.map((k) => {
        const v = new Uint8Array(numKvHeads * total);
        for (let h = 0; h < numKvHeads; h++) v.fill(1, h * total, h * total + k.counts[h]);
        return v;
      })
    : undefined;
  return { cache: store({ keys, values, length: total, ...(valid ? { valid } : {}) }) };
}

/** Writes (Hkv, past, d) `past` followed by (Hkv, n, d) `rows` into `out`, (Hkv, past + n, d). */
function appendRows(past: KvArray, rows: KvArray, out: KvArray, numKvHeads: number, pastLength: number, n: number, d: number): void {
  for (let h = 0; h < numKvHeads; h++) {
    const dst = h * (pastLength + n) * d;
    out.set(past.subarray(h * pastLength * d, (h + 1) * pastLength * d) as never, dst);
    out.set(rows.subarray(h * n * d, (h + 1) * n * d) as never, dst + pastLength * d);
  }
}

/**
 * `past` ([Hkv, pastLength, d]) with `rows` ([Hkv, n, d]) appended. An array the call owns grows inside its own
 * buffer when the pool gave it room (the pool rounds buffers up to max(32, tokens/16) more tokens): heads move
 * back to front, so no new array and no full copy. Otherwise a new array (the old one freed when owned).
 */
function growRows(past: KvArray, rows: KvArray, owned: boolean, numKvHeads: number, pastLength: number, n: number, d: number): KvArray {
  const length = numKvHeads * (pastLength + n) * d;
  if (owned && past.byteOffset + length * past.BYTES_PER_ELEMENT <= past.buffer.byteLength) {
    const out = past instanceof Uint16Array ? new Uint16Array(past.buffer, past.byteOffset, length) : new Float32Array(past.buffer, past.byteOffset, length);
    for (let h = numKvHeads - 1; h >= 1; h--) out.copyWithin(h * (pastLength + n) * d, h * pastLength * d, (h + 1) * pastLength * d);
    for (let h = 0; h < numKvHeads; h++) out.set(rows.subarray(h * n * d, (h + 1) * n * d) as never, h * (pastLength + n) * d + pastLength * d);
    return out;
  }
  const pool = (state as State).pool;
  const grown = pool.alloc(length);
  appendRows(past, rows, grown, numKvHeads, pastLength, n, d);
  if (owned) pool.release(past);
  return grown;
}

/** Releases `array` and forgets it in `held` (the arrays to free if the call fails). */
function releaseHeld(held: KvArray[], array: KvArray): void {
  const i = held.indexOf(array);
  if (i < 0) return;
  held.splice(i, 1);
  (state as State).pool.release(array);
}

/** Additive key bias (numHeads, 1, past + n): −3.4e38 at padding slots of the query head's KV head. */
function keyBias(valid: Uint8Array | undefined, numHeads: number, numKvHeads: number, past: number, n: number): Float32Array {
  const total = past + n;
  const bias = new Float32Array(numHeads * total);
  if (!valid) return bias;
  const group = numHeads / numKvHeads;
  for (let q = 0; q < numHeads; q++) {
    // repeat_kv expands KV heads kv-major: query head q reads KV head ⌊q / group⌋.
    const kv = Math.floor(q / group);
    for (let t = 0; t < past; t++) if (valid[kv * past + t] === 0) bias[q * total + t] = -3.4028234663852886e38;
  }
  return bias;
}

/** Validity after appending n real entries to every head. */
function appendValid(valid: Uint8Array, numKvHeads: number, past: number, n: number): Uint8Array {
  const out = new Uint8Array(numKvHeads * (past + n));
  for (let h = 0; h < numKvHeads; h++) {
    out.set(valid.subarray(h * past, (h + 1) * past), h * (past + n));
    out.fill(1, h * (past + n) + past, (h + 1) * (past + n));
  }
  return out;
}

function crop(request: Extract<WorkerRequest, { type: 'crop' }>): number {
  const s = state as State;
  const { numKvHeads, headDim: d } = s.init;
  const entry = getCache(request.cache);
  const n = request.length;
  const cut = (tensors: KvArray[]) =>
    tensors.map((t) => {
      const out = allocZeroed(numKvHeads * n * d);
      for (let h = 0; h < numKvHeads; h++) out.set(t.subarray(h * entry.length * d, (h * entry.length + n) * d), h * n * d);
      return out;
    });
  return store({ keys: cut(entry.keys), values: cut(entry.values), length: n });
}

/** Copies of every layer's tensors, in the graph's element type (document caches store them as they are). */
function exportKv(entry: CacheEntry, kvType: FloatType): { result: ExportedKv; transfer: ArrayBuffer[] } {
  if (entry.valid) throw new WorkerError('INVALID_ARGUMENT', 'A padded (ragged) cache cannot be exported; export a full prefill cache.');
  const keys = entry.keys.map((t) => t.slice());
  const values = entry.values.map((t) => t.slice());
  return { result: { kvType, length: entry.length, keys, values }, transfer: [...keys, ...values].map((t) => t.buffer as ArrayBuffer) };
}

/** A cache entry from stored tensors, checked against the graph's KV element type and shape. */
function importKv(request: Extract<WorkerRequest, { type: 'import' }>, s: State): CacheEntry {
  const { numLayers, numKvHeads, headDim } = s.init;
  const size = numKvHeads * request.length * headDim;
  const Type = s.kvType === 'float16' ? Uint16Array : Float32Array;
  for (const [name, tensors] of [['keys', request.keys], ['values', request.values]] as const) {
    if (tensors.length !== numLayers || tensors.some((t) => !(t instanceof Type) || t.length !== size)) {
      throw new WorkerError('INVALID_ARGUMENT', `Imported ${name} must be ${numLayers} ${s.kvType} tensors of ${size} elements (numKvHeads × length × headDim).`);
    }
  }
  // Copied into the KV allocator so imported caches are counted, pooled and released like computed ones.
  const adopt = (t: KvArray): KvArray => {
    const a = s.pool.alloc(t.length);
    a.set(t as never);
    return a;
  };
  return { keys: request.keys.map(adopt), values: request.values.map(adopt), length: request.length };
}

async function handle(request: WorkerRequest): Promise<void> {
  try {
    switch (request.type) {
      case 'init':
        post({ id: request.id, type: 'result', result: await init(request) });
        // Creating the session parsed the model and copied its weights: ~150 MiB freed on the perf model.
        heapFreed();
        return;
      case 'forward': {
        const { result, transfer } = await forward(request);
        post({ id: request.id, type: 'result', result }, transfer);
        if (request.inputIds.length >= HEAP_TRIM_MIN_TOKENS) heapFreed();
        return;
      }
      case 'gather':
        post({ id: request.id, type: 'result', result: gather(request) });
        return;
      case 'prefillSelect':
        post({ id: request.id, type: 'result', result: await prefillSelect(request) });
        heapFreed();
        return;
      case 'crop':
        post({ id: request.id, type: 'result', result: crop(request) });
        return;
      case 'clone': {
        // Entries are never mutated in place (every forward writes new arrays; a packed decode chain appends only
        // past every other handle's rows), so a clone may share them.
        if (residentRows.has(request.cache)) materialize(request.cache);
        const entry = caches.get(request.cache) ?? getCache(request.cache);
        for (const a of [...entry.keys, ...entry.values]) s().pool.retain(a);
        post({ id: request.id, type: 'result', result: store({ ...entry }) });
        return;
      }
      case 'read': {
        const entry = getCache(request.cache);
        const tensor = (request.which === 'key' ? entry.keys : entry.values)[request.layer];
        const valid = entry.valid?.[request.layer];
        // Policies read float32: float16 caches are converted here, on the copy that leaves the worker.
        const asFloat = (t: KvArray): Float32Array => (t instanceof Uint16Array ? halfToFloat32(t) : Float32Array.from(t));
        if (request.slots) {
          const data = asFloat(tensor);
          const mask = valid ? Uint8Array.from(valid) : new Uint8Array(s().init.numKvHeads * entry.length).fill(1);
          post({ id: request.id, type: 'result', result: { data, valid: mask, slots: entry.length } }, [data.buffer as ArrayBuffer, mask.buffer as ArrayBuffer]);
          return;
        }
        let copy: Float32Array;
        if (!valid) copy = asFloat(tensor);
        else {
          // Only real entries, head after head (the caller checked that every head has the same count).
          const d = s().init.headDim;
          let count = 0;
          for (const v of valid) count += v;
          copy = new Float32Array(count * d);
          let o = 0;
          for (let slot = 0; slot < valid.length; slot++) {
            if (valid[slot] === 0) continue;
            copy.set(asFloat(tensor.subarray(slot * d, (slot + 1) * d)), o);
            o += d;
          }
        }
        post({ id: request.id, type: 'result', result: copy }, [copy.buffer as ArrayBuffer]);
        return;
      }
      case 'kvStats': {
        const stats = s().pool.stats();
        if (request.resetPeak) s().pool.resetPeak();
        post({ id: request.id, type: 'result', result: stats });
        return;
      }
      case 'batchStats':
        post({ id: request.id, type: 'result', result: { ...batchCounts, maxDecodeBatch: s().maxDecodeBatch } });
        return;
      case 'sessionStats': {
        const result: Omit<SessionMemoryStats, 'heapTrims'> = { releaseMemoryWhenIdleMs: s().init.releaseMemoryWhenIdleMs ?? null, releases: idleRelease.count };
        post({ id: request.id, type: 'result', result });
        return;
      }
      case 'export': {
        const { result, transfer } = exportKv(getCache(request.cache), s().kvType);
        post({ id: request.id, type: 'result', result }, transfer);
        return;
      }
      case 'import':
        post({ id: request.id, type: 'result', result: store(importKv(request, s())) });
        return;
      default:
        throw new WorkerError('INTERNAL', `Unknown request type ${(request as { type: string }).type}.`);
    }
  } catch (error) {
    post({ id: request.id, type: 'error', error: serialize(error) });
  } finally {
    cancelled.delete(request.id);
    if (transient.length > 0) releaseArrays(transient.splice(0));
  }
}

/**
 * The KV of a batched step, kept as the next step's past ([B, Hkv, total, d] per layer) while its rows'
 * caches are live; `mask` ([B, total]) marks each row's real slots. A batch fetched as whole presents is
 * full (`used` = `total`); an in-place batch has free columns from `used` on, and each step writes its new
 * rows into column `used` (see stepInPlace).
 */
interface ResidentBatch {
  keys: KvArray[];
  values: KvArray[];
  rows: number;
  total: number;
  /** Columns written so far. */
  used: number;
  mask: Uint8Array;
  /** Real slots per row, as of `used`. */
  counts: number[];
  /** Row caches not yet released or copied out (of every step that shares these buffers). */
  live: number;
}

/**
 * A cache handle whose entry lives inside a resident batch (copied out on first other use): its row, the
 * columns that existed when it was made (`upTo`: later in-place steps write only past them) and its slots.
 */
interface ResidentRow {
  batch: ResidentBatch;
  row: number;
  upTo: number;
  count: number;
}

const residentRows = new Map<number, ResidentRow>();

function dropRow(batch: ResidentBatch): void {
  if (--batch.live > 0) return;
  releaseArrays(batch.keys);
  releaseArrays(batch.values);
}

/**
 * Copies a resident row out into its own cache entry (same handle). The only handle of a one-row batch, holding
 * every column written, takes the batch's buffers instead: each head moves down to the dense layout in place.
 */
function materialize(handle: number): void {
  const { batch, row, upTo, count } = residentRows.get(handle) as ResidentRow;
  const s = state as State;
  const shape = { numKvHeads: s.init.numKvHeads, headDim: s.init.headDim };
  const arrays = [...batch.keys, ...batch.values];
  if (batch.rows === 1 && batch.live === 1 && upTo === batch.used && count === upTo && arrays.every((a) => s.pool.exclusive(a))) {
    const { numKvHeads: hkv, headDim: d } = shape;
    const dense = (a: KvArray): KvArray => {
      // Front to back: head h's block moves down to h · count, over nothing not yet moved.
      for (let h = 1; h < hkv; h++) a.copyWithin(h * count * d, h * batch.total * d, (h * batch.total + count) * d);
      return widenedView(a, hkv * count * d);
    };
    caches.set(handle, { keys: batch.keys.map(dense), values: batch.values.map(dense), length: count });
    residentRows.delete(handle);
    batch.live = 0;
    return;
  }
  const out = (tensors: KvArray[]) =>
    tensors.map((t) => {
      const a = s.pool.alloc(shape.numKvHeads * count * shape.headDim);
      unpackLayerRow(t, batch.mask, row, batch.total, shape, a, upTo);
      return a;
    });
  caches.set(handle, { keys: out(batch.keys), values: out(batch.values), length: count });
  residentRows.delete(handle);
  dropRow(batch);
}

/** A new handle for row `row` of `batch` as it now stands (its columns written so far, its slot count). */
function residentHandle(batch: ResidentBatch, row: number): number {
  const handle = nextHandle++;
  residentRows.set(handle, { batch, row, upTo: batch.used, count: batch.counts[row] });
  return handle;
}

/** Past length of a step's cache, resident or not. */
function pastLength(handle: number): number {
  const resident = residentRows.get(handle);
  return resident ? resident.count : (caches.get(handle) as CacheEntry).length;
}

type ForwardRequest = Extract<WorkerRequest, { type: 'forward' }>;

/** A single-token step over an unpadded cache, without captures: may run batched with others. */
function batchable(request: WorkerRequest): request is ForwardRequest {
  if (request.type !== 'forward' || request.cache === null || request.inputIds.length !== 1) return false;
  if (request.captureQueries !== 0 || request.logits !== 'last' || (request.debugOutputs?.length ?? 0) > 0) return false;
  if (cancelled.has(request.id)) return false;
  if (residentRows.has(request.cache)) return true;
  const entry = caches.get(request.cache);
  // Packed caches step with the native engine, which reads each row's own storage (nativeStep).
  return entry !== undefined && entry.valid === undefined && (entry.packed === undefined || state?.native !== undefined);
}

/** How many batchable steps lead the queue (a batch never jumps over another kind of request). */
function batchableLead(limit: number): number {
  let n = 0;
  while (n < pending.length && n < limit && batchable(pending[n])) n++;
  return n;
}

/**
 * Sequences that stepped together send their next steps within microseconds to a few milliseconds of each
 * other (each goes through its own sampling on the main thread): wait, yielding to incoming messages, until
 * every live row of the last batch has its next step queued, or `waitMs` passes (a row whose sequence stopped
 * stepping without releasing its cache).
 */
async function gatherSteps(batch: ResidentBatch, limit: number, waitMs: number): Promise<void> {
  const deadline = performance.now() + waitMs;
  const expected = Math.min(batch.rows, batch.live, limit);
  const queued = () => {
    const lead = batchableLead(limit);
    let n = 0;
    for (let i = 0; i < lead; i++) if (residentRows.get((pending[i] as ForwardRequest).cache as number)?.batch === batch) n++;
    return n;
  };
  while (queued() < expected && performance.now() < deadline) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Groups the steps by length (groupByLength); a group that is exactly one resident batch, all of its rows, runs
 * on it as it is (row order), any other group is packed. So two batches that started apart (steps that
 * arrived a moment apart) merge into one on their next step instead of staying split.
 */
function planBatches(steps: ForwardRequest[]): { steps: ForwardRequest[]; resident?: ResidentBatch }[] {
  const s = state as State;
  const maxTokens = Math.floor(MAX_BATCH_TENSOR_BYTES / (s.init.numKvHeads * s.init.headDim * (s.kvType === 'float16' ? 2 : 4)));
  const groups = groupByLength(steps.map((step) => pastLength(step.cache as number)), maxTokens).map((indices) => indices.map((i) => steps[i]));
  return groups.map((group) => {
    const batch = residentRows.get(group[0].cache as number)?.batch;
    // Every row of the batch, each from its latest cache (an older handle of an in-place batch branches off:
    // it is packed anew). One row is never split for size: it is the lone, in-place step.
    const whole =
      batch !== undefined &&
      group.length === batch.rows &&
      (batch.rows === 1 || batch.rows * (batch.total + 1) <= maxTokens) &&
      group.every((step) => {
        const r = residentRows.get(step.cache as number);
        return r?.batch === batch && r.upTo === batch.used;
      });
    return whole ? { steps: group.sort((x, y) => rowOf(x) - rowOf(y)), resident: batch } : { steps: group };
  });
}

function rowOf(step: ForwardRequest): number {
  return (residentRows.get(step.cache as number) as { row: number }).row;
}

/** Runs pending requests one at a time; leading decode steps go in batches. */
async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  let ran = false;
  try {
    while (pending.length > 0) {
      if (isRun(pending[0])) ran = idleRelease.ranSince = true;
      const limit = state?.maxDecodeBatch ?? 1;
      if (state?.native && batchable(pending[0])) {
        if (expectedSteps.size > 1) await gatherNativeSteps(limit, state.batchGatherMs);
        // A cancel that came in while gathering leaves the step unbatchable: it goes alone and fails ABORTED.
        const lead = batchableLead(limit);
        if (lead > 0) {
          const steps = pending.splice(0, lead) as ForwardRequest[];
          await runAsCurrent(steps, () => nativeStep(steps));
        }
        continue;
      }
      if ((limit > 1 || state?.newKv) && batchable(pending[0])) {
        if (lastBatch && lastBatch.live > 1) await gatherSteps(lastBatch, limit, (state as State).batchGatherMs);
        const steps = pending.splice(0, Math.max(1, batchableLead(limit))) as ForwardRequest[];
        lastBatch = undefined;
        for (const plan of planBatches(steps)) {
          // A lone step runs as a one-row batch when it decodes in place, else through `forward`.
          if (plan.steps.length === 1 && !state?.newKv) {
            await runAsCurrent(plan.steps, () => handle(plan.steps[0]));
            continue;
          }
          if (plan.steps.length > 1) {
            batchCounts.batches++;
            batchCounts.rows += plan.steps.length;
          }
          await runAsCurrent(plan.steps, () => handleBatch(plan.steps, plan.resident));
        }
        continue;
      }
      const next = pending.shift() as WorkerRequest;
      await runAsCurrent([next], () => handle(next));
    }
  } finally {
    pumping = false;
  }
  scheduleIdleRelease(ran);
}

/**
 * `releaseMemoryWhenIdleMs`: ORT's CPU arena keeps the largest activations a session ever needed, and
 * onnxruntime-node offers no run option to shrink it. A draft runs once per request (prefill and lookahead) and
 * then idles for the target's whole prefill while holding that peak; releasing the session and creating it
 * again returns the memory. Caches live in JS and are untouched. Requests that arrive meanwhile wait in
 * `pending` (the release holds the pump).
 */
const idleRelease: { timer?: ReturnType<typeof setTimeout>; ranSince: boolean; count: number; error?: unknown } = { ranSince: false, count: 0 };

/** Requests that run the session; other requests (stats, reads) neither count as use nor postpone a release. */
const isRun = (request: WorkerRequest): boolean => request.type === 'forward' || request.type === 'prefillSelect';

/** After a pump: a run restarts the idle clock; otherwise a release that found the worker busy is re-armed. */
function scheduleIdleRelease(ran: boolean): void {
  const ms = state?.init.releaseMemoryWhenIdleMs;
  if (ms === undefined || !state?.createRunner || !idleRelease.ranSince || pending.length > 0) return;
  if (!ran && idleRelease.timer !== undefined) return;
  clearTimeout(idleRelease.timer);
  idleRelease.timer = setTimeout(() => void releaseIdleSession(), ms);
}

async function releaseIdleSession(): Promise<void> {
  idleRelease.timer = undefined;
  const s = state;
  if (!s?.createRunner || pumping || pumpScheduled || pending.length > 0) return;
  pumping = true;
  try {
    await s.session.release();
    s.pool.dropFree();
    if (!s.nativePrefill) {
      const next = await s.createRunner();
      s.session = next.session;
      if (next.layered) s.layered = next.layered;
    }
    idleRelease.ranSince = false;
    idleRelease.count++;
    heapFreed();
  } catch (error) {
    // The old session is gone: every later request reports why.
    idleRelease.error = error;
  } finally {
    pumping = false;
    if (pending.length > 0) void pump();
  }
}

/**
 * One ORT run for the steps of several sequences (see batched-decode.ts); each request gets its own reply.
 * With `resident` (all of its rows, in row order) its present is this step's past as it is; otherwise the
 * rows are packed.
 */
async function handleBatch(requests: ForwardRequest[], resident?: ResidentBatch): Promise<void> {
  if (state?.newKv) return stepInPlace(requests, resident);
  const s = state as State;
  const { numLayers, numKvHeads, headDim: d } = s.init;
  const shape = { numKvHeads, headDim: d };
  const B = requests.length;
  const held: KvArray[] = [];
  const presents: KvArray[][] = [[], []];
  try {
    let pastKeys: KvArray[];
    let pastValues: KvArray[];
    let L: number;
    let mask: Uint8Array;
    let counts: number[];
    if (resident) {
      ({ keys: pastKeys, values: pastValues, total: L, mask, counts } = resident);
    } else {
      const rows = requests.map((r) => getCache(r.cache as number));
      counts = rows.map((e) => e.length);
      L = paddedPastLength(counts);
      mask = packedMask(counts, L);
      const pack = (which: 'keys' | 'values') =>
        Array.from({ length: numLayers }, (_, l) => {
          const past = s.pool.alloc(B * numKvHeads * L * d);
          held.push(past);
          packLayer(rows.map((e) => e[which][l]), counts, L, shape, past);
          return past;
        });
      pastKeys = pack('keys');
      pastValues = pack('values');
    }
    const nextMask = appendColumn(mask, B, L);
    const feeds = batchFeeds(requests, nextMask, pastKeys, pastValues, L);
    const fetches: Record<string, Tensor | null> = { logits: null };
    for (let l = 0; l < numLayers; l++) {
      for (const [which, kind] of [['key', 0], ['value', 1]] as const) {
        const present = s.pool.alloc(B * numKvHeads * (L + 1) * d);
        presents[kind].push(present);
        fetches[`present.${l}.${which}`] = new ort.Tensor(s.kvType, present, [B, numKvHeads, L + 1, d]);
      }
    }
    const out = await s.session.run(feeds, fetches);
    const batch: ResidentBatch = { keys: presents[0], values: presents[1], rows: B, total: L + 1, used: L + 1, mask: nextMask, counts: counts.map((c) => c + 1), live: B };
    lastBatch = batch;
    replyRows(requests, batch, logitRows(out.logits));
  } catch (error) {
    releaseArrays(presents[0]);
    releaseArrays(presents[1]);
    for (const request of requests) post({ id: request.id, type: 'error', error: serialize(error) });
  } finally {
    releaseArrays(held);
    for (const request of requests) cancelled.delete(request.id);
  }
}

/**
 * Feeds of a single-token step of `requests` over pasts [B, Hkv, width, d] per layer: `mask` ([B, width + 1])
 * marks each row's real past columns and its new token (the last column).
 */
function batchFeeds(requests: ForwardRequest[], mask: Uint8Array, keys: KvArray[], values: KvArray[], width: number): Record<string, Tensor> {
  const s = state as State;
  const { numLayers, numHeads, numKvHeads, headDim: d } = s.init;
  const B = requests.length;
  const feeds: Record<string, Tensor> = {
    input_ids: i64(requests.map((r) => r.inputIds[0]), [B, 1]),
    position_ids: i64(requests.map((r) => r.positionIds[0]), [B, 1]),
    attention_mask: i64(mask, [B, width + 1]),
  };
  if (s.hasNumLogitsToKeep) feeds.num_logits_to_keep = i64([1], []);
  // Unpadded caches only (batchable): the key bias is zero and broadcasts over the batch.
  if (s.keyBiasInputs) for (const name of s.keyBiasInputs) feeds[name] = new ort.Tensor('float32', new Float32Array(numHeads * (width + 1)), [1, numHeads, 1, width + 1]);
  for (let l = 0; l < numLayers; l++) {
    feeds[`past_key_values.${l}.key`] = new ort.Tensor(s.kvType, keys[l], [B, numKvHeads, width, d]);
    feeds[`past_key_values.${l}.value`] = new ort.Tensor(s.kvType, values[l], [B, numKvHeads, width, d]);
  }
  return feeds;
}

/** Row b's last logits of a batched run's logits output ([B, rows, vocab]), as float32. */
function logitRows(logitsTensor: Tensor): (b: number) => Float32Array {
  const { vocabSize } = (state as State).init;
  const rows = logitsTensor.dims[1] as number;
  const data = logitsTensor.data as KvArray;
  return (b) => {
    const lastRow = data.subarray(((b + 1) * rows - 1) * vocabSize, (b + 1) * rows * vocabSize);
    return lastRow instanceof Uint16Array ? halfToFloat32(lastRow) : Float32Array.from(lastRow);
  };
}

/** Each row's logits to its request, and a resident handle per row of `batch` as it now stands. */
function replyRows(requests: ForwardRequest[], batch: ResidentBatch, logitsOf: (b: number) => Float32Array): void {
  requests.forEach((request, b) => {
    const logits = logitsOf(b);
    const handle = residentHandle(batch, b);
    if (request.progress !== false) post({ id: request.id, type: 'progress', stage: 'prefill', completed: 1, total: 1 });
    post({ id: request.id, type: 'result', result: { cache: handle, length: batch.counts[b], logits } satisfies ForwardResult }, [logits.buffer as ArrayBuffer]);
  });
}

/** After a step wrote column `used` of every row: mark it, count it, and hand the buffers to the rows. */
function finishInPlaceStep(requests: ForwardRequest[], batch: ResidentBatch, held: KvArray[]): void {
  const B = requests.length;
  for (let b = 0; b < B; b++) {
    batch.mask[b * batch.total + batch.used] = 1;
    batch.counts[b]++;
  }
  batch.used++;
  batch.live += B;
  held.length = 0;
  lastBatch = B > 1 ? batch : undefined;
}

/** A view of `length` elements from `a`'s start over its buffer (a pooled buffer has room past the array). */
function widenedView(a: KvArray, length: number): KvArray {
  return a instanceof Uint16Array ? new Uint16Array(a.buffer, a.byteOffset, length) : new Float32Array(a.buffer, a.byteOffset, length);
}

/** Columns for `used` written ones plus room for max(minRoom, used >> shift) more steps, rounded to 32. */
function inPlaceCapacity(used: number, minRoom = 32, shift = 4): number {
  return Math.ceil((used + Math.max(minRoom, used >> shift)) / 32) * 32;
}

/**
 * Room a native row's cache grows by at least: its attention reads only the columns written (ORT's reads the
 * whole width, so its batches keep 32), and widening copies the cache: every 32 steps cost a compressed batch
 * of 8 about 0.6 ms per step.
 */
const NATIVE_MIN_ROOM = 128;

/** Room of a widened in-place batch: max(minRoom, used >> shift) more columns; `zeroFree`: zero them. */
interface InPlaceGrowth {
  minRoom: number;
  shift: number;
  zeroFree: boolean;
}

/**
 * How a decode step widens a native row that has run out of room: by a quarter of its columns (at least
 * NATIVE_MIN_ROOM), so a long generation widens a logarithmic number of times, and without zeroing the new free
 * columns (native attention reads only the columns written). A widen copies the cache into new buffers, and what
 * costs there is the first touch of fresh pages: about 10 µs per 4 KiB page on the 2-core VM, 12–20 ms per widen of
 * a 256-entry compressed row of the perf model; untouched room costs neither time nor RSS.
 */
const NATIVE_GROWTH: InPlaceGrowth = { minRoom: NATIVE_MIN_ROOM, shift: 2, zeroFree: false };

/** ORT's batches: 32 columns or a sixteenth more, zeroed (its attention reads the whole width, masked). */
const ORT_GROWTH: InPlaceGrowth = { minRoom: 32, shift: 4, zeroFree: true };

/**
 * A batch with room to write into, holding the rows' caches: `resident` itself while it has a free column, else
 * its columns copied into wider buffers, else the rows packed anew (right-padded and masked; for ORT the free
 * columns are zeroed so masked scores stay finite, see `growth`).
 */
function inPlaceBatch(requests: ForwardRequest[], resident: ResidentBatch | undefined, held: KvArray[], growth = ORT_GROWTH): ResidentBatch {
  const s = state as State;
  const { numLayers, numKvHeads, headDim: d } = s.init;
  const shape = { numKvHeads, headDim: d };
  const B = requests.length;
  if (resident && resident.used < resident.total) return resident;
  if (!resident && B === 1) {
    const adopted = adoptInPlace(requests[0].cache as number);
    if (adopted) return adopted;
  }
  let counts: number[];
  let used: number;
  let fill: (which: 'keys' | 'values', l: number, out: KvArray, total: number) => void;
  let columns: (total: number) => Uint8Array;
  if (resident) {
    ({ counts, used } = resident);
    fill = (which, l, out, total) => {
      const from = resident[which][l];
      for (let bh = 0; bh < B * numKvHeads; bh++) out.set(from.subarray(bh * resident.total * d, (bh * resident.total + used) * d) as never, bh * total * d);
    };
    columns = (total) => {
      const mask = new Uint8Array(B * total);
      for (let b = 0; b < B; b++) mask.set(resident.mask.subarray(b * resident.total, b * resident.total + used), b * total);
      return mask;
    };
  } else {
    const rows = requests.map((r) => getCache(r.cache as number));
    counts = rows.map((e) => e.length);
    used = paddedPastLength(counts);
    fill = (which, l, out, total) => packLayer(rows.map((e) => e[which][l]), counts, total, shape, out);
    columns = (total) => packedMask(counts, total);
  }
  const total = inPlaceCapacity(used, growth.minRoom, growth.shift);
  const widen = (which: 'keys' | 'values') =>
    Array.from({ length: numLayers }, (_, l) => {
      const out = s.pool.alloc(B * numKvHeads * total * d);
      held.push(out);
      if (growth.zeroFree) out.fill(0);
      fill(which, l, out, total);
      return out;
    });
  return { keys: widen('keys'), values: widen('values'), rows: B, total, used, mask: columns(total), counts: counts.slice(), live: 0 };
}

/**
 * A lone step's cache (a prefill's, a compressed one) made its own in-place batch without a copy, when its
 * arrays are held by it alone and their pooled buffers have room for the batch's capacity (the pool allocates
 * that room): each head moves back to its column block, free columns are zeroed, and the handle becomes the
 * batch's row 0 (read through the resident-row path from then on). Copying instead cost a first decode step
 * 160–270 ms at 8K (fresh pages for a second copy of the cache). Undefined when it cannot.
 */
function adoptInPlace(handle: number): ResidentBatch | undefined {
  const s = state as State;
  const entry = caches.get(handle);
  if (!entry || entry.valid || entry.packed || entry.length === 0) return undefined;
  const { numKvHeads: hkv, headDim: d } = s.init;
  const used = entry.length;
  const arrays = [...entry.keys, ...entry.values];
  if (new Set(arrays.map((a) => a.buffer)).size !== arrays.length) return undefined;
  if (!arrays.every((a) => a.length === hkv * used * d && s.pool.exclusive(a))) return undefined;
  // The batch's usual capacity, or what the smallest buffer holds (in 32-column steps) if that leaves 32 free.
  const roomTokens = Math.min(...arrays.map((a) => Math.floor((a.buffer.byteLength - a.byteOffset) / a.BYTES_PER_ELEMENT / (hkv * d))));
  const total = Math.min(inPlaceCapacity(used), Math.floor(roomTokens / 32) * 32);
  if (total < used + 32) return undefined;
  const span = hkv * total * d;
  const widen = (a: KvArray): KvArray => {
    const wide = widenedView(a, span);
    // Back to front: head h's block moves up to h · total, over nothing not yet moved.
    for (let h = hkv - 1; h >= 0; h--) {
      wide.copyWithin(h * total * d, h * used * d, (h + 1) * used * d);
      wide.fill(0, (h * total + used) * d, (h + 1) * total * d);
    }
    return wide;
  };
  const mask = new Uint8Array(total);
  mask.fill(1, 0, used);
  const batch: ResidentBatch = { keys: entry.keys.map(widen), values: entry.values.map(widen), rows: 1, total, used, mask, counts: [used], live: 1 };
  caches.delete(handle);
  residentRows.set(handle, { batch, row: 0, upTo: used, count: used });
  return batch;
}

/**
 * Single-token steps (one or several sequences) on a cache kept in place: the past fed is the batch's buffers
 * at full width with the free columns masked, only logits and the new K/V rows are fetched (the Node binding
 * copies every fetched output, so fetching presents copied the whole cache per step), and the new rows are
 * written into column `used`. Handles made before keep seeing only the columns below their `upTo`.
 */
async function stepInPlace(requests: ForwardRequest[], resident?: ResidentBatch): Promise<void> {
  const s = state as State;
  const { numLayers, numKvHeads, headDim: d } = s.init;
  const newKv = s.newKv as { key: string; value: string }[];
  const B = requests.length;
  const held: KvArray[] = [];
  try {
    const batch = inPlaceBatch(requests, resident, held);
    const { total, used } = batch;
    const feeds = batchFeeds(requests, appendColumn(batch.mask, B, total), batch.keys, batch.values, total);
    const fetches: Record<string, Tensor | null> = { logits: null };
    for (let l = 0; l < numLayers; l++) {
      fetches[newKv[l].key] = null;
      fetches[newKv[l].value] = null;
    }
    const out = await s.session.run(feeds, fetches);
    for (let l = 0; l < numLayers; l++) {
      for (const [which, name] of [['keys', newKv[l].key], ['values', newKv[l].value]] as const) {
        const rows = out[name].data as KvArray;
        const into = batch[which][l];
        for (let bh = 0; bh < B * numKvHeads; bh++) into.set(rows.subarray(bh * d, (bh + 1) * d) as never, (bh * total + used) * d);
      }
    }
    finishInPlaceStep(requests, batch, held);
    replyRows(requests, batch, logitRows(out.logits));
  } catch (error) {
    releaseArrays(held);
    for (const request of requests) post({ id: request.id, type: 'error', error: serialize(error) });
  } finally {
    for (const request of requests) cancelled.delete(request.id);
  }
}

/**
 * Caches the last native step of several sequences returned: their sequences' next steps are expected together,
 * so the pump waits a moment for them (gatherNativeSteps). Released handles leave the set.
 */
const expectedSteps = new Set<number>();

/** Waits, yielding to incoming messages, until every expected sequence has its next step queued, or `waitMs` passes. */
async function gatherNativeSteps(limit: number, waitMs: number): Promise<void> {
  const deadline = performance.now() + waitMs;
  const expected = Math.min(limit, expectedSteps.size);
  const queued = () => {
    const lead = batchableLead(limit);
    let n = 0;
    for (let i = 0; i < lead; i++) if (expectedSteps.has((pending[i] as ForwardRequest).cache as number)) n++;
    return n;
  };
  while (queued() < Math.min(expected, expectedSteps.size) && performance.now() < deadline) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Single-token steps of several sequences in one call of the native engine, each row over its own cache: a
 * one-row in-place batch (full or selected caches) or packed heads (AdaKV, PyramidKV). Nothing is padded to
 * another row's length or copied into a shared buffer, so rows of any lengths and methods step together. A
 * cache stepped twice in one call would have both steps write the same column: the second runs in a later call.
 * See docs/decisions/2026-12-07-native-batched-decode.md.
 */
function nativeStep(requests: ForwardRequest[]): void {
  expectedSteps.clear();
  let rest = requests;
  while (rest.length > 0) {
    const seen = new Set<number>();
    const now: ForwardRequest[] = [];
    const later: ForwardRequest[] = [];
    for (const request of rest) {
      (seen.has(request.cache as number) ? later : now).push(request);
      seen.add(request.cache as number);
    }
    nativeCall(now);
    rest = later;
  }
}

function nativeCall(requests: ForwardRequest[]): void {
  const native = (state as State).native as NonNullable<State['native']>;
  const prepared: { request: ForwardRequest; step: NativeStepRow }[] = [];
  for (const request of requests) {
    try {
      const entry = residentRows.has(request.cache as number) ? undefined : caches.get(request.cache as number);
      prepared.push({ request, step: entry?.packed ? packedStepRow(request, entry) : inPlaceStepRow(request) });
    } catch (error) {
      post({ id: request.id, type: 'error', error: serialize(error) });
      cancelled.delete(request.id);
    }
  }
  if (prepared.length === 0) return;
  try {
    native.decoder.step(prepared.map((p) => p.step.row));
  } catch (error) {
    for (const { request, step } of prepared) {
      step.abandon();
      post({ id: request.id, type: 'error', error: serialize(error) });
      cancelled.delete(request.id);
    }
    return;
  }
  batchCounts.nativeSteps += prepared.length;
  if (prepared.length > 1) {
    batchCounts.batches++;
    batchCounts.rows += prepared.length;
  }
  for (const { request, step } of prepared) {
    const result = step.finish();
    if (requests.length > 1) expectedSteps.add(result.cache);
    if (request.progress !== false) post({ id: request.id, type: 'progress', stage: 'prefill', completed: 1, total: 1 });
    post({ id: request.id, type: 'result', result }, [result.logits.buffer as ArrayBuffer]);
    cancelled.delete(request.id);
  }
}

/**
 * A row over the sequence's own in-place cache (a one-row resident batch): the latest handle of one with a free
 * column writes into it; a full one is widened, another cache adopted or copied into one (inPlaceBatch).
 */
function inPlaceStepRow(request: ForwardRequest): NativeStepRow {
  const resident = residentRows.get(request.cache as number);
  const own = resident && resident.batch.rows === 1 && resident.upTo === resident.batch.used ? resident.batch : undefined;
  const held: KvArray[] = [];
  let batch: ResidentBatch;
  try {
    batch = inPlaceBatch([request], own, held, NATIVE_GROWTH);
  } catch (error) {
    releaseArrays(held);
    throw error;
  }
  const s = state as State;
  const native = s.native as NonNullable<State['native']>;
  // A one-row batch: its buffers are the row's cache as they are, and every column below `used` is its own (no mask).
  const row: NativeDecoderRowV1 = {
    token: request.inputIds[0],
    ...native.rope.at(request.positionIds[0]),
    keys: batch.keys,
    values: batch.values,
    capacity: batch.total,
    used: batch.used,
    logits: new Float32Array(s.init.vocabSize),
  };
  return {
    row,
    finish: () => {
      finishInPlaceStep([request], batch, held);
      return { cache: residentHandle(batch, 0), length: batch.counts[0], logits: row.logits };
    },
    abandon: () => releaseArrays(held),
  };
}

port.on('message', (request: WorkerRequest) => {
  if (request.type === 'cancel') {
    cancelled.add(request.target);
    keptWaiters.get(request.target)?.reject(new WorkerError('ABORTED', 'The operation was aborted.'));
    return;
  }
  if (request.type === 'layerKept') {
    keptWaiters.get(request.target)?.resolve({ layer: request.layer, kept: request.kept });
    return;
  }
  if (request.type === 'release') {
    release(request.cache);
    return;
  }
  if (isRun(request)) {
    clearTimeout(idleRelease.timer);
    idleRelease.timer = undefined;
  }
  // One request at a time: ORT runs are serialised and caches are never read mid-update. The pump starts
  // after the messages already delivered in this turn are queued, so steps sent together batch together.
  pending.push(request);
  if (!pumping && !pumpScheduled) {
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      void pump();
    });
  }
});
