import { InvalidArgumentError } from '../spec/errors.js';
import { float16Table } from './float16.js';

/** KV storage: `Float32Array` (f32) or `Uint16Array` holding IEEE binary16 bits (f16). */
export type KvStorage = Float32Array | Uint16Array;

/**
 * One layer's attention over a ragged per-KV-head cache (issue 14, "caches that hold only what they keep"):
 * KV head h holds exactly its kept entries, rows `offsets[h] … offsets[h] + lengths[h] − 1` of the packed
 * keys / values buffers, each row `headDim` elements. Rows outside every head's block (spare capacity) are
 * never read, so a growing store passes its buffers as they are.
 */
export interface RaggedAttentionOptions {
  /** Query heads Hq, a multiple of numKvHeads; query head q reads KV head ⌊q / (Hq/Hkv)⌋. */
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Query tokens per head: 1 for a decode step, a few for a chunk. Default 1. */
  queryCount?: number;
  /** First row of each KV head's block, (numKvHeads). */
  offsets: ArrayLike<number>;
  /** Entries held by each KV head, (numKvHeads); 0 allowed (the head's queries then output zeros). */
  lengths: ArrayLike<number>;
  /** Logit scale; default 1/√headDim. */
  scale?: number;
  /**
   * Default true: the queryCount queries are the newest tokens, already appended at the end of every head,
   * so query i sees entries j < lengths[h] − queryCount + i + 1. False: every query sees every entry.
   * A query that sees no entry gets a zero output row.
   */
  causal?: boolean;
}

/** @internal Arguments of a ragged attention call after validation. */
export interface ValidatedRaggedAttention {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  queryCount: number;
  offsets: Int32Array;
  lengths: Int32Array;
  /** Rows of the keys / values buffers. */
  rows: number;
  scale: number;
  causal: boolean;
  dtype: 'float32' | 'float16';
}

function isStorage(value: unknown): value is KvStorage {
  return value instanceof Float32Array || value instanceof Uint16Array;
}

function positiveInt(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new InvalidArgumentError({ argument, value, expected: 'an integer ≥ 1' });
  }
  return value;
}

function perHead(argument: string, value: ArrayLike<number> | undefined, hkv: number): Int32Array {
  if (value === null || typeof value !== 'object' || typeof value.length !== 'number') {
    throw new InvalidArgumentError({ argument, value, expected: `an Int32Array or number[] of numKvHeads (${hkv}) integers ≥ 0` });
  }
  if (value.length !== hkv) throw new InvalidArgumentError({ argument: `${argument}.length`, value: value.length, expected: `numKvHeads (${hkv})` });
  const out = new Int32Array(hkv);
  for (let h = 0; h < hkv; h++) {
    const v = value[h];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new InvalidArgumentError({ argument: `${argument}[${h}]`, value: v, expected: 'an integer ≥ 0' });
    }
    out[h] = v;
  }
  return out;
}

/**
 * Checks a ragged attention call (shared by the TS reference and the native kernels, so both reject the same
 * inputs with the same `InvalidArgumentError`).
 */
