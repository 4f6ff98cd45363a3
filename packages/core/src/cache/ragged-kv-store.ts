import { DisposedError, InvalidArgumentError } from '../spec/errors.js';
import { float16Table, float32ToFloat16 } from '../primitives/float16.js';
import type { KvStorage } from '../primitives/ragged-attention.js';

/** Element type of stored keys and values. */
export type KvDtype = 'float32' | 'float16';

export interface RaggedKvStoreOptions {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Storage precision; 'float16' halves the bytes (entries are rounded to nearest even). Default 'float32'. */
  dtype?: KvDtype;
  /**
   * When an append overflows a head, every head of the layer gets spare room for
   * max(16, ⌈(growthFactor − 1) × mean head length⌉) more entries: appends are amortised O(1), reallocations
   * O(log length). Default 1.5.
   */
  growthFactor?: number;
}

/**
 * One layer of a `RaggedKvStore`, in the layout `raggedAttention` reads: KV head h holds rows
 * `offsets[h] … offsets[h] + lengths[h] − 1` of `keys` / `values` (rows of headDim elements). The buffers are
 * the store's own (no copy) and stay valid until the next write to this layer; rows outside the blocks are
 * spare capacity.
 */
export interface RaggedKvLayerView {
  /** (rows, headDim): f32, or f16 bits in a Uint16Array. */
  keys: KvStorage;
  values: KvStorage;
  /** (numKvHeads) */
  offsets: Int32Array;
  /** (numKvHeads) */
  lengths: Int32Array;
}

export interface RaggedLayerInput {
  /** The layer's full keys, (numKvHeads, length, headDim), post-RoPE; f32 or f16 bits. */
  keys: KvStorage;
  /** The layer's full values, (numKvHeads, length, headDim). */
  values: KvStorage;
  /** Entries per KV head in `keys` / `values`. */
  length: number;
  /** Per KV head, ascending indices into [0, length) to keep (ragged counts allowed). */
  kept: readonly Int32Array[];
  /** Original position of each of the `length` entries, (length); default 0 … length − 1. */
  positions?: Int32Array;
  /** Spare entries to reserve per head for decode appends (e.g. maxNewTokens). Default 0. */
  reserve?: number;
}

interface Layer {
  keys: KvStorage;
  values: KvStorage;
  /** Original position of each row (same row layout as keys). */
  positions: Int32Array;
  offsets: Int32Array;
  lengths: Int32Array;
  capacity: Int32Array;
}

/**
 * A KV cache that holds only what it keeps (issue 14): per (layer, KV head) exactly the kept entries, packed,
 * so `byteSize()` = Σ kept × headDim × 2 (K and V) × bytes per element, whatever the spread of counts
 * across heads and layers (AdaKV, PyramidKV). Decode tokens are appended in place at each head's end with
 * amortised growth; the allocation is reported separately by `capacityBytes()`. Each layer is one pair of
 * buffers read directly by `raggedAttention` / the native kernel (`layer(l)`), with no padding and no copy.
 *
 * Mutable (unlike `KvCacheV1` caches): one store belongs to one sequence. Positions are kept per entry so
 * kept keys keep their original positions; new tokens continue at the caller's positions.
 */
export class RaggedKvStore {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly dtype: KvDtype;
  readonly growthFactor: number;
  private readonly layers: Layer[];
  private disposed = false;

  constructor(options: RaggedKvStoreOptions) {
    this.numLayers = int('numLayers', options.numLayers, 1);
    this.numKvHeads = int('numKvHeads', options.numKvHeads, 1);
    this.headDim = int('headDim', options.headDim, 1);
    const dtype = options.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16') throw new InvalidArgumentError({ argument: 'dtype', value: dtype, expected: "'float32' | 'float16'" });
    this.dtype = dtype;
    const growth = options.growthFactor ?? 1.5;
    if (typeof growth !== 'number' || !(growth > 1 && growth <= 4)) {
      throw new InvalidArgumentError({ argument: 'growthFactor', value: growth, expected: 'a number in (1, 4]' });
    }
    this.growthFactor = growth;
    this.layers = Array.from({ length: this.numLayers }, () => this.emptyLayer());
  }

