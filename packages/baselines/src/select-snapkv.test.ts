import { InvalidArgumentError } from '@draft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectSnapKV } from './select-snapkv.js';
import { asArrays, naivePool, naiveTop, naiveWindowScores, naiveWithWindow, scalarCase } from './testing/naive.js';

describe('selectSnapKV — hand-derived goldens', () => {
  // n = 12, W = 2: queries at 9, 10, 11; candidates [0, 9); window [9, 11). Scores are monotone in k_j.
  const base = scalarCase([0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.6, 0.7, 0.8], 2);

  it('keeps the top C − W pooled candidates + the window (ties -> lower position)', () => {
    // maxpool3: .5 .5 .5 .9 .9 .9 .7 .8 .8 -> top 4: 3, 4, 5, 7 (the .8 tie 7/8 goes to 7).
    expect(asArrays(selectSnapKV({ ...base, budget: 6, kernelSize: 3 }))).toEqual([[[3, 4, 5, 7, 9, 10]]]);
  });

  it("avg pooling pads with zeros and divides by k, so edges score lower (the original SnapKV's 'avgpool')", () => {
    // All candidate keys equal: every candidate scores s. avgpool3: edges (s + s + 0)/3 = 2s/3, interior s.
    // C = 5 -> top 3 among interior ties: 1, 2, 3. (count_exclude_pad would give 0, 1, 2; max-pool too.)
    const flat = scalarCase(new Array(9).fill(0), 2);
    expect(asArrays(selectSnapKV({ ...flat, budget: 5, kernelSize: 3, poolType: 'avg' }))).toEqual([[[1, 2, 3, 9, 10]]]);
    expect(asArrays(selectSnapKV({ ...flat, budget: 5, kernelSize: 3, poolType: 'max' }))).toEqual([[[0, 1, 2, 9, 10]]]);
  });

  it('no compression when n ≤ C', () => {
    expect(asArrays(selectSnapKV({ ...base, budget: 12 }))[0][0]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('defaults: C = 256, W = 32, k = 7', () => {
    // n = 8 ≤ C = 256: no compression, so the default W = 32 ≥ n is no error; all of [0, n − 1) is kept.
    const kept = selectSnapKV({ ...scalarCase([0, 0, 0, 0, 0], 2), windowSize: undefined, budget: undefined });
    expect(kept.map((heads) => heads.map((h) => Array.from(h)))).toEqual([[[0, 1, 2, 3, 4, 5, 6]]]);
    expect(() => selectSnapKV({ ...scalarCase([0, 0, 0, 0, 0], 2), windowSize: 300 })).toThrow(InvalidArgumentError); // W ≥ C
  });

  it('GQA: mean over the group heads of each KV head (Hq = 4, Hkv = 2)', () => {
    // Same construction as SpecKV's GQA golden: heads 0, 2 look along x, heads 1, 3 along y; per KV head the
    // x- and y-values are the same multiset, so a key (a, 0) scores (exp(a/√2) + 1)·c — monotone in its
    // largest coordinate. KV 0: 1 3 0 2 1 3 2 -> 1, 5, 3. KV 1: 2 2 0 0 3 3 0 -> 4, 5, 0.
    const n = 10;
    const kv0 = [[1, 0], [0, 3], [0, 0], [2, 0], [0, 1], [3, 0], [0, 2]];
    const kv1 = [[0, 2], [2, 0], [0, 0], [0, 0], [3, 0], [0, 3], [0, 0]];
    const keys = new Float32Array(2 * n * 2);
    for (const [j, [x, y]] of kv0.entries()) keys.set([x, y], j * 2);
    for (const [j, [x, y]] of kv1.entries()) keys.set([x, y], (n + j) * 2);
    const queries = new Float32Array(4 * 3 * 2);
    for (let h = 0; h < 4; h++) for (let i = 0; i < 3; i++) queries[(h * 3 + i) * 2 + (h % 2)] = 1;
    const kept = selectSnapKV({ queries: [queries], keys: [keys], numHeads: 4, numKvHeads: 2, headDim: 2, promptLength: n, budget: 5, windowSize: 2, kernelSize: 1 });
    expect(asArrays(kept)).toEqual([[[1, 3, 5, 7, 8], [0, 4, 5, 7, 8]]]);
  });
});

describe('selectSnapKV — agrees with the brute-force reference', () => {
  it('random GQA inputs on a coarse grid (many ties)', () => {
    const arb = fc
      .record({
        hkv: fc.integer({ min: 1, max: 2 }),
        group: fc.integer({ min: 1, max: 2 }),
        d: fc.integer({ min: 1, max: 3 }),
        n: fc.integer({ min: 3, max: 20 }),
        kernel: fc.constantFrom(1, 3, 5, 7),
        pool: fc.constantFrom('max' as const, 'avg' as const),
        wf: fc.double({ min: 0, max: 0.999, noNaN: true }),
        extra: fc.integer({ min: 1, max: 20 }),
      })
      .chain((s) => {
        const window = 1 + Math.floor(s.wf * (s.n - 1));
        const hq = s.hkv * s.group;
        const grid = (len: number) => fc.array(fc.integer({ min: -3, max: 3 }), { minLength: len, maxLength: len });
        return fc.record({ s: fc.constant({ ...s, window, hq, budget: window + s.extra }), q: grid(hq * (window + 1) * s.d), k: grid(s.hkv * s.n * s.d) });
      });
    fc.assert(
      fc.property(arb, ({ s, q, k }) => {
        const queries = new Float32Array(q.map((v) => v / 2));
        const keys = new Float32Array(k.map((v) => v / 2));
        const got = selectSnapKV({ queries: [queries], keys: [keys], numHeads: s.hq, numKvHeads: s.hkv, headDim: s.d, promptLength: s.n, budget: s.budget, windowSize: s.window, kernelSize: s.kernel, poolType: s.pool });
        let want: number[][];
        if (s.n <= s.budget) want = Array.from({ length: s.hkv }, () => Array.from({ length: s.n - 1 }, (_, i) => i));
        else {
          const scores = naiveWindowScores(queries, keys, { ...s, lookahead: 0 }, 'mean');
          want = scores.map((row) => naiveWithWindow(naiveTop(naivePool(row, s.kernel, s.pool), s.budget - s.window), s.n, s.window));
        }
        expect(asArrays(got)).toEqual([want]);
      }),
      { numRuns: 200 },
    );
  });
});
