import { createPolicy, type SelectionContextV1 } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { KeyNormPolicy, register } from '../src/index.js';

/** One layer, one KV head, d = 1: key norms are |k|, so the smallest |k| win. */
function context(keys: number[], budget: number): SelectionContextV1 {
  return {
    numLayers: 1,
    numHeads: 1,
    numKvHeads: 1,
    headDim: 1,
    promptLength: keys.length,
    lookaheadLength: 0,
    budget,
    queryCount: 1,
    queries: async () => new Float32Array(1),
    keys: async () => Float32Array.from(keys),
  };
}

describe('KeyNormPolicy', () => {
  it('keeps the smallest-norm candidates plus the window', async () => {
    // n = 8 → candidates [0, 7); W = 2 → window [5, 7); C = 4 → 2 picks among [0, 5) by smallest |k|:
    // |k| = 5, 0.5, 3, -0.25→0.25, 4 → picks positions 1 (0.5) and 3 (0.25).
    const policy = new KeyNormPolicy({ windowSize: 2 });
    const kept = await policy.select(context([5, 0.5, 3, -0.25, 4, 9, 9, 9], 4));
    expect(Array.from(kept[0][0])).toEqual([1, 3, 5, 6]);
  });

  it('registers as a cache policy type resolvable by config', () => {
    const undo = register();
    try {
      const policy = createPolicy({ type: 'keynorm', windowSize: 3 }, { kind: 'cache' });
      expect(policy.type).toBe('keynorm');
      expect(policy.toConfig()).toEqual({ type: 'keynorm', windowSize: 3 });
    } finally {
      undo();
    }
  });
});