  /** A store holding, per layer, the `kept` entries of each layer's full keys and values (see `setLayer`). */
  static fromSelection(options: Omit<RaggedKvStoreOptions, 'numLayers'> & { layers: readonly RaggedLayerInput[] }): RaggedKvStore {
    if (!Array.isArray(options.layers)) throw new InvalidArgumentError({ argument: 'layers', value: options.layers, expected: 'an array, one entry per layer' });
    const store = new RaggedKvStore({ ...options, numLayers: options.layers.length });
    for (let l = 0; l < options.layers.length; l++) store.setLayer(l, options.layers[l]);
    return store;
  }

  /** Bytes per stored element: 4 (float32) or 2 (float16). */
  get bytesPerElement(): number {
    return this.dtype === 'float16' ? 2 : 4;
  }

  /**
   * Replaces layer `layer` with the `kept` entries of its full keys and values (layer-wise prefill: call it
   * right after the layer's attention, then drop the full tensors). Capacity = kept + `reserve` per head.
   */
  setLayer(layer: number, input: RaggedLayerInput): void {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    const hkv = this.numKvHeads;
    const d = this.headDim;
    const n = int('length', input.length, 0);
    const reserve = int('reserve', input.reserve ?? 0, 0);
    storage('keys', input.keys, hkv * n * d, 'numKvHeads·length·headDim');
    storage('values', input.values, hkv * n * d, 'numKvHeads·length·headDim');
    if (input.positions !== undefined && (!(input.positions instanceof Int32Array) || input.positions.length !== n)) {
      throw new InvalidArgumentError({ argument: 'positions', value: input.positions?.length, expected: `an Int32Array of length ${n}` });
    }
    if (!Array.isArray(input.kept) || input.kept.length !== hkv) {
      throw new InvalidArgumentError({ argument: 'kept.length', value: (input.kept as unknown[] | undefined)?.length, expected: `numKvHeads (${hkv})` });
    }
    const capacity = new Int32Array(hkv);
    for (let h = 0; h < hkv; h++) {
      const kept = input.kept[h];
      if (!(kept instanceof Int32Array)) throw new InvalidArgumentError({ argument: `kept[${h}]`, value: typeof kept, expected: 'an Int32Array' });
      for (let i = 0; i < kept.length; i++) {
        const idx = kept[i];
        if (idx < 0 || idx >= n || (i > 0 && idx <= kept[i - 1])) {
          throw new InvalidArgumentError({ argument: `kept[${h}][${i}]`, value: idx, expected: `ascending distinct indices in 0..${n - 1}` });
        }
      }
      capacity[h] = kept.length + reserve;
    }
    const next = this.allocate(capacity);
    for (let h = 0; h < hkv; h++) {
      const kept = input.kept[h];
      const o = next.offsets[h];
      for (let i = 0; i < kept.length; i++) {
        const src = (h * n + kept[i]) * d;
        this.writeRow(next.keys, (o + i) * d, input.keys, src);
        this.writeRow(next.values, (o + i) * d, input.values, src);
        next.positions[o + i] = input.positions ? input.positions[kept[i]] : kept[i];
      }
      next.lengths[h] = kept.length;
    }
    this.layers[layer] = next;
  }

