import { InvalidArgumentError, pool1d, range, requireInteger, topK } from '@draft/core';

export interface SelectSpecPCOptions {
  /** Per prompt token importance, (n); higher score = keep (SpecPC step 3, see `scoreSpecPC`). */
  scores: ArrayLike<number>;
  /** C: prompt tokens kept, window included (reference `max_capacity_prompt`). Integer ≥ 1. */
  budget: number;
  /** W: the last W prompt positions are always kept (reference `window_size`). Integer in 1..n. */
  windowSize: number;
  /** k: max-pool kernel, centred zero padding (reference `kernel_size`). Integer ≥ 1; 1 = no pooling; even allowed. */
  kernelSize: number;
  /** N: neighbourhood kept around each selected token (reference `neighbor_tokens`). Integer ≥ 0; 0 = none. */
  neighbourTokens: number;
}

/**
 * The N neighbourhood offsets of SpecPC step 5: −((N−1)//2) … N−1−((N−1)//2), ordered by |offset|, ties
 * negative first. N = 4 → [0, −1, 1, 2]; N = 5 → [0, −1, 1, −2, 2]; N = 0 → [].
 */
export function neighbourOffsets(neighbourTokens: number): Int32Array {
  const n = requireInteger('neighbourTokens', neighbourTokens, 0);
  const low = -Math.floor((n - 1) / 2);
  const offsets = Array.from({ length: n }, (_, i) => low + i);
  // Array.prototype.sort is stable: the ascending input puts −d before +d on equal |offset|.
  offsets.sort((a, b) => Math.abs(a) - Math.abs(b));
  return Int32Array.from(offsets);
}

/**
 * SpecPC token selection (ALGORITHMS.md, SpecPC steps 4–5; Galim et al. 2026, §4 "SpecPC").
 *
 * 1. s̃ = max-pool(scores, k), stride 1, zeros padded left (k−1)//2 and right k−1−(k−1)//2.
 * 2. I = the C highest s̃ in score order (equal scores → lower position first).
 * 3. J = clamp(i + offset, 0, n−1) for i in I (outer) and offset in `neighbourOffsets(N)` (inner), first
 *    occurrence kept (I itself when N = 0).
 * 4. The last W positions n−W … n−1 are put in front of J; duplicates dropped (first occurrence kept); the list
 *    is cut to C and sorted ascending.
 *
 * Returns exactly min(C, n) ascending, distinct indices in [0, n). With C ≥ n every position is kept. When
 * W > C only the first C window positions n−W … n−W+C−1 survive the cut (as in the reference).
 *
 * @throws InvalidArgumentError for non-integer or out-of-range options, an empty score vector, or W > n.
 */
export function selectSpecPC(options: SelectSpecPCOptions): Int32Array {
  const { scores } = options;
  const n = scores?.length ?? 0;
  if (n < 1) throw new InvalidArgumentError({ argument: 'scores.length', value: n, expected: 'at least one score' });
  const budget = requireInteger('budget', options.budget, 1);
  const windowSize = requireInteger('windowSize', options.windowSize, 1);
  const kernelSize = requireInteger('kernelSize', options.kernelSize, 1);
  const offsets = neighbourOffsets(options.neighbourTokens);
  if (windowSize > n) {
    throw new InvalidArgumentError({ argument: 'windowSize', value: windowSize, expected: `≤ the prompt length (${n})` });
  }
  if (budget >= n) return range(0, n);

  const pooled = pool1d(Float32Array.from(scores), { kernel: kernelSize, type: 'max', padding: 'centred-zero' });
  const top = topK(pooled, budget, { order: 'score' });

  const seen = new Uint8Array(n);
  const kept = new Int32Array(budget);
  let count = 0;
  const push = (position: number): boolean => {
    if (!seen[position]) {
      seen[position] = 1;
      kept[count++] = position;
    }
    return count === budget;
  };
  // Window first, then the neighbourhood-expanded top-C in score order; "first occurrence kept" on the
  // concatenation equals this single pass because the window comes first.
  for (let p = n - windowSize; p < n; p++) if (push(p)) return kept.sort();
  for (const i of top) {
    if (offsets.length === 0) {
      if (push(i)) return kept.sort();
      continue;
    }
    for (const o of offsets) if (push(Math.min(n - 1, Math.max(0, i + o)))) return kept.sort();
  }
  // Unreachable: I has C distinct positions (C < n), so at least C distinct positions were offered.
  return kept.subarray(0, count).sort();
}
