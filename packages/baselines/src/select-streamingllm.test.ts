import { describe, expect, it } from 'vitest';
import { selectStreamingLLM } from './select-streamingllm.js';
import { asArrays } from './testing/naive.js';

describe('selectStreamingLLM', () => {
  it('keeps the first C − W prompt positions and the window [n − W − 1, n − 1)', () => {
    // n = 10, C = 5, W = 2: sinks 0, 1, 2; window 7, 8; 9 is re-run.
    expect(asArrays(selectStreamingLLM({ promptLength: 10, numLayers: 2, numKvHeads: 2, budget: 5, windowSize: 2 }))).toEqual([
      [[0, 1, 2, 7, 8], [0, 1, 2, 7, 8]],
      [[0, 1, 2, 7, 8], [0, 1, 2, 7, 8]],
    ]);
    // C = W + 1: one sink.
    expect(asArrays(selectStreamingLLM({ promptLength: 10, numLayers: 1, numKvHeads: 1, budget: 3, windowSize: 2 }))).toEqual([[[0, 7, 8]]]);
  });

  it('no compression when n ≤ C; n = C + 1 keeps every candidate', () => {
    expect(asArrays(selectStreamingLLM({ promptLength: 5, numLayers: 1, numKvHeads: 1, budget: 5, windowSize: 2 }))).toEqual([[[0, 1, 2, 3]]]);
    expect(asArrays(selectStreamingLLM({ promptLength: 6, numLayers: 1, numKvHeads: 1, budget: 5, windowSize: 2 }))).toEqual([[[0, 1, 2, 3, 4]]]);
  });

  it('validates budget, window and shapes', () => {
    expect(() => selectStreamingLLM({ promptLength: 10, numLayers: 1, numKvHeads: 1, budget: 2, windowSize: 2 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', argument: 'windowSize' }));
    expect(() => selectStreamingLLM({ promptLength: 10, numLayers: 0, numKvHeads: 1 })).toThrow(expect.objectContaining({ argument: 'numLayers' }));
  });
});
