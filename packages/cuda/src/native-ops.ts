import {
  DraftError,
  type FusedWindowScoreOptions,
  InvalidArgumentError,
  KernelError,
  type KvStorage,
  NativeUnavailableError,
  type Pool1dOptions,
  type RaggedAttentionOptions,
  validateRaggedAttention,
} from '@draft/core';
import {
  type BindingModule,
  KernelStatus,
  loadBinding,
  type NativeDevice,
  PaddingCode,
  PoolTypeCode,
  ReduceOpCode,
  TopKOrderCode,
} from './binding.js';

/** Where a native call runs. CPU kernels honour `numThreads` (default: one per hardware thread). */
export interface NativeCallOptions {
  device?: NativeDevice;
  numThreads?: number;
}

export interface NativeWindowScoreOptions extends FusedWindowScoreOptions, NativeCallOptions {}

function requireBinding(): BindingModule {
  const loaded = loadBinding();
  if (!loaded.binding) throw new NativeUnavailableError(`@draft/cuda: ${loaded.reason}.`, { details: { reason: loaded.reason } });
  return loaded.binding;
}

/** Turns a rejection of the addon ({ status, kernel } for a kernel status) into a typed DraftError. */
export function kernelErrorFrom(error: unknown, kernel: string): DraftError {
  if (DraftError.isInstance(error)) return error;
  const e = error as { status?: unknown; kernel?: unknown; message?: string };
  if (typeof e?.status === 'number') {
    const name = typeof e.kernel === 'string' ? e.kernel : kernel;
    if (e.status === KernelStatus.noDevice || e.status === KernelStatus.notBuilt) {
      return new NativeUnavailableError(`@draft/cuda: ${name}: ${e.message ?? 'unavailable'}.`, { cause: error, details: { status: e.status } });
    }
    return new KernelError({ kernel: name, status: e.status, message: `Kernel '${name}' failed: ${e.message ?? `status ${e.status}`}.`, cause: error });
  }
  return new KernelError({ kernel, status: KernelStatus.internal, message: `Kernel '${kernel}' failed: ${e?.message ?? String(error)}.`, cause: error });
}

async function call<T>(kernel: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw kernelErrorFrom(error, kernel);
  }
}

const INT32_MAX = 2 ** 31 - 1;

function positiveInt(argument: string, value: unknown, max = INT32_MAX): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError({ argument, value, expected: `an integer in 1..${max}` });
  }
  return value;
}

function nonNegativeInt(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > INT32_MAX) {
    throw new InvalidArgumentError({ argument, value, expected: 'an integer ≥ 0' });
  }
  return value;
}

function device(options: NativeCallOptions | undefined): { device: NativeDevice; numThreads: number } {
  const d = options?.device ?? 'cpu';
  if (d !== 'cpu' && d !== 'cuda') throw new InvalidArgumentError({ argument: 'device', value: d, expected: "'cpu' | 'cuda'" });
  const t = options?.numThreads ?? 0;
  if (!Number.isInteger(t) || t < 0) throw new InvalidArgumentError({ argument: 'numThreads', value: t, expected: 'an integer ≥ 0 (0 = all cores)' });
  return { device: d, numThreads: t };
}

function checkLength(argument: string, actual: number, expected: number, formula: string): void {
  if (actual !== expected) throw new InvalidArgumentError({ argument, value: actual, expected: `${formula} = ${expected}` });
}

/**
 * Native fused window scoring: same contract and result as `windowAttentionScores` of @draft/core (up to
 * float rounding), computed in key chunks with an online softmax max/denominator, off the main thread.
 * Keys may be f32 or f16 bits (Uint16Array, converted on load).
 * @param queries post-RoPE, (numHeads, queryCount, headDim)
 * @param keys post-RoPE, (numKvHeads, keyCount, headDim)
 * @returns (numKvHeads, keyCount), higher score = keep
 */
