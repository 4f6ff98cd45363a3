import { InvalidArgumentError, pool1d, topK } from '@draft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { neighbourOffsets, selectSpecPC } from './select-specpc.js';

const select = (scores: number[], budget: number, windowSize: number, kernelSize: number, neighbourTokens: number) =>
  Array.from(selectSpecPC({ scores: Float32Array.from(scores), budget, windowSize, kernelSize, neighbourTokens }));

describe('neighbourOffsets (hand-derived)', () => {
  it('gives exactly N offsets −((N−1)//2) … N−1−((N−1)//2), by |offset|, negative first on ties', () => {
    expect(Array.from(neighbourOffsets(0))).toEqual([]);
    expect(Array.from(neighbourOffsets(1))).toEqual([0]); // low = 0
    expect(Array.from(neighbourOffsets(2))).toEqual([0, 1]); // low = −(1//2) = 0 → {0, 1}
    expect(Array.from(neighbourOffsets(3))).toEqual([0, -1, 1]); // low = −1 → {−1, 0, 1}
    expect(Array.from(neighbourOffsets(4))).toEqual([0, -1, 1, 2]); // low = −(3//2) = −1 → {−1 … 2}
    expect(Array.from(neighbourOffsets(5))).toEqual([0, -1, 1, -2, 2]); // low = −2 → {−2 … 2}
    const o64 = Array.from(neighbourOffsets(64)); // low = −(63//2) = −31 → {−31 … 32}
    expect(o64.length).toBe(64);
    expect(Math.min(...o64)).toBe(-31);
    expect(Math.max(...o64)).toBe(32);
    expect(o64.slice(-3)).toEqual([-31, 31, 32]); // |31| tie: −31 first; 32 alone last
  });
});

