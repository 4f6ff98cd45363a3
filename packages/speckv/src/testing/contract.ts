// Test-only: the common CachePolicyV1 contract every KV policy must satisfy (shared table in contract.test.ts).
import { type CachePolicyV1, type KeptIndices, validateKeptIndices } from '@draft/core';
import { expect } from 'vitest';
import { arrayContext, randomArray } from './context.js';

export interface ContractCase {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  budget: number;
  windowSize: number;
  lookahead: number;
  seed: number;
}

/** Runs `policy.select` on seeded random tensors shaped as the policy asks (queryWindow, usesLookahead). */
export async function runPolicy(policy: CachePolicyV1, c: ContractCase): Promise<KeptIndices> {
  const lookahead = policy.usesLookahead ? c.lookahead : 0;
  const queryCount = policy.queryWindow === 'all' ? c.promptLength + lookahead : policy.queryWindow + lookahead;
  const context = arrayContext({
    queries: Array.from({ length: c.numLayers }, (_, l) => randomArray(c.numHeads * queryCount * c.headDim, c.seed * 97 + l)),
    keys: Array.from({ length: c.numLayers }, (_, l) => randomArray(c.numKvHeads * (c.promptLength + lookahead) * c.headDim, c.seed * 89 + 1000 + l)),
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    promptLength: c.promptLength,
    lookaheadLength: lookahead,
    budget: c.budget,
    queryCount,
  });
  return policy.select(context);
}

/**
 * The contract: one ascending, distinct index list per (layer, KV head), all in [0, n − 1); the window
 * [n − W − 1, n − 1) always survives; n ≤ C keeps all n − 1; otherwise the count per (layer, head) follows the
 * policy's budget rule (`expectedCount`, or a [min, max] range for ragged ones).
 */
export function checkContract(
  kept: KeptIndices,
  c: ContractCase,
  expectedCount: (layer: number, head: number) => number | [number, number],
  layerTotal?: (layer: number) => [number, number],
): void {
  const n = c.promptLength;
  validateKeptIndices(kept, { numLayers: c.numLayers, numKvHeads: c.numKvHeads, limit: n - 1 });
  for (let l = 0; l < c.numLayers; l++) {
    let total = 0;
    for (let h = 0; h < c.numKvHeads; h++) {
      const heads = Array.from(kept[l][h]);
      total += heads.length;
      if (n <= c.budget) {
        expect(heads).toEqual(Array.from({ length: n - 1 }, (_, i) => i));
        continue;
      }
      const tail = heads.slice(heads.length - c.windowSize);
      expect(tail).toEqual(Array.from({ length: c.windowSize }, (_, i) => n - c.windowSize - 1 + i));
      const want = expectedCount(l, h);
      if (typeof want === 'number') expect(heads.length).toBe(want);
      else {
        expect(heads.length).toBeGreaterThanOrEqual(want[0]);
        expect(heads.length).toBeLessThanOrEqual(want[1]);
      }
    }
    if (layerTotal && n > c.budget) {
      const [lo, hi] = layerTotal(l);
      expect(total).toBeGreaterThanOrEqual(lo);
      expect(total).toBeLessThanOrEqual(hi);
    }
  }
}
