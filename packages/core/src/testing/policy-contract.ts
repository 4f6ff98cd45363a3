import assert from 'node:assert/strict';
import { validateKeptIndices } from '../primitives/kept-indices.js';
import type { KeptIndices } from '../spec/common.js';
import type { CachePolicyV1 } from '../spec/policy.js';
import { createFakeSelectionContext, randomArray } from './fake-selection-context.js';

/** One row of the shared policy-contract table: a prompt shape, a budget C, a window W and a seed. */
export interface PolicyContractCase {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  budget: number;
  windowSize: number;
  /** Lookahead length L (used only when the policy `usesLookahead`). */
  lookahead: number;
  seed: number;
}

/**
 * Runs `policy.select` on seeded random tensors shaped as the policy asks (`queryWindow`, `usesLookahead`):
 * per layer l, queries `randomArray(Hq · queryCount · d, seed · 97 + l)` and keys
 * `randomArray(Hkv · (n + L) · d, seed · 89 + 1000 + l)`.
 */
export async function runPolicyContractCase(policy: CachePolicyV1, c: PolicyContractCase): Promise<KeptIndices> {
  const lookahead = policy.usesLookahead ? c.lookahead : 0;
  const queryCount = policy.queryWindow === 'all' ? c.promptLength + lookahead : policy.queryWindow + lookahead;
  const context = createFakeSelectionContext({
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
 * The common `CachePolicyV1` contract (test-runner independent: fails with `node:assert` errors): one
 * ascending, distinct index list per (layer, KV head), all in [0, n − 1); the window [n − W − 1, n − 1) always
 * survives; n ≤ C keeps all n − 1; otherwise the count per (layer, head) follows the policy's budget rule
 * (`expectedCount`, or a [min, max] range for ragged ones) and, when given, each layer's total lies in
 * `layerTotal(layer)`.
 */
export function checkPolicyContract(
  kept: KeptIndices,
  c: PolicyContractCase,
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
      const where = `layer ${l}, KV head ${h}`;
      if (n <= c.budget) {
        assert.deepEqual(heads, Array.from({ length: n - 1 }, (_, i) => i), `${where}: n ≤ C keeps all n − 1`);
        continue;
      }
      const tail = heads.slice(heads.length - c.windowSize);
      assert.deepEqual(tail, Array.from({ length: c.windowSize }, (_, i) => n - c.windowSize - 1 + i), `${where}: the window survives`);
      const want = expectedCount(l, h);
      if (typeof want === 'number') assert.equal(heads.length, want, `${where}: kept count`);
      else {
        assert.ok(heads.length >= want[0], `${where}: kept ${heads.length} < ${want[0]}`);
        assert.ok(heads.length <= want[1], `${where}: kept ${heads.length} > ${want[1]}`);
      }
    }
    if (layerTotal && n > c.budget) {
      const [lo, hi] = layerTotal(l);
      assert.ok(total >= lo, `layer ${l}: kept ${total} in total < ${lo}`);
      assert.ok(total <= hi, `layer ${l}: kept ${total} in total > ${hi}`);
    }
  }
}