export function validateRaggedAttention(
  queries: Float32Array,
  keys: KvStorage,
  values: KvStorage,
  options: RaggedAttentionOptions,
): ValidatedRaggedAttention {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError({ argument: 'options', value: options, expected: 'an options object' });
  }
  const hq = positiveInt('numHeads', options.numHeads);
  const hkv = positiveInt('numKvHeads', options.numKvHeads);
  const d = positiveInt('headDim', options.headDim);
  const q = positiveInt('queryCount', options.queryCount ?? 1);
  if (hq % hkv !== 0) throw new InvalidArgumentError({ argument: 'numHeads', value: hq, expected: `a multiple of numKvHeads (${hkv})` });
  if (!(queries instanceof Float32Array)) throw new InvalidArgumentError({ argument: 'queries', value: typeof queries, expected: 'a Float32Array' });
  if (queries.length !== hq * q * d) {
    throw new InvalidArgumentError({ argument: 'queries.length', value: queries.length, expected: `numHeads·queryCount·headDim = ${hq * q * d}` });
  }
  if (!isStorage(keys)) throw new InvalidArgumentError({ argument: 'keys', value: typeof keys, expected: 'a Float32Array (f32) or Uint16Array (f16 bits)' });
  if (!isStorage(values)) throw new InvalidArgumentError({ argument: 'values', value: typeof values, expected: 'a Float32Array (f32) or Uint16Array (f16 bits)' });
  if (keys.constructor !== values.constructor) {
    throw new InvalidArgumentError({ argument: 'values', value: values.constructor.name, expected: `the same storage type as keys (${keys.constructor.name})` });
  }
  if (keys.length % d !== 0) throw new InvalidArgumentError({ argument: 'keys.length', value: keys.length, expected: `a multiple of headDim (${d})` });
  if (values.length !== keys.length) throw new InvalidArgumentError({ argument: 'values.length', value: values.length, expected: `keys.length (${keys.length})` });
  const rows = keys.length / d;
  const offsets = perHead('offsets', options.offsets, hkv);
  const lengths = perHead('lengths', options.lengths, hkv);
  for (let h = 0; h < hkv; h++) {
    if (offsets[h] + lengths[h] > rows) {
      throw new InvalidArgumentError({
        argument: `offsets[${h}] + lengths[${h}]`,
        value: offsets[h] + lengths[h],
        expected: `≤ the rows of keys/values (${rows} = keys.length / headDim)`,
      });
    }
  }
  const scale = options.scale ?? 1 / Math.sqrt(d);
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale === 0) {
    throw new InvalidArgumentError({ argument: 'scale', value: options.scale, expected: 'a finite non-zero number' });
  }
  const causal = options.causal ?? true;
  if (typeof causal !== 'boolean') throw new InvalidArgumentError({ argument: 'causal', value: causal, expected: 'a boolean' });
  return { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: q, offsets, lengths, rows, scale, causal, dtype: keys instanceof Uint16Array ? 'float16' : 'float32' };
}

/**
 * Reference attention over a ragged per-KV-head cache (one layer): for query head q, token i,
 * `out[q, i] = Σ_j softmax_j(scale · Q[q, i]·K[h, j]) · V[h, j]` over the entries of KV head h = ⌊q/G⌋ that
 * the query sees (see `causal`). Max-subtracted softmax, accumulated in float64; f16 storage is decoded
 * exactly. The native kernel (`@draft/cuda`) computes the same in chunks with an online softmax.
 *
 * @param queries post-RoPE, (numHeads, queryCount, headDim)
 * @param keys post-RoPE, packed rows (rows, headDim); head h's entries start at offsets[h]
 * @param values packed rows (rows, headDim), same layout as keys
 * @returns (numHeads, queryCount, headDim); rows that see no entry are 0
 */
export function raggedAttention(queries: Float32Array, keys: KvStorage, values: KvStorage, options: RaggedAttentionOptions): Float32Array {
  const v = validateRaggedAttention(queries, keys, values, options);
  const { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, offsets, lengths, scale, causal } = v;
  const group = hq / hkv;
  const half = v.dtype === 'float16' ? float16Table() : undefined;
  const out = new Float32Array(hq * w * d);
  let maxLength = 0;
  for (const n of lengths) maxLength = Math.max(maxLength, n);
  const logits = new Float64Array(maxLength);
  const acc = new Float64Array(d);
  for (let h = 0; h < hq; h++) {
    const kvh = Math.floor(h / group);
    const base = offsets[kvh];
    const n = lengths[kvh];
    for (let i = 0; i < w; i++) {
      const visible = causal ? Math.max(0, n - w + i + 1) : n;
      if (visible === 0) continue;
      const qOff = (h * w + i) * d;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < visible; j++) {
        const kOff = (base + j) * d;
        let dot = 0;
        if (half) for (let x = 0; x < d; x++) dot += queries[qOff + x] * half[keys[kOff + x]];
        else for (let x = 0; x < d; x++) dot += queries[qOff + x] * keys[kOff + x];
        const l = dot * scale;
        logits[j] = l;
        if (l > max) max = l;
      }
      acc.fill(0);
      let sum = 0;
      for (let j = 0; j < visible; j++) {
        const p = Math.exp(logits[j] - max);
        sum += p;
        const vOff = (base + j) * d;
        if (half) for (let x = 0; x < d; x++) acc[x] += p * half[values[vOff + x]];
        else for (let x = 0; x < d; x++) acc[x] += p * values[vOff + x];
      }
      for (let x = 0; x < d; x++) out[qOff + x] = acc[x] / sum;
    }
  }
  return out;
}
