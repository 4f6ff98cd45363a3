import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pyramidLayerBudgets, selectPyramidKV } from './select-pyramidkv.js';
import { selectSnapKV } from './select-snapkv.js';
import { asArrays, scalarCase } from './testing/naive.js';

describe('pyramidLayerBudgets — schedule by hand', () => {
  // B = C − W = 20, β = 20: min = 1, max = 39.
  it('3 layers: 39, 20, 1', () => {
    expect(pyramidLayerBudgets({ numLayers: 3, budget: 24, windowSize: 4 })).toEqual([39, 20, 1]);
  });
  it('4 layers: 39, 26.33, 13.67, 1 -> 39, 26, 14, 1 (sum 80 = 4·20)', () => {
    expect(pyramidLayerBudgets({ numLayers: 4, budget: 24, windowSize: 4 })).toEqual([39, 26, 14, 1]);
  });
  it('5 layers: 39, 29.5, 20, 10.5, 1 -> halves to even: 39, 30, 20, 10, 1', () => {
    expect(pyramidLayerBudgets({ numLayers: 5, budget: 24, windowSize: 4 })).toEqual([39, 30, 20, 10, 1]);
  });
  it('B = 3, β = 20, 3 layers: 5.85, 3, 0.15 -> 6, 3, 0; one layer gets B; β = 1 is uniform', () => {
    expect(pyramidLayerBudgets({ numLayers: 3, budget: 5, windowSize: 2 })).toEqual([6, 3, 0]);
    expect(pyramidLayerBudgets({ numLayers: 1, budget: 5, windowSize: 2 })).toEqual([3]);
    expect(pyramidLayerBudgets({ numLayers: 4, budget: 5, windowSize: 2, beta: 1 })).toEqual([3, 3, 3, 3]);
  });
  it('the shares sum to layers·(C − W) and fall with depth (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }), (layers, share, beta) => {
        const b = pyramidLayerBudgets({ numLayers: layers, budget: share + 8, windowSize: 8, beta });
        expect(b.reduce((x, y) => x + y, 0)).toBe(layers * share);
        for (let l = 1; l < layers; l++) expect(b[l]).toBeLessThanOrEqual(b[l - 1]);
      }),
    );
  });
});

describe('selectPyramidKV', () => {
  // n = 12, W = 2, C = 5 (B = 3), m = 9; k_j = .1 .5 .2 .3 .9 .4 .6 .7 .8 in every layer, kernel 1.
  const one = scalarCase([0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.6, 0.7, 0.8], 2);
  const three = { ...one, queries: [one.queries[0], one.queries[0], one.queries[0]], keys: [one.keys[0], one.keys[0], one.keys[0]] };

  it('β = 3: shares 5, 3, 1 -> top 5 / 3 / 1 by key value', () => {
    // (2β−1)(L−1) − 2l(β−1) over β(L−1): 3·10/6 = 5, 3·6/6 = 3, 3·2/6 = 1.
    expect(asArrays(selectPyramidKV({ ...three, budget: 5, kernelSize: 1, beta: 3 }))).toEqual([
      [[1, 4, 6, 7, 8, 9, 10]],
      [[4, 7, 8, 9, 10]],
      [[4, 9, 10]],
    ]);
  });

  it('β = 20: shares 6, 3, 0 — a zero share keeps only the window', () => {
    // top 6 by key: .9 (4), .8 (8), .7 (7), .6 (6), .5 (1), .4 (5).
    expect(asArrays(selectPyramidKV({ ...three, budget: 5, kernelSize: 1 }))).toEqual([[[1, 4, 5, 6, 7, 8, 9, 10]], [[4, 7, 8, 9, 10]], [[9, 10]]]);
  });

  it('clips a share to the n − W − 1 candidates', () => {
    // C = 8, B = 6: 11.7 -> 12 clipped to 9 (all candidates), 6, 0.3 -> 0.
    const kept = asArrays(selectPyramidKV({ ...three, budget: 8, kernelSize: 1 }));
    expect(kept.map((l) => l[0].length)).toEqual([11, 8, 2]);
  });

  it('scores one layer at a time with firstLayer / numLayers, and a middle layer equals SnapKV', () => {
    const middle = selectPyramidKV({ ...one, budget: 5, kernelSize: 1, beta: 3, numLayers: 3, firstLayer: 1 });
    expect(middle).toEqual(selectSnapKV({ ...one, budget: 5, kernelSize: 1 }));
    expect(() => selectPyramidKV({ ...one, budget: 5, numLayers: 3, firstLayer: 3 })).toThrow(/firstLayer/);
  });

  it('no compression when n ≤ C, whatever the layer share', () => {
    expect(asArrays(selectPyramidKV({ ...three, budget: 12 })).map((l) => l[0].length)).toEqual([11, 11, 11]);
  });
});