  /**
   * Appends `count` new tokens at the end of every KV head of `layer` (a decode step or a prefill chunk),
   * in place while capacity lasts, else after growing the layer by `growthFactor`.
   * @param keys (numKvHeads, count, headDim), post-RoPE; f32 or f16 bits
   * @param values (numKvHeads, count, headDim)
   * @param positions (count): the tokens' positions, shared by every head
   */
  append(layer: number, keys: KvStorage, values: KvStorage, positions: Int32Array): void {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    if (!(positions instanceof Int32Array)) throw new InvalidArgumentError({ argument: 'positions', value: typeof positions, expected: 'an Int32Array (count)' });
    const t = positions.length;
    const hkv = this.numKvHeads;
    const d = this.headDim;
    storage('keys', keys, hkv * t * d, `numKvHeads·count·headDim (count = positions.length = ${t})`);
    storage('values', values, hkv * t * d, `numKvHeads·count·headDim (count = positions.length = ${t})`);
    if (t === 0) return;
    let L = this.layers[layer];
    let grow = false;
    for (let h = 0; h < hkv; h++) if (L.lengths[h] + t > L.capacity[h]) grow = true;
    if (grow) {
      // Every head appends the same tokens, so all heads get the same spare room (one reallocation serves them
      // all): max(16, ⌈(growthFactor − 1) × mean head length⌉) entries, geometric in the length → O(1) amortised.
      let total = 0;
      for (let h = 0; h < hkv; h++) total += L.lengths[h] + t;
      const spare = Math.max(16, Math.ceil(((this.growthFactor - 1) * total) / hkv));
      const capacity = Int32Array.from(L.capacity, (c, h) => Math.max(c, L.lengths[h] + t + spare));
      const next = this.allocate(capacity);
      // Copy each head's block to its new place (bytes; no dtype conversion).
      for (let h = 0; h < hkv; h++) {
        const from = L.offsets[h];
        const len = L.lengths[h];
        const to = next.offsets[h];
        next.keys.set(L.keys.subarray(from * d, (from + len) * d) as never, to * d);
        next.values.set(L.values.subarray(from * d, (from + len) * d) as never, to * d);
        next.positions.set(L.positions.subarray(from, from + len), to);
        next.lengths[h] = len;
      }
      this.layers[layer] = next;
      L = next;
    }
    for (let h = 0; h < hkv; h++) {
      const row0 = L.offsets[h] + L.lengths[h];
      for (let i = 0; i < t; i++) {
        this.writeRow(L.keys, (row0 + i) * d, keys, (h * t + i) * d);
        this.writeRow(L.values, (row0 + i) * d, values, (h * t + i) * d);
        L.positions[row0 + i] = positions[i];
      }
      L.lengths[h] += t;
    }
  }

  /** Makes room for `additional` more entries in every (layer, KV head), so the next appends do not reallocate. */
  reserve(additional: number): void {
    this.check();
    const extra = int('additional', additional, 0);
    for (let l = 0; l < this.numLayers; l++) {
      const L = this.layers[l];
      if (L.lengths.every((n, h) => n + extra <= L.capacity[h])) continue;
      const next = this.allocate(Int32Array.from(L.capacity, (c, h) => Math.max(c, L.lengths[h] + extra)));
      for (let h = 0; h < this.numKvHeads; h++) {
        const from = L.offsets[h];
        const len = L.lengths[h];
        next.keys.set(L.keys.subarray(from * this.headDim, (from + len) * this.headDim) as never, next.offsets[h] * this.headDim);
        next.values.set(L.values.subarray(from * this.headDim, (from + len) * this.headDim) as never, next.offsets[h] * this.headDim);
        next.positions.set(L.positions.subarray(from, from + len), next.offsets[h]);
        next.lengths[h] = len;
      }
      this.layers[l] = next;
    }
  }

  /** The layer in `raggedAttention`'s layout (no copy of K/V; offsets and lengths are copies). */
  layer(layer: number): RaggedKvLayerView {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    const L = this.layers[layer];
    return { keys: L.keys, values: L.values, offsets: L.offsets.slice(), lengths: L.lengths.slice() };
  }

  /** Entries held per KV head of `layer`, (numKvHeads). */
  lengths(layer: number): Int32Array {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    return this.layers[layer].lengths.slice();
  }

  /** Original positions of the entries of (layer, kvHead), in storage order. */
  positions(layer: number, kvHead: number): Int32Array {
    const L = this.head(layer, kvHead);
    return L.positions.slice(L.offsets[kvHead], L.offsets[kvHead] + L.lengths[kvHead]);
  }

