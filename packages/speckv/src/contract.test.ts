import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policies } from './register.js';
import { speckv } from './speckv-policy.js';
import { checkPolicyContract, type PolicyContractCase, runPolicyContractCase } from '@draft/core/testing';

// The same contract as @draft/baselines' shared table (src/contract.test.ts there), for SpecKV.
const base: PolicyContractCase = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 3, promptLength: 40, budget: 12, windowSize: 4, lookahead: 3, seed: 1 };

describe('CachePolicyV1 contract: speckv', () => {
  it('round-trips its config through its factory', () => {
    const config = speckv({ windowSize: 4, budget: { keepRatio: 0.25 } }).toConfig();
    expect(policies.speckv(JSON.parse(JSON.stringify(config))).toConfig()).toEqual(config);
  });

  it('keeps C ascending in-range indices per (layer, KV head) with the window; all when n ≤ C; C = W + 1', async () => {
    checkPolicyContract(await runPolicyContractCase(speckv({ windowSize: 4 }), base), base, () => 12);
    const all = { ...base, budget: 40 };
    checkPolicyContract(await runPolicyContractCase(speckv({ windowSize: 4 }), all), all, () => 39);
    const tight = { ...base, budget: 5 };
    checkPolicyContract(await runPolicyContractCase(speckv({ windowSize: 4 }), tight), tight, () => 5);
  });

  it('holds for random shapes, budgets and lookahead lengths (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          numLayers: fc.integer({ min: 1, max: 3 }),
          numKvHeads: fc.integer({ min: 1, max: 3 }),
          group: fc.integer({ min: 1, max: 2 }),
          headDim: fc.integer({ min: 1, max: 4 }),
          promptLength: fc.integer({ min: 3, max: 48 }),
          windowSize: fc.integer({ min: 1, max: 8 }),
          extra: fc.integer({ min: 1, max: 40 }),
          lookahead: fc.integer({ min: 0, max: 6 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
          kernelSize: fc.constantFrom(1, 3, 7),
        }),
        async (r) => {
          fc.pre(r.windowSize < r.promptLength);
          const c: PolicyContractCase = { ...r, numHeads: r.numKvHeads * r.group, budget: r.windowSize + r.extra };
          checkPolicyContract(await runPolicyContractCase(speckv({ windowSize: r.windowSize, kernelSize: r.kernelSize }), c), c, () => c.budget);
        },
      ),
      { numRuns: 60 },
    );
  });
});
