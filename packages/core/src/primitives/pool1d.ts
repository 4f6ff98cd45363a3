import { InvalidArgumentError } from '../spec/errors.js';

export interface Pool1dOptions {
  /** Window size k ≥ 1 (k = 1 copies the input). */
  kernel: number;
  type: 'max' | 'avg';
  /**
   * - 'same': k//2 on both sides (KV methods; odd k). Max pads with −inf, avg with zeros and always divides by
   *   k (count_include_pad).
   * - 'centred-zero': zeros, left (k−1)//2 and right k−1−(k−1)//2 (SpecPC; any k).
   */
  padding: 'same' | 'centred-zero';
  /** Independent rows of length `length` laid out back to back (default 1). */
  rows?: number;
}

/**
 * Stride-1 1-D pooling that keeps the length, applied to each row.
 * @param scores (rows, length)
 * @returns (rows, length)
 */
export function pool1d(scores: Float32Array, options: Pool1dOptions): Float32Array {
  const { kernel: k, type, padding } = options;
  const rows = options.rows ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError({ argument: 'kernel', value: k, expected: 'an integer ≥ 1' });
  if (padding === 'same' && k % 2 === 0) {
    throw new InvalidArgumentError({ argument: 'kernel', value: k, expected: "an odd integer for 'same' padding" });
  }
  if (!Number.isInteger(rows) || rows < 1 || scores.length % rows !== 0) {
    throw new InvalidArgumentError({ argument: 'rows', value: rows, expected: `a divisor of scores.length (${scores.length})` });
  }
  const n = scores.length / rows;
  const out = new Float32Array(scores.length);
  if (k === 1) {
    out.set(scores);
    return out;
  }
  const left = padding === 'same' ? (k - 1) / 2 : Math.floor((k - 1) / 2);
  const zeroPad = padding === 'centred-zero' || type === 'avg';
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    for (let i = 0; i < n; i++) {
      const from = i - left;
      const to = from + k; // exclusive
      const lo = Math.max(0, from);
      const hi = Math.min(n, to);
      const padded = to - from - (hi - lo) > 0;
      if (type === 'max') {
        let m = zeroPad && padded ? 0 : -Infinity;
        for (let j = lo; j < hi; j++) if (scores[base + j] > m) m = scores[base + j];
        out[base + i] = m;
      } else {
        let s = 0;
        for (let j = lo; j < hi; j++) s += scores[base + j];
        out[base + i] = s / k;
      }
    }
  }
  return out;
}
