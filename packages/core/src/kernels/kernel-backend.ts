import type { Pool1dOptions } from '../primitives/pool1d.js';
import type { KvStorage, RaggedAttentionOptions } from '../primitives/ragged-attention.js';
import type { FusedWindowScoreOptions } from '../primitives/window-scores.js';

/** A value or a promise of it: native backends may run kernels off the main thread. */
export type MaybePromise<T> = T | Promise<T>;

export interface TopKPerRowOptions {
  /** Independent rows laid out back to back. */
  rows: number;
  /** Scores per row. */
  length: number;
  /** Entries to keep per row: one count for every row, or one count per row (ragged, AdaKV). Clipped to `length`. */
  k: number | readonly number[];
}

export interface GatherShape {
  numKvHeads: number;
  length: number;
  headDim: number;
}

/**
 * A set of scoring kernels. The TypeScript reference backend (`referenceKernelBackend`) always exists; a native
 * addon (`@draft/cuda`, name 'native') registers itself with a higher priority and replaces it transparently
 * for every caller that goes through `getKernelBackend()`. Every backend must agree with the reference up to
 * float rounding (parity tests), including tie-breaking (equal scores → lower position wins).
 */
export interface KernelBackendV1 {
  readonly specificationVersion: 'v1';
  /** Unique name: 'reference' for the TS backend, 'native' for @draft/cuda. */
  readonly name: string;
  /** Where the kernels run, e.g. 'js', 'cpu', 'cuda'. */
  readonly device: string;
  /**
   * Fused window attention + GQA-aware reduce (see `windowAttentionScores`).
   * @param queries post-RoPE, (numHeads, queryCount, headDim)
   * @param keys post-RoPE, (numKvHeads, keyCount, headDim)
   * @returns (numKvHeads, keyCount), higher score = keep
   */
  windowAttentionScores(queries: Float32Array, keys: Float32Array, options: FusedWindowScoreOptions): MaybePromise<Float32Array>;
  /**
   * Stride-1 pooling that keeps the length (see `pool1d`).
   * @param scores (rows, length) @returns (rows, length)
   */
  pool1d(scores: Float32Array, options: Pool1dOptions): MaybePromise<Float32Array>;
  /**
   * Per-row top-k, ties toward the lower position.
   * @param scores (rows, length), higher score = keep
   * @returns one ascending Int32Array of positions per row
   */
  topKPerRow(scores: Float32Array, options: TopKPerRowOptions): MaybePromise<Int32Array[]>;
  /**
   * Per-KV-head row gather (see `gatherRows`).
   * @param tensor (numKvHeads, length, headDim)
   * @returns per head a (kept[h].length, headDim) block, concatenated head after head
   */
  gatherRows(tensor: Float32Array, shape: GatherShape, kept: readonly Int32Array[]): MaybePromise<Float32Array>;
  /**
   * Attention of one layer's new tokens over a ragged per-KV-head cache (see `raggedAttention`). Optional so
   * that existing third-party backends stay valid: callers use `raggedAttentionOf(backend)`, which falls back
   * to the TS reference.
   * @param queries post-RoPE, (numHeads, queryCount, headDim)
   * @param keys packed kept rows, f32 or f16 bits; head h at rows offsets[h] … offsets[h] + lengths[h] − 1
   * @param values same layout as keys
   * @returns (numHeads, queryCount, headDim)
   */
  raggedAttention?(queries: Float32Array, keys: KvStorage, values: KvStorage, options: RaggedAttentionOptions): MaybePromise<Float32Array>;
}
