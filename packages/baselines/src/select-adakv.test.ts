import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adaKVHeadBudgets, selectAdaKV } from './select-adakv.js';
import { asArrays, naivePool, naiveWindowScores, naiveWithWindow } from './testing/naive.js';

describe('adaKVHeadBudgets — ragged counts by hand', () => {
  it('global top Hkv·B, then round(count·(1 − α) + α·B)', () => {
    // B = 3, Hkv = 2 -> global top 6 of: head 0 = 9 8 7 1 1 1, head 1 = 6 5 .5 .4 .3 .2
    // -> 9 8 7 6 5 and the first 1 (head 0, pos 3): counts 4, 2.
    // α = .2: 4·.8 + .6 = 3.8 -> 4;  2·.8 + .6 = 2.2 -> 2.
    const scores = new Float32Array([9, 8, 7, 1, 1, 1, 6, 5, 0.5, 0.4, 0.3, 0.2]);
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3 })).toEqual([4, 2]);
  });

  it('ties in the global top-k go to the lower head first, then the lower position', () => {
    // Head 1 pos 2 (= 1) ties with head 0 pos 3..5 (= 1); the 6th slot goes to head 0 (lower head) even
    // though head 1's position 2 is lower. Counts 4, 2 -> 4, 2. Position-first would give 3, 3.
    const scores = new Float32Array([9, 8, 7, 1, 1, 1, 6, 5, 1, 0.4, 0.3, 0.2]);
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3 })).toEqual([4, 2]);
  });

  it('rounds exact halves to even (α = 0.5: 3.5 -> 4, 2.5 -> 2)', () => {
    const scores = new Float32Array([9, 8, 7, 1, 1, 1, 6, 5, 0.5, 0.4, 0.3, 0.2]);
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3, alpha: 0.5 })).toEqual([4, 2]);
    // α = 1: uniform B; α = 0: the raw counts.
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3, alpha: 1 })).toEqual([3, 3]);
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3, alpha: 0 })).toEqual([4, 2]);
  });

  it('a head that wins everything: counts 6, 0 -> 5.4 -> 5 and 0.6 -> 1 (the floor)', () => {
    const scores = new Float32Array([9, 9, 9, 9, 9, 9, 1, 1, 1, 1, 1, 1]);
    expect(adaKVHeadBudgets({ scores, numKvHeads: 2, perHeadBudget: 3 })).toEqual([5, 1]);
  });

  it('rejects α outside [0, 1]', () => {
    expect(() => adaKVHeadBudgets({ scores: new Float32Array(4), numKvHeads: 2, perHeadBudget: 1, alpha: 1.5 })).toThrow(/alpha/);
  });
});

describe('selectAdaKV — agrees with a brute-force Ada-SnapKV', () => {
  it('random inputs (Hq = 4, Hkv = 2), ragged heads', () => {
    const n = 24;
    const window = 3;
    const arb = fc.record({
      q: fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 4 * (window + 1) * 2, maxLength: 4 * (window + 1) * 2 }),
      k: fc.array(fc.integer({ min: -4, max: 4 }), { minLength: 2 * n * 2, maxLength: 2 * n * 2 }),
      budget: fc.integer({ min: window + 1, max: n }),
      kernel: fc.constantFrom(1, 3, 7),
    });
    fc.assert(
      fc.property(arb, ({ q, k, budget, kernel }) => {
        const queries = new Float32Array(q.map((v) => v / 2));
        const keys = new Float32Array(k.map((v) => v / 2));
        const got = asArrays(selectAdaKV({ queries: [queries], keys: [keys], numHeads: 4, numKvHeads: 2, headDim: 2, promptLength: n, budget, windowSize: window, kernelSize: kernel }))[0];
        if (n <= budget) return;
        const share = budget - window;
        const pooled = naiveWindowScores(queries, keys, { hq: 4, hkv: 2, d: 2, n, lookahead: 0, window }, 'mean').map((r) => naivePool(r, kernel, 'max'));
        const flat = pooled.flatMap((row, h) => row.map((score, j) => ({ score, h, j })));
        flat.sort((a, b) => (b.score !== a.score ? b.score - a.score : a.h !== b.h ? a.h - b.h : a.j - b.j));
        const counts = [0, 0];
        for (const e of flat.slice(0, 2 * share)) counts[e.h]++;
        const want = pooled.map((row, h) => {
          const exact = counts[h] * 0.8 + 0.2 * share; // never an exact half with α = 0.2
          const order = row.map((_, j) => j).sort((a, b) => (row[b] !== row[a] ? row[b] - row[a] : a - b));
          return naiveWithWindow(order.slice(0, Math.round(exact)).sort((a, b) => a - b), n, window);
        });
        expect(got).toEqual(want);
        expect(got[0].length + got[1].length).toBeGreaterThanOrEqual(2 * budget - 1);
        expect(got[0].length + got[1].length).toBeLessThanOrEqual(2 * budget + 1);
      }),
      { numRuns: 150 },
    );
  });
});
