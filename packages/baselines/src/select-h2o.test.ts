import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectH2O } from './select-h2o.js';
import { asArrays, naiveH2OScores, naiveTop, naiveWithWindow } from './testing/naive.js';

describe('selectH2O — hand-derived goldens', () => {
  // n = 6, W = 1: candidates [0, 4), window {4}. d = 1, every query +1, keys 0 0 1 0 0 0 (e = exp(1)).
  // Query i sees keys 0..i. Accumulated attention:
  //   key 0: 1 + 1/2 + 1/(2+e) + 1/(3+e) + 1/(4+e) + 1/(5+e)     = 1 + .5 + .212 + .175 + .149 + .130 = 2.165
  //   key 1:     1/2 + 1/(2+e) + 1/(3+e) + 1/(4+e) + 1/(5+e)     = 1.165
  //   key 2:           e/(2+e) + e/(3+e) + e/(4+e) + e/(5+e)     = .576 + .475 + .405 + .352 = 1.808
  //   key 3:                     1/(3+e) + 1/(4+e) + 1/(5+e)     = .453
  // A last-window scorer would put key 2 first; H2O's sum over all queries favours key 0.
  const input = {
    queries: [new Float32Array(6).fill(1)],
    keys: [Float32Array.from([0, 0, 1, 0, 0, 0])],
    numHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    promptLength: 6,
    windowSize: 1,
  };

  it('sums causal attention over every prompt query', () => {
    expect(asArrays(selectH2O({ ...input, budget: 2 }))).toEqual([[[0, 4]]]);
    expect(asArrays(selectH2O({ ...input, budget: 3 }))).toEqual([[[0, 2, 4]]]);
    expect(asArrays(selectH2O({ ...input, budget: 4 }))).toEqual([[[0, 1, 2, 4]]]);
  });

  it('query blocks do not change the result', () => {
    for (const queryBlockSize of [1, 2, 4, 5]) expect(asArrays(selectH2O({ ...input, budget: 3, queryBlockSize }))).toEqual([[[0, 2, 4]]]);
  });

  it('no compression when n ≤ C', () => {
    expect(asArrays(selectH2O({ ...input, budget: 6, windowSize: 1 }))).toEqual([[[0, 1, 2, 3, 4]]]);
  });

  it('rejects queries that are not (numHeads, n, headDim)', () => {
    expect(() => selectH2O({ ...input, budget: 3, queries: [new Float32Array(2)] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', argument: 'queries[0].length' }));
  });
});

describe('selectH2O — agrees with the brute-force reference', () => {
  it('random GQA inputs, any query block size', () => {
    const arb = fc
      .record({
        hkv: fc.integer({ min: 1, max: 2 }),
        group: fc.integer({ min: 1, max: 2 }),
        d: fc.integer({ min: 1, max: 2 }),
        n: fc.integer({ min: 3, max: 16 }),
        wf: fc.double({ min: 0, max: 0.999, noNaN: true }),
        extra: fc.integer({ min: 1, max: 14 }),
      })
      .chain((s) => {
        const window = 1 + Math.floor(s.wf * (s.n - 1));
        const hq = s.hkv * s.group;
        const grid = (len: number) => fc.array(fc.integer({ min: -3, max: 3 }), { minLength: len, maxLength: len });
        return fc.record({ s: fc.constant({ ...s, window, hq, budget: window + s.extra }), q: grid(hq * s.n * s.d), k: grid(s.hkv * s.n * s.d) });
      });
    fc.assert(
      fc.property(arb, ({ s, q, k }) => {
        const queries = new Float32Array(q.map((v) => v / 2));
        const keys = new Float32Array(k.map((v) => v / 2));
        const got = selectH2O({ queries: [queries], keys: [keys], numHeads: s.hq, numKvHeads: s.hkv, headDim: s.d, promptLength: s.n, budget: s.budget, windowSize: s.window, queryBlockSize: s.n });
        const want =
          s.n <= s.budget
            ? Array.from({ length: s.hkv }, () => Array.from({ length: s.n - 1 }, (_, i) => i))
            : naiveH2OScores(queries, keys, s).map((row) => naiveWithWindow(naiveTop(row, s.budget - s.window), s.n, s.window));
        expect(asArrays(got)).toEqual([want]);
      }),
      { numRuns: 200 },
    );
  });
});
