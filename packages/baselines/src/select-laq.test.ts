import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectLAQ } from './select-laq.js';
import { asArrays, naivePool, naiveTop, naiveWindowScores, naiveWithWindow, scalarCase } from './testing/naive.js';

describe('selectLAQ', () => {
  it('pseudo-lookahead queries change the selection (hand-derived)', () => {
    // As SpecKV's golden: window queries look along x, the lookahead query along y; candidate 2 = (3, 0),
    // candidate 6 = (0, 3), the rest 0. Max-reduce: ≈1 at 2 and 6 with the lookahead, only at 2 without.
    const n = 12;
    const make = (lookahead: number) => {
      const keys = new Float32Array(2 * (n + lookahead));
      keys[4] = 3;
      keys[13] = 3;
      const w = 3 + lookahead;
      const queries = new Float32Array(2 * w);
      for (let i = 0; i < 3; i++) queries[2 * i] = 10;
      for (let i = 3; i < w; i++) queries[2 * i + 1] = 10;
      return { queries: [queries], keys: [keys], numHeads: 1, numKvHeads: 1, headDim: 2, promptLength: n, lookaheadLength: lookahead };
    };
    expect(asArrays(selectLAQ({ ...make(1), windowSize: 2, budget: 4, kernelSize: 1 }))).toEqual([[[2, 6, 9, 10]]]);
    expect(asArrays(selectLAQ({ ...make(0), windowSize: 2, budget: 4, kernelSize: 1 }))).toEqual([[[0, 2, 9, 10]]]);
  });

  it('ties and pooling as SpecKV (k_j = .1 .5 .2 .3 .9 .4 .6 .7 .8, maxpool3, C = 6)', () => {
    const input = scalarCase([0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.6, 0.7, 0.8], 2, 1);
    expect(asArrays(selectLAQ({ ...input, lookaheadLength: 1, budget: 6, kernelSize: 3 }))).toEqual([[[3, 4, 5, 7, 9, 10]]]);
  });

  it('agrees with the brute-force reference (max reduce, lookahead, GQA)', () => {
    const n = 16;
    const window = 3;
    const arb = fc.record({
      lookahead: fc.integer({ min: 0, max: 4 }),
      budget: fc.integer({ min: window + 1, max: 18 }),
      kernel: fc.constantFrom(1, 3, 5),
      seedQ: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 4 * 8 * 2, maxLength: 4 * 8 * 2 }),
      seedK: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 2 * 20 * 2, maxLength: 2 * 20 * 2 }),
    });
    fc.assert(
      fc.property(arb, ({ lookahead, budget, kernel, seedQ, seedK }) => {
        const w = window + 1 + lookahead;
        const queries = new Float32Array(seedQ.slice(0, 4 * w * 2).map((v) => v / 2));
        const keys = new Float32Array(seedK.slice(0, 2 * (n + lookahead) * 2).map((v) => v / 2));
        const got = asArrays(selectLAQ({ queries: [queries], keys: [keys], numHeads: 4, numKvHeads: 2, headDim: 2, promptLength: n, lookaheadLength: lookahead, budget, windowSize: window, kernelSize: kernel }))[0];
        const want =
          n <= budget
            ? [0, 1].map(() => Array.from({ length: n - 1 }, (_, i) => i))
            : naiveWindowScores(queries, keys, { hq: 4, hkv: 2, d: 2, n, lookahead, window }, 'max').map((row) =>
                naiveWithWindow(naiveTop(naivePool(row, kernel, 'max'), budget - window), n, window),
              );
        expect(got).toEqual(want);
      }),
      { numRuns: 150 },
    );
  });
});
