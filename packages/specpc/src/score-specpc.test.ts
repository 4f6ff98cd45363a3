import { InvalidArgumentError } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { resolveStartingLayerIndex, scoreSpecPC, specPCQueryWeights } from './score-specpc.js';

// headDim = 1, query = 1 → logit of key j = keys[j] (scale 1/√1), so softmax rows are hand-computable.
const f = (values: number[]) => Float32Array.from(values);
const close = (actual: Float32Array, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(actual[i]).toBeCloseTo(e, 6);
  });
};

describe('scoreSpecPC (hand-derived goldens)', () => {
  // n = 3, W = 2, one head. keys = [0, ln 3, 0]:
  //   row 0 (position 1) sees keys 0..1 (causal tail): e^0, e^ln3 = 1, 3 → [.25, .75, 0]
  //   row 1 (position 2) sees all: 1, 3, 1 → [.2, .6, .2]
  const layer = { queries: f([1, 1]), keys: f([0, Math.log(3), 0]) };
  const base = { layers: [layer], numHeads: 1, numKvHeads: 1, headDim: 1, promptLength: 3, windowSize: 2 };

  it('weights row j by j/(W−1) and takes the max over queries', () => {
    // weights [0, 1]: row 0 → 0, row 1 → [.2, .6, .2]
    close(scoreSpecPC(base), [0.2, 0.6, 0.2]);
    // unweighted: max(row 0, row 1) = [.25, .75, .2]
    close(scoreSpecPC({ ...base, weightedQuery: false }), [0.25, 0.75, 0.2]);
  });

  it("'mean' is a true mean (the reference sums)", () => {
    // weighted: (0·row0 + 1·row1) / 2 = [.1, .3, .1]; unweighted: (row0 + row1) / 2
    close(scoreSpecPC({ ...base, reduce: 'mean' }), [0.1, 0.3, 0.1]);
    close(scoreSpecPC({ ...base, reduce: 'mean', weightedQuery: false }), [0.225, 0.675, 0.1]);
  });

  it('W = 1 applies no weighting (linspace(0, 1, 1) would zero the only row)', () => {
    close(scoreSpecPC({ ...base, windowSize: 1, layers: [{ queries: f([1]), keys: layer.keys }] }), [0.2, 0.6, 0.2]);
    expect(specPCQueryWeights(1)).toBeUndefined();
    expect(Array.from(specPCQueryWeights(5) ?? [])).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it('uses layers ≥ startingLayerIndex, clamped to numLayers − 1; max or mean over layers', () => {
    // W = 1; keys with one ln 8 → softmax [8, 1, 1]/10 = [.8, .1, .1] moved to the layer's own position.
    const l8 = (at: number) => ({ queries: f([1]), keys: f([0, 1, 2].map((j) => (j === at ? Math.log(8) : 0))) });
    const layers = [l8(0), l8(1), l8(2)];
    const input = { ...base, windowSize: 1, layers };
    close(scoreSpecPC(input), [0.8, 0.8, 0.8]);
    close(scoreSpecPC({ ...input, startingLayerIndex: 1 }), [0.1, 0.8, 0.8]);
    close(scoreSpecPC({ ...input, startingLayerIndex: 10 }), [0.1, 0.1, 0.8]); // clamped to 2
    close(scoreSpecPC({ ...input, startingLayerIndex: 1, reduce: 'mean' }), [0.1, 0.45, 0.45]);
    // Layers below the start may be omitted.
    close(scoreSpecPC({ ...input, layers: [null, null, layers[2]], startingLayerIndex: 2 }), [0.1, 0.1, 0.8]);
    expect(() => scoreSpecPC({ ...input, layers: [layers[0], null, layers[2]] })).toThrow(InvalidArgumentError);
    expect(resolveStartingLayerIndex(8, 2)).toBe(1);
    expect(resolveStartingLayerIndex(8, 16)).toBe(8);
  });

  it('GQA: max over every query head of every KV head', () => {
    // 2 query heads, 1 KV head, W = 1: head 0 query 1, head 1 query −1; keys [0, ln 8, 0]
    //   head 0: [1, 8, 1]/10; head 1 logits [0, −ln 8, 0] → [1, 1/8, 1]/(2.125) = [.470588, .058824, .470588]
    const scores = scoreSpecPC({ ...base, numHeads: 2, windowSize: 1, layers: [{ queries: f([1, -1]), keys: f([0, Math.log(8), 0]) }] });
    close(scores, [1 / 2.125, 0.8, 1 / 2.125]);
  });

  it('decode steps: each fed-back token’s attention, reduced over heads, truncated to the prompt', () => {
    // One layer, 2 query heads / 1 KV head, W = 1, keys [0, 0, ln 8] → both heads [.1, .1, .8].
    const window = { queries: f([1, 1]), keys: f([0, 0, Math.log(8)]) };
    // Step attention (2 heads × m = 4 keys): head 0 [.1 .2 .3 .4], head 1 [.5 .1 .1 .3] → max, first 3: [.5 .2 .3]
    const rows = { attention: f([0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.1, 0.3]) };
    const input = { ...base, numHeads: 2, windowSize: 1, layers: [window], decodeSteps: [[rows]] };
    close(scoreSpecPC(input), [0.5, 0.2, 0.8]);
    // mean: step 0 = [.1 .1 .8]; step 1 = head mean [.3 .15 .2]; mean over the 2 steps:
    close(scoreSpecPC({ ...input, reduce: 'mean' }), [0.2, 0.125, 0.5]);
  });

  it('decode steps as tensors equal the same attention rows', () => {
    // Step query 1 for both heads over m = 4 keys [ln 2, 0, 0, ln 5] → [2, 1, 1, 5]/9.
    const window = { queries: f([1, 1]), keys: f([0, 0, 0]) }; // uniform → [1/3, 1/3, 1/3]
    const tensors = { queries: f([1, 1]), keys: f([Math.log(2), 0, 0, Math.log(5)]) };
    const input = { ...base, numHeads: 2, windowSize: 1, layers: [window] };
    const viaTensors = scoreSpecPC({ ...input, decodeSteps: [[tensors]] });
    close(viaTensors, [Math.max(2 / 9, 1 / 3), 1 / 3, 1 / 3]);
    const a = [2 / 9, 1 / 9, 1 / 9, 5 / 9];
    close(scoreSpecPC({ ...input, decodeSteps: [[{ attention: f([...a, ...a]) }]] }), Array.from(viaTensors));
    // A step that makes the prompt token 0 win: keys [ln 8, 0, 0, 0] → [8, 1, 1, 1]/11 → 8/11 > 1/3.
    close(scoreSpecPC({ ...input, decodeSteps: [[{ queries: f([1, 1]), keys: f([Math.log(8), 0, 0, 0]) }]] }), [8 / 11, 1 / 3, 1 / 3]);
  });

  it('validates shapes and options', () => {
    expect(() => scoreSpecPC({ ...base, windowSize: 4 })).toThrow(InvalidArgumentError);
    expect(() => scoreSpecPC({ ...base, layers: [] })).toThrow(InvalidArgumentError);
    expect(() => scoreSpecPC({ ...base, reduce: 'sum' as 'max' })).toThrow(InvalidArgumentError);
    expect(() => scoreSpecPC({ ...base, layers: [{ queries: f([1]), keys: layer.keys }] })).toThrow(InvalidArgumentError);
    expect(() => scoreSpecPC({ ...base, decodeSteps: [[{ attention: f([0.5, 0.5]) }]] })).toThrow(/promptLength/);
    expect(() => resolveStartingLayerIndex(-1, 4)).toThrow(InvalidArgumentError);
  });
});
