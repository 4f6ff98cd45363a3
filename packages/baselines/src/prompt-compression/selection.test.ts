import { InvalidArgumentError } from '@draft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectRandom } from './random.js';
import { selectRecency } from './recency.js';
import { selectSelfInformation, surprisal } from './self-information.js';
import { scoreSpecPrefill, selectSpecPrefillChunks } from './spec-prefill.js';

const f = (values: number[]) => Float32Array.from(values);
const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(actual[i]).toBeCloseTo(e, 6);
  });
};

describe('selectSpecPrefillChunks (hand-derived goldens)', () => {
  it('keeps the last chunk, then whole chunks by mean score, trimming the first chunk that does not fit', () => {
    // n = 10, S = 3: c0 [0,1,2] mean .2, c1 [3,4,5] mean .3, c2 [6,7,8] mean .4, c3 [9] (last, always kept).
    // C = 6: [9]; remaining 5 → c2 fits → 6,7,8, remaining 2 → c1 does not fit: its top-2 tokens 3 (.9), 4 (0, tie → lower).
    const s = [0.1, 0.2, 0.3, 0.9, 0, 0, 0.4, 0.4, 0.4, 0];
    expect(Array.from(selectSpecPrefillChunks({ scores: s, budget: 6, chunkSize: 3 }))).toEqual([3, 4, 6, 7, 8, 9]);
  });

  it('ranks chunks by their mean, not their max', () => {
    // n = 7, S = 3: c0 [.9 0 0] mean .3, c1 [.35 .35 .35] mean .35, c2 [6] last. C = 4 → [6] + c1.
    const s = [0.9, 0, 0, 0.35, 0.35, 0.35, 0];
    expect(Array.from(selectSpecPrefillChunks({ scores: s, budget: 4, chunkSize: 3 }))).toEqual([3, 4, 5, 6]);
  });

  it('equal chunk means → lower chunk first', () => {
    expect(Array.from(selectSpecPrefillChunks({ scores: new Array(9).fill(1), budget: 6, chunkSize: 3 }))).toEqual([0, 1, 2, 6, 7, 8]);
  });

  it('a last chunk of ≥ C tokens keeps only its last C; C ≥ n keeps all', () => {
    // n = 10, S = 4: last chunk [8, 9].
    const s = new Array(10).fill(0.5);
    expect(Array.from(selectSpecPrefillChunks({ scores: s, budget: 1, chunkSize: 4 }))).toEqual([9]);
    expect(Array.from(selectSpecPrefillChunks({ scores: s, budget: 2, chunkSize: 4 }))).toEqual([8, 9]);
    expect(Array.from(selectSpecPrefillChunks({ scores: s, budget: 10, chunkSize: 4 }))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('validates', () => {
    expect(() => selectSpecPrefillChunks({ scores: [1, 2], budget: 0, chunkSize: 1 })).toThrow(InvalidArgumentError);
    expect(() => selectSpecPrefillChunks({ scores: [1, 2], budget: 1, chunkSize: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => selectSpecPrefillChunks({ scores: [], budget: 1, chunkSize: 1 })).toThrow(InvalidArgumentError);
  });
});

describe('scoreSpecPrefill (hand-derived goldens)', () => {
  // headDim 1, query 1 → logits = keys.
  const shape = { numHeads: 1, numKvHeads: 1, headDim: 1, promptLength: 3 };

  it('softmax over all keys, avg-pool (zero pad, /k) the prompt columns, mean over query steps', () => {
    // step 0 (last prompt token): keys [0, ln 3, 0] → [.2 .6 .2] → pool k = 3: [.8/3, 1/3, .8/3]
    // step 1 (fed-back token, 4 keys): [0, ln 3, 0, ln 4] → [1 3 1 4]/9 → prompt [1/9 3/9 1/9] → pool [4/27 5/27 4/27]
    // mean: [(.8/3 + 4/27)/2, (1/3 + 5/27)/2, …] = [.207407, 7/27, .207407]
    const steps = [
      [{ queries: f([1]), keys: f([0, Math.log(3), 0]) }],
      [{ queries: f([1]), keys: f([0, Math.log(3), 0, Math.log(4)]) }],
    ];
    close(scoreSpecPrefill({ ...shape, steps, kernelSize: 3 }), [(0.8 / 3 + 4 / 27) / 2, 7 / 27, (0.8 / 3 + 4 / 27) / 2]);
  });

  it('reduces over heads (and layers) with max by default, or mean', () => {
    // 2 heads, k = 1: head 0 (q 1) [.2 .6 .2]; head 1 (q −1) logits [0, −ln 3, 0] → [3/7 1/7 3/7]
    const steps = [[{ queries: f([1, -1]), keys: f([0, Math.log(3), 0]) }]];
    const input = { ...shape, numHeads: 2, steps, kernelSize: 1 };
    close(scoreSpecPrefill(input), [3 / 7, 0.6, 3 / 7]);
    close(scoreSpecPrefill({ ...input, reduce: 'mean' }), [(0.2 + 3 / 7) / 2, (0.6 + 1 / 7) / 2, (0.2 + 3 / 7) / 2]);
    expect(() => scoreSpecPrefill({ ...input, kernelSize: 2 })).toThrow(InvalidArgumentError);
  });
});

describe('self-information (hand-derived goldens)', () => {
  it('surprisal = −ln softmax(row)[target]', () => {
    // row [0, ln 3] → p = [1/4, 3/4]
    close(surprisal(f([0, Math.log(3), 0, Math.log(3)]), [0, 1], 2), [Math.log(4), -Math.log(0.75)]);
  });

  it('keeps the last min(W, C) tokens and the most surprising others', () => {
    const s = [Infinity, 0.5, 2.0, 0.1, 3.0, 0.2, 0.7, 0.4];
    // W = 2: window [6, 7]; top 2 of positions 0..5: ∞@0, 3.0@4
    expect(Array.from(selectSelfInformation({ scores: s, budget: 4, windowSize: 2 }))).toEqual([0, 4, 6, 7]);
    // W = 0: top 4 of all: ∞@0, 3.0@4, 2.0@2, .7@6
    expect(Array.from(selectSelfInformation({ scores: s, budget: 4, windowSize: 0 }))).toEqual([0, 2, 4, 6]);
    // W = 5 > C = 4: the last 4
    expect(Array.from(selectSelfInformation({ scores: s, budget: 4, windowSize: 5 }))).toEqual([4, 5, 6, 7]);
    // ties → lower position: positions 1, 2 tie at 1
    expect(Array.from(selectSelfInformation({ scores: [0, 1, 1, 0, 0], budget: 2, windowSize: 1 }))).toEqual([1, 4]);
  });
});

describe('recency and random', () => {
  it('recency keeps the last C', () => {
    expect(Array.from(selectRecency({ promptLength: 6, budget: 2 }))).toEqual([4, 5]);
    expect(Array.from(selectRecency({ promptLength: 3, budget: 5 }))).toEqual([0, 1, 2]);
  });

  it('random is seeded: same seed same selection, another seed another one', () => {
    const a = Array.from(selectRandom({ promptLength: 100, budget: 10, seed: 7 }));
    expect(Array.from(selectRandom({ promptLength: 100, budget: 10, seed: 7 }))).toEqual(a);
    expect(Array.from(selectRandom({ promptLength: 100, budget: 10, seed: 8 }))).not.toEqual(a);
    expect(Array.from(selectRandom({ promptLength: 4, budget: 9, seed: 1 }))).toEqual([0, 1, 2, 3]);
    expect(() => selectRandom({ promptLength: 4, budget: 2, seed: 0.5 })).toThrow(InvalidArgumentError);
  });

  it('random draws every position about equally often', () => {
    const counts = new Array(10).fill(0);
    for (let seed = 0; seed < 2000; seed++) for (const p of selectRandom({ promptLength: 10, budget: 3, seed })) counts[p]++;
    // Expected 600 each; a biased shuffle (e.g. j drawn from 0..n−1) shows as a skew well beyond ±100.
    for (const c of counts) expect(Math.abs(c - 600)).toBeLessThan(100);
  });
});

describe('selections (properties): exactly min(C, n) ascending in-range positions', () => {
  const arb = fc.integer({ min: 1, max: 50 }).chain((n) =>
    fc.record({
      scores: fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }),
      budget: fc.integer({ min: 1, max: 60 }),
      chunkSize: fc.integer({ min: 1, max: 8 }),
      windowSize: fc.integer({ min: 0, max: 10 }),
      seed: fc.integer(),
    }),
  );
  const check = (kept: Int32Array, n: number, budget: number) => {
    expect(kept.length).toBe(Math.min(n, budget));
    for (let i = 0; i < kept.length; i++) {
      expect(kept[i]).toBeGreaterThanOrEqual(0);
      expect(kept[i]).toBeLessThan(n);
      if (i > 0) expect(kept[i]).toBeGreaterThan(kept[i - 1]);
    }
  };

  it('holds for every selection; SpecPrefill keeps the last chunk (or the last C), self-information its window', () => {
    fc.assert(
      fc.property(arb, ({ scores, budget, chunkSize, windowSize, seed }) => {
        const n = scores.length;
        const chunks = selectSpecPrefillChunks({ scores, budget, chunkSize });
        check(chunks, n, budget);
        const lastLength = n - (Math.ceil(n / chunkSize) - 1) * chunkSize;
        const set = new Set(chunks);
        for (let p = n - Math.min(lastLength, budget); p < n; p++) expect(set.has(p)).toBe(true);
        const info = selectSelfInformation({ scores, budget, windowSize });
        check(info, n, budget);
        const infoSet = new Set(info);
        for (let p = n - Math.min(windowSize, budget, n); p < n; p++) expect(infoSet.has(p)).toBe(true);
        check(selectRecency({ promptLength: n, budget }), n, budget);
        check(selectRandom({ promptLength: n, budget, seed }), n, budget);
      }),
      { numRuns: 300 },
    );
  });
});