export function nativeWindowScores(queries: Float32Array, keys: Float32Array | Uint16Array, options: NativeWindowScoreOptions): Promise<Float32Array> {
  return Promise.resolve().then(() => {
    const binding = requireBinding();
    const hq = positiveInt('numHeads', options.numHeads);
    const hkv = positiveInt('numKvHeads', options.numKvHeads);
    const d = positiveInt('headDim', options.headDim);
    const w = positiveInt('queryCount', options.queryCount);
    const n = positiveInt('keyCount', options.keyCount);
    if (hq % hkv !== 0) throw new InvalidArgumentError({ argument: 'numHeads', value: hq, expected: `a multiple of numKvHeads (${hkv})` });
    if (w > n) throw new InvalidArgumentError({ argument: 'queryCount', value: w, expected: `≤ keyCount (${n})` });
    if (!(queries instanceof Float32Array)) throw new InvalidArgumentError({ argument: 'queries', value: typeof queries, expected: 'a Float32Array' });
    if (!(keys instanceof Float32Array) && !(keys instanceof Uint16Array)) {
      throw new InvalidArgumentError({ argument: 'keys', value: typeof keys, expected: 'a Float32Array (f32) or Uint16Array (f16 bits)' });
    }
    checkLength('queries.length', queries.length, hq * w * d, 'numHeads·queryCount·headDim');
    checkLength('keys.length', keys.length, hkv * n * d, 'numKvHeads·keyCount·headDim');
    const op = ReduceOpCode[options.op as keyof typeof ReduceOpCode];
    if (op === undefined) throw new InvalidArgumentError({ argument: 'op', value: options.op, expected: "'max' | 'mean' | 'sum'" });
    if (options.queryWeights !== undefined) {
      if (!(options.queryWeights instanceof Float32Array)) {
        throw new InvalidArgumentError({ argument: 'queryWeights', value: typeof options.queryWeights, expected: 'a Float32Array' });
      }
      checkLength('queryWeights.length', options.queryWeights.length, w, 'queryCount');
    }
    if (options.chunkSize !== undefined) positiveInt('chunkSize', options.chunkSize);
    if (options.scale !== undefined && (!Number.isFinite(options.scale) || options.scale === 0)) {
      throw new InvalidArgumentError({ argument: 'scale', value: options.scale, expected: 'a finite non-zero number' });
    }
    const where = device(options);
    return call(`${where.device}_window_scores`, () =>
      binding.windowScores(queries, keys, {
        numHeads: hq,
        numKvHeads: hkv,
        headDim: d,
        queryCount: w,
        keyCount: n,
        causalTail: (options.causalTail ?? true) ? 1 : 0,
        scale: options.scale,
        op,
        queryWeights: options.queryWeights,
        chunkSize: options.chunkSize,
        ...where,
      }),
    );
  });
}

/** Native stride-1 pooling; same contract as `pool1d` of @draft/core. @param scores (rows, length) @returns (rows, length) */
export function nativePool1d(scores: Float32Array, options: Pool1dOptions & NativeCallOptions): Promise<Float32Array> {
  return Promise.resolve().then(() => {
    const binding = requireBinding();
    const kernel = positiveInt('kernel', options.kernel);
    const type = PoolTypeCode[options.type as keyof typeof PoolTypeCode];
    if (type === undefined) throw new InvalidArgumentError({ argument: 'type', value: options.type, expected: "'max' | 'avg'" });
    const padding = PaddingCode[options.padding as keyof typeof PaddingCode];
    if (padding === undefined) throw new InvalidArgumentError({ argument: 'padding', value: options.padding, expected: "'same' | 'centred-zero'" });
    if (options.padding === 'same' && kernel % 2 === 0) {
      throw new InvalidArgumentError({ argument: 'kernel', value: kernel, expected: "an odd integer for 'same' padding" });
    }
    if (!(scores instanceof Float32Array)) throw new InvalidArgumentError({ argument: 'scores', value: typeof scores, expected: 'a Float32Array' });
    const rows = options.rows ?? 1;
    if (!Number.isInteger(rows) || rows < 1 || scores.length % rows !== 0) {
      throw new InvalidArgumentError({ argument: 'rows', value: rows, expected: `a divisor of scores.length (${scores.length})` });
    }
    const where = device(options);
    return call(`${where.device}_pool1d`, () => binding.pool1d(scores, { rows, length: scores.length / rows, kernel, type, padding, ...where }));
  });
}

export interface NativeTopKOptions extends NativeCallOptions {
  rows: number;
  length: number;
  /** One count for every row, or one per row (ragged). Clipped to `length`. */
  k: number | readonly number[];
  /** 'position' (default): ascending positions; 'score': descending score, ties lower position first. */
  order?: 'position' | 'score';
}

