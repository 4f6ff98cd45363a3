import type { KeptIndices } from './common.js';

/**
 * A model's key/value cache. Keys are stored **post-RoPE**; every entry remembers its original position,
 * so a compacted cache keeps the positions of the tokens it kept and new tokens continue at the true next
 * position (`nextPosition`).
 *
 * Implementations may hold the tensors in another thread or process: tensor reads are async and return copies.
 */
/** Options of `KvCacheV1.gather`. */
export interface GatherOptionsV1 {
  /** The caller disposes the source right after: its memory may go while the result is built. */
  consume?: boolean;
}

export interface KvCacheV1 {
  readonly specificationVersion: 'v1';
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Entries held per layer and KV head: `lengths[layer][kvHead]`. */
  readonly lengths: readonly (readonly number[])[];
  /** True when every (layer, KV head) holds the same number of entries. */
  readonly uniform: boolean;
  /** Position the next appended token takes (one past the largest position ever appended). */
  readonly nextPosition: number;
  /** Original positions of the entries of (layer, kvHead), ascending. */
  positions(layer: number, kvHead: number): Int32Array;
  /** Keys of one layer, shape (numKvHeads, length, headDim); uniform caches only. */
  readKeys(layer: number): Promise<Float32Array>;
  /** Values of one layer, shape (numKvHeads, length, headDim); uniform caches only. */
  readValues(layer: number): Promise<Float32Array>;
  /**
   * A new cache holding, per (layer, KV head), the entries at the given ascending indices. Its `nextPosition`
   * is one past the largest position it holds (dropped lookahead entries do not advance it).
   * Backends without ragged caches reject non-uniform counts with an UnsupportedCapabilityError.
   * `consume: true` says the caller disposes this cache right after (compaction): a backend may free its memory
   * while it gathers, so the source and the result never both exist whole; the source must not be used again.
   * Backends may ignore it.
   */
  gather(kept: KeptIndices, options?: GatherOptionsV1): Promise<KvCacheV1>;
  /** A new cache holding the first `length` entries of every (layer, KV head). */
  crop(length: number): Promise<KvCacheV1>;
  clone(): Promise<KvCacheV1>;
  /** Bytes held by keys and values. */
  byteSize(): number;
  dispose(): void;
}
