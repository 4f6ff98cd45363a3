import { pool1d, topK, windowAttentionScores } from '@draft/core';
import type { FusedWindowScoreOptions, Pool1dOptions } from '@draft/core';

/**
 * The three scoring kernels every selection goes through, in one place so that a native kernel backend
 * (core's kernel-backend registry, once it lands) can replace the TS references without touching the methods.
 */
export const kernels = {
  /** (numHeads, w, d) × (numKvHeads, N, d) -> reduced window attention (numKvHeads, N). */
  windowAttentionScores(queries: Float32Array, keys: Float32Array, options: FusedWindowScoreOptions): Float32Array {
    return windowAttentionScores(queries, keys, options);
  },
  pool1d(scores: Float32Array, options: Pool1dOptions): Float32Array {
    return pool1d(scores, options);
  },
  /** Top-k positions of `scores[offset, offset + length)`, ascending, ties -> lower position. */
  topK(scores: Float32Array, k: number, offset: number, length: number): Int32Array {
    return topK(scores, k, { offset, length });
  },
};