/**
 * Native stable top-k per row (ties → lower position, NaN below −inf).
 * @param scores (rows, length), higher score = keep
 * @returns one Int32Array of positions per row
 */
export function nativeTopK(scores: Float32Array, options: NativeTopKOptions): Promise<Int32Array[]> {
  return Promise.resolve().then(async () => {
    const binding = requireBinding();
    const rows = nonNegativeInt('rows', options.rows);
    const length = nonNegativeInt('length', options.length);
    if (!(scores instanceof Float32Array)) throw new InvalidArgumentError({ argument: 'scores', value: typeof scores, expected: 'a Float32Array' });
    checkLength('scores.length', scores.length, rows * length, 'rows·length');
    const order = options.order ?? 'position';
    if (TopKOrderCode[order] === undefined) throw new InvalidArgumentError({ argument: 'order', value: order, expected: "'position' | 'score'" });
    const ragged = typeof options.k !== 'number';
    const ks = typeof options.k === 'number' ? null : options.k;
    if (ks && ks.length !== rows) throw new InvalidArgumentError({ argument: 'k.length', value: ks.length, expected: `one count per row (${rows})` });
    const counts = ks ? ks.map((k, r) => nonNegativeInt(`k[${r}]`, k)) : [nonNegativeInt('k', options.k)];
    const kmax = Math.min(length, Math.max(0, ...counts));
    let where = device(options);
    // Ragged k: one score-ordered top-kmax per row, then each row keeps its first k[r] (the top-k[r] set).
    // The CUDA kernel only emits position order, so ragged and score-ordered requests run on the CPU kernel.
    if (where.device === 'cuda' && (ragged || order === 'score')) where = { device: 'cpu', numThreads: where.numThreads };
    const flat = await call(`${where.device}_topk`, () =>
      binding.topk(scores, { rows, length, k: kmax, order: TopKOrderCode[ragged ? 'score' : order], ...where }),
    );
    const out: Int32Array[] = [];
    for (let r = 0; r < rows; r++) {
      const row = flat.subarray(r * kmax, (r + 1) * kmax);
      if (!ragged) out.push(row.slice());
      else {
        const picked = row.slice(0, Math.min(counts[r], kmax));
        if (order === 'position') picked.sort();
        out.push(picked);
      }
    }
    return out;
  });
}

export interface NativeGatherShape {
  numKvHeads: number;
  length: number;
  headDim: number;
}

/**
 * Native per-KV-head row gather (KV compaction); same contract as `gatherRows` of @draft/core, ragged counts
 * allowed; f32 or f16 bits.
 * @param tensor (numKvHeads, length, headDim)
 * @param kept per head, indices into [0, length)
 * @returns the kept rows head after head, (Σ kept[h].length, headDim)
 */
export function nativeGatherRows<T extends Float32Array | Uint16Array>(
  tensor: T,
  shape: NativeGatherShape,
  kept: readonly Int32Array[],
  options?: NativeCallOptions,
): Promise<T> {
  return Promise.resolve().then(() => {
    const binding = requireBinding();
    const hkv = positiveInt('numKvHeads', shape.numKvHeads);
    const n = nonNegativeInt('length', shape.length);
    const d = positiveInt('headDim', shape.headDim);
    if (!(tensor instanceof Float32Array) && !(tensor instanceof Uint16Array)) {
      throw new InvalidArgumentError({ argument: 'tensor', value: typeof tensor, expected: 'a Float32Array or Uint16Array (f16 bits)' });
    }
    checkLength('tensor.length', tensor.length, hkv * n * d, 'numKvHeads·length·headDim');
    if (!Array.isArray(kept) || kept.length !== hkv) {
      throw new InvalidArgumentError({ argument: 'kept.length', value: (kept as unknown[])?.length, expected: `${hkv} (numKvHeads)` });
    }
    const counts = new Int32Array(hkv);
    let total = 0;
    for (let h = 0; h < hkv; h++) {
      counts[h] = kept[h].length;
      total += kept[h].length;
    }
    const indices = new Int32Array(total);
    let o = 0;
    for (let h = 0; h < hkv; h++) {
      for (const idx of kept[h]) {
        if (!Number.isInteger(idx) || idx < 0 || idx >= n) throw new InvalidArgumentError({ argument: 'kept index', value: idx, expected: `0..${n - 1}` });
        indices[o++] = idx;
      }
    }
    const where = device(options);
    return call(`${where.device}_gather_rows`, () => binding.gatherRows(tensor, { numKvHeads: hkv, length: n, rowDim: d, ...where }, indices, counts));
  });
}