describe('selectSpecPC (hand-derived goldens)', () => {
  it('no pooling, no neighbourhoods: window first, then top-C in score order, cut to C', () => {
    // n = 8, k = 1 (s̃ = s), N = 0, C = 4, W = 2.
    // top-4 by score: 0.9@1, 0.9@3 (tie → lower first), 0.8@5, 0.4@7 → I = [1, 3, 5, 7].
    // [window 6, 7] ++ I = [6, 7, 1, 3, 5, 7] → dedupe [6, 7, 1, 3, 5] → cut to 4 [6, 7, 1, 3] → sort.
    expect(select([0.1, 0.9, 0.3, 0.9, 0.2, 0.8, 0.05, 0.4], 4, 2, 1, 0)).toEqual([1, 3, 6, 7]);
  });

  it('odd kernel: centred max-pool with zero padding, ties toward the lower position', () => {
    // k = 3: left (3−1)//2 = 1, right 1. s = [.1 .9 .3 .2 .2 .8 .05 .4]
    // s̃ = [max(0,.1,.9)=.9, .9, max(.9,.3,.2)=.9, max(.3,.2,.2)=.3, .8, .8, max(.8,.05,.4)=.8, max(.05,.4,0)=.4]
    // C = 3: I = [0, 1, 2] (three .9, lower first). [7] ++ I → [7, 0, 1] → sort.
    expect(select([0.1, 0.9, 0.3, 0.2, 0.2, 0.8, 0.05, 0.4], 3, 1, 3, 0)).toEqual([0, 1, 7]);
  });

  it('even kernel pads (k−1)//2 left and k−1−(k−1)//2 right', () => {
    // k = 4: left 1, right 2 → s̃[i] = max(s[i−1 … i+2]) with zeros outside. s = [.2 0 0 0 0 .5 0 .1]
    // s̃ = [.2, .2, 0, .5 (s2..s5), .5, .5, .5 (s5..s7, pad), .1 (s6, s7, pad, pad)]
    // C = 2: I = [3, 4] (both .5, lower first). [7] ++ [3, 4] → cut [7, 3] → [3, 7].
    // (A symmetric-ish left-2/right-1 pad would give s̃[3] = max(s1..s4) = 0 and pick 4, 5 instead.)
    expect(select([0.2, 0, 0, 0, 0, 0.5, 0, 0.1], 2, 1, 4, 0)).toEqual([3, 7]);
  });

  it('odd N: neighbourhoods flattened per selected token, first occurrence kept, cut to C', () => {
    // n = 12, k = 1, N = 3 (offsets [0, −1, 1]), C = 6, W = 2.
    // I = [4 (.9), 9 (.7), 0, 1, 2, 3 (.1 ties, lower first)].
    // J = [4, 3, 5,  9, 8, 10,  0, 0, 1, …] → [window 10, 11] ++ J → [10, 11, 4, 3, 5, 9, 8, …]
    // cut to 6 → [10, 11, 4, 3, 5, 9] → sort. (8 loses to the cut; 10 was already in the window.)
    const s = [0.1, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1];
    expect(select(s, 6, 2, 1, 3)).toEqual([3, 4, 5, 9, 10, 11]);
  });

  it('even N and edges: offsets are clamped to [0, n−1] before deduplication', () => {
    // n = 10, k = 1, C = 4, W = 1, N = 5 (offsets [0, −1, 1, −2, 2]).
    // I = [0 (1.0), 9 (.5), 1, 2 (0-ties, lower first)].
    // J: 0 → [0, clamp(−1)=0, 1, clamp(−2)=0, 2] = 0, 1, 2; 9 → 9, 8, clamp(10)=9, 7, 9 …
    // [9] ++ [0, 1, 2, 9, 8, 7, …] → [9, 0, 1, 2] → sort.
    expect(select([1, 0, 0, 0, 0, 0, 0, 0, 0, 0.5], 4, 1, 1, 5)).toEqual([0, 1, 2, 9]);
    // N = 2 (offsets [0, 1]): I = [0, 9, 1, 2]; J = [0, 1, 9, clamp(10)=9, 1, 2, 2, 3]
    // [9] ++ J → [9, 0, 1, 2] → sort: same set, reached through the right-only neighbour.
    expect(select([1, 0, 0, 0, 0, 0, 0, 0, 0, 0.5], 4, 1, 1, 2)).toEqual([0, 1, 2, 9]);
    // N = 2 with the peak at 5: I = [5 (1.0), 0, 1, 2]; J = [5, 6, 0, 1, …]; [9] ++ J → [9, 5, 6, 0] → sort.
    expect(select([0, 0, 0, 0, 0, 1, 0, 0, 0, 0], 4, 1, 1, 2)).toEqual([0, 5, 6, 9]);
  });

  it('C ≥ n keeps every position', () => {
    expect(select([0.3, 0.1, 0.2, 0.5, 0.4], 5, 2, 3, 3)).toEqual([0, 1, 2, 3, 4]);
    expect(select([0.3, 0.1, 0.2, 0.5, 0.4], 99, 1, 1, 0)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a window longer than C keeps the first C window positions (the reference cuts after the window)', () => {
    // n = 10, W = 6, C = 4: [4, 5, 6, 7, 8, 9] ++ … → cut to [4, 5, 6, 7].
    expect(select([9, 9, 9, 9, 0, 0, 0, 0, 0, 0], 4, 6, 1, 0)).toEqual([4, 5, 6, 7]);
  });

  it('all-equal scores: lowest positions after the window', () => {
    expect(select([1, 1, 1, 1, 1, 1], 3, 1, 1, 0)).toEqual([0, 1, 5]);
  });

  it('validates its options', () => {
    const base = { scores: new Float32Array(8), budget: 4, windowSize: 2, kernelSize: 3, neighbourTokens: 3 };
    for (const bad of [
      { budget: 0 },
      { budget: 1.5 },
      { windowSize: 0 },
      { windowSize: 9 }, // W > n
      { kernelSize: 0 },
      { kernelSize: 2.5 },
      { neighbourTokens: -1 },
      { scores: new Float32Array(0) },
    ]) {
      expect(() => selectSpecPC({ ...base, ...bad })).toThrow(InvalidArgumentError);
    }
    // W > n is rejected even when C ≥ n.
    expect(() => selectSpecPC({ ...base, budget: 20, windowSize: 9 })).toThrow(/prompt length/);
  });
});

describe('selectSpecPC (properties)', () => {
  const input = fc
    .integer({ min: 1, max: 60 })
    .chain((n) =>
      fc.record({
        scores: fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }),
        budget: fc.integer({ min: 1, max: 80 }),
        windowSize: fc.integer({ min: 1, max: n }),
        kernelSize: fc.integer({ min: 1, max: 9 }),
        neighbourTokens: fc.integer({ min: 0, max: 9 }),
      }),
    );

  it('keeps exactly min(C, n) ascending in-range positions, the window when W ≤ C, and the best pooled token when W < C', () => {
    fc.assert(
      fc.property(input, ({ scores, budget, windowSize, kernelSize, neighbourTokens }) => {
        const n = scores.length;
        const kept = selectSpecPC({ scores: Float32Array.from(scores), budget, windowSize, kernelSize, neighbourTokens });
        expect(kept.length).toBe(Math.min(budget, n));
        for (let i = 0; i < kept.length; i++) {
          expect(kept[i]).toBeGreaterThanOrEqual(0);
          expect(kept[i]).toBeLessThan(n);
          if (i > 0) expect(kept[i]).toBeGreaterThan(kept[i - 1]);
        }
        const set = new Set(kept);
        if (windowSize <= budget) for (let p = n - windowSize; p < n; p++) expect(set.has(p)).toBe(true);
        if (windowSize < budget && budget < n) {
          const pooled = pool1d(Float32Array.from(scores), { kernel: kernelSize, type: 'max', padding: 'centred-zero' });
          expect(set.has(topK(pooled, 1)[0])).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