  /** Keys and values of (layer, kvHead) as float32 copies, each (length, headDim). */
  readHead(layer: number, kvHead: number): { keys: Float32Array; values: Float32Array } {
    const L = this.head(layer, kvHead);
    const d = this.headDim;
    const from = L.offsets[kvHead] * d;
    const to = from + L.lengths[kvHead] * d;
    return { keys: toFloat32(L.keys.subarray(from, to)), values: toFloat32(L.values.subarray(from, to)) };
  }

  /** Entries held in all (layer, KV head) together. */
  entryCount(): number {
    this.check();
    let total = 0;
    for (const L of this.layers) for (const n of L.lengths) total += n;
    return total;
  }

  /** True bytes of the kept keys and values: Σ entries × headDim × 2 × bytesPerElement (positions not counted). */
  byteSize(): number {
    return this.entryCount() * this.headDim * 2 * this.bytesPerElement;
  }

  /** Bytes allocated for keys and values, spare capacity included. */
  capacityBytes(): number {
    this.check();
    let rows = 0;
    for (const L of this.layers) for (const c of L.capacity) rows += c;
    return rows * this.headDim * 2 * this.bytesPerElement;
  }

  /** Releases the buffers; every later call throws `DisposedError`. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.layers.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private emptyLayer(): Layer {
    return this.allocate(new Int32Array(this.numKvHeads));
  }

  private allocate(capacity: Int32Array): Layer {
    const offsets = new Int32Array(this.numKvHeads);
    let rows = 0;
    for (let h = 0; h < this.numKvHeads; h++) {
      offsets[h] = rows;
      rows += capacity[h];
    }
    if (rows > 2 ** 31 - 1) throw new InvalidArgumentError({ argument: 'capacity', value: rows, expected: 'at most 2^31 − 1 rows per layer' });
    const n = rows * this.headDim;
    const make = () => (this.dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n));
    return { keys: make(), values: make(), positions: new Int32Array(rows), offsets, lengths: new Int32Array(this.numKvHeads), capacity };
  }

  /** Copies one row of headDim elements, converting between f32 and f16 bits as needed. */
  private writeRow(dst: KvStorage, at: number, src: KvStorage, from: number): void {
    const d = this.headDim;
    if (dst instanceof Float32Array) {
      if (src instanceof Float32Array) dst.set(src.subarray(from, from + d), at);
      else {
        const t = float16Table();
        for (let x = 0; x < d; x++) dst[at + x] = t[src[from + x]];
      }
    } else if (src instanceof Uint16Array) dst.set(src.subarray(from, from + d), at);
    else dst.set(float32ToFloat16(src.subarray(from, from + d)), at);
  }

  private head(layer: number, kvHead: number): Layer {
    this.check();
    this.checkIndex('layer', layer, this.numLayers);
    this.checkIndex('kvHead', kvHead, this.numKvHeads);
    return this.layers[layer];
  }

  private check(): void {
    if (this.disposed) throw new DisposedError('RaggedKvStore');
  }

  private checkIndex(argument: string, value: number, count: number): void {
    if (!Number.isInteger(value) || value < 0 || value >= count) throw new InvalidArgumentError({ argument, value, expected: `an integer in 0..${count - 1}` });
  }
}

function int(argument: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31 - 1) {
    throw new InvalidArgumentError({ argument, value, expected: `an integer ≥ ${min}` });
  }
  return value;
}

function storage(argument: string, value: unknown, length: number, formula: string): void {
  if (!(value instanceof Float32Array) && !(value instanceof Uint16Array)) {
    throw new InvalidArgumentError({ argument, value: typeof value, expected: 'a Float32Array (f32) or Uint16Array (f16 bits)' });
  }
  if (value.length !== length) throw new InvalidArgumentError({ argument: `${argument}.length`, value: value.length, expected: `${formula} = ${length}` });
}

function toFloat32(src: KvStorage): Float32Array {
  if (src instanceof Float32Array) return src.slice();
  const t = float16Table();
  return Float32Array.from(src, (bits) => t[bits]);
}