export interface NativeSpecPCAggregateOptions {
  numLayers: number;
  /** Rows per layer (KV heads, decode steps, …), each of keyCount scores. */
  rowsPerLayer: number;
  keyCount: number;
  /** Prompt length n ≤ keyCount: the result is truncated to it (default keyCount). */
  outLength?: number;
  device?: NativeDevice;
  /** Running maximum to fold into (streaming one layer at a time); updated in place and returned. */
  into?: Float32Array;
}

/**
 * SpecPC per-token aggregation: s[j] = max over layers and rows of scores[l, r, j], j < outLength (NaN never
 * wins). Synchronous: one pass over the scores.
 * @param scores (numLayers, rowsPerLayer, keyCount)
 * @returns (outLength)
 */
export function nativeSpecPCAggregate(scores: Float32Array, options: NativeSpecPCAggregateOptions): Float32Array {
  const binding = requireBinding();
  const layers = nonNegativeInt('numLayers', options.numLayers);
  const rows = nonNegativeInt('rowsPerLayer', options.rowsPerLayer);
  const n = nonNegativeInt('keyCount', options.keyCount);
  const outLength = nonNegativeInt('outLength', options.outLength ?? n);
  if (outLength > n) throw new InvalidArgumentError({ argument: 'outLength', value: outLength, expected: `≤ keyCount (${n})` });
  if (!(scores instanceof Float32Array)) throw new InvalidArgumentError({ argument: 'scores', value: typeof scores, expected: 'a Float32Array' });
  checkLength('scores.length', scores.length, layers * rows * n, 'numLayers·rowsPerLayer·keyCount');
  if (options.into !== undefined) checkLength('into.length', options.into.length, outLength, 'outLength');
  const where = device(options);
  try {
    return binding.specpcAggregate(scores, { numLayers: layers, rowsPerLayer: rows, keyCount: n, outLength, device: where.device }, options.into);
  } catch (error) {
    throw kernelErrorFrom(error, `${where.device}_specpc_aggregate`);
  }
}

export interface NativeRaggedAttentionOptions extends RaggedAttentionOptions, NativeCallOptions {
  /** Cache entries per work unit (default: chosen from the total and the thread count). */
  chunkSize?: number;
}

/**
 * Native attention over a ragged per-KV-head cache (one layer): same contract and result as
 * `raggedAttention` of @draft/core up to float rounding, computed in (KV head, entry chunk) units with an
 * online softmax, multi-threaded, off the main thread. Keys/values f32 or f16 bits (both the same type).
 * Pass a `RaggedKvStore` layer as it is: `store.layer(l)` gives keys, values, offsets and lengths.
 * @param queries post-RoPE, (numHeads, queryCount, headDim)
 * @param keys packed kept rows (rows, headDim); head h at rows offsets[h] … offsets[h] + lengths[h] − 1
 * @param values same layout as keys
 * @returns (numHeads, queryCount, headDim); queries that see no entry get zeros
 */
export function nativeRaggedAttention(
  queries: Float32Array,
  keys: KvStorage,
  values: KvStorage,
  options: NativeRaggedAttentionOptions,
): Promise<Float32Array> {
  return Promise.resolve().then(() => {
    const binding = requireBinding();
    const v = validateRaggedAttention(queries, keys, values, options);
    if (options.chunkSize !== undefined) positiveInt('chunkSize', options.chunkSize);
    const where = device(options);
    if (where.device === 'cuda' && v.headDim > 256) {
      throw new InvalidArgumentError({ argument: 'headDim', value: v.headDim, expected: "≤ 256 on device 'cuda' (use device 'cpu')" });
    }
    return call(`${where.device}_ragged_attention`, () =>
      binding.raggedAttention(queries, keys, values, v.offsets, v.lengths, {
        numHeads: v.numHeads,
        numKvHeads: v.numKvHeads,
        headDim: v.headDim,
        queryCount: v.queryCount,
        causal: v.causal ? 1 : 0,
        scale: v.scale,
        chunkSize: options.chunkSize,
        ...where,
      }),
    );
  });
}
