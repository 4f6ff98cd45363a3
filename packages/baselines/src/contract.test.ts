import type { CachePolicyV1, PolicyConfig } from '@draft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adakv } from './adakv.js';
import { h2o } from './h2o.js';
import { laq } from './laq.js';
import { pyramidkv } from './pyramidkv.js';
import { policies } from './register.js';
import { pyramidLayerBudgets } from './select-pyramidkv.js';
import { snapkv } from './snapkv.js';
import { streamingllm } from './streamingllm.js';
import { checkPolicyContract, type PolicyContractCase, runPolicyContractCase } from '@draft/core/testing';

type Count = (c: PolicyContractCase) => { perHead: (layer: number, head: number) => number | [number, number]; layerTotal?: (layer: number) => [number, number] };

const uniform: Count = (c) => ({ perHead: () => c.budget });

/** Every baseline policy, its capabilities, and its budget rule. */
const table: { name: string; create: (windowSize: number) => CachePolicyV1; requires: string[]; queryWindow: (w: number) => number | 'all'; count: Count }[] = [
  { name: 'snapkv', create: (w) => snapkv({ windowSize: w, kernelSize: 3 }), requires: ['kvSelection', 'queryCapture'], queryWindow: (w) => w + 1, count: uniform },
  { name: 'laq', create: (w) => laq({ windowSize: w }), requires: ['kvSelection', 'queryCapture'], queryWindow: (w) => w + 1, count: uniform },
  { name: 'streamingllm', create: (w) => streamingllm({ windowSize: w }), requires: ['kvSelection'], queryWindow: () => 0, count: uniform },
  { name: 'h2o', create: (w) => h2o({ windowSize: w, queryBlockSize: 7 }), requires: ['kvSelection', 'allQueryCapture'], queryWindow: () => 'all', count: uniform },
  {
    name: 'pyramidkv',
    create: (w) => pyramidkv({ windowSize: w }),
    requires: ['kvSelection', 'queryCapture', 'raggedLayers'],
    queryWindow: (w) => w + 1,
    count: (c) => {
      const shares = pyramidLayerBudgets({ numLayers: c.numLayers, budget: c.budget, windowSize: c.windowSize });
      return { perHead: (l) => Math.min(shares[l], c.promptLength - c.windowSize - 1) + c.windowSize };
    },
  },
  {
    name: 'adakv',
    create: (w) => adakv({ windowSize: w }),
    requires: ['kvSelection', 'queryCapture', 'raggedKvHeads'],
    queryWindow: (w) => w + 1,
    count: (c) => {
      const share = c.budget - c.windowSize;
      const m = c.promptLength - c.windowSize - 1;
      // count_h ∈ [0, min(m, Hkv·B)] -> share_h ∈ [round(α·B), round((1 − α)·min(m, Hkv·B) + α·B)]
      const lo = Math.round(0.2 * share) + c.windowSize;
      const hi = Math.min(m, Math.round(0.8 * Math.min(m, c.numKvHeads * share) + 0.2 * share)) + c.windowSize;
      // Each head rounds by at most 1/2: the layer total is Hkv·C ± Hkv/2.
      const slack = Math.floor(c.numKvHeads / 2);
      return { perHead: () => [lo, hi], layerTotal: () => [c.numKvHeads * c.budget - slack, c.numKvHeads * c.budget + slack] };
    },
  },
];

const base: PolicyContractCase = { numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 3, promptLength: 40, budget: 12, windowSize: 4, lookahead: 3, seed: 1 };

describe.each(table)('CachePolicyV1 contract: $name', ({ name, create, requires, queryWindow, count }) => {
  it('declares its type, capabilities, query window and a config that round-trips through its factory', () => {
    const policy = create(base.windowSize);
    expect(policy.specificationVersion).toBe('v1');
    expect(policy.type).toBe(name);
    expect([...policy.requires].sort()).toEqual([...requires].sort());
    expect(policy.queryWindow).toBe(queryWindow(base.windowSize));
    const config = policy.toConfig();
    expect(config.type).toBe(name);
    const rebuilt = (policies as unknown as Record<string, (c: PolicyConfig) => CachePolicyV1>)[name](JSON.parse(JSON.stringify(config)));
    expect(rebuilt.toConfig()).toEqual(config);
  });

  it('keeps ascending in-range indices, the window, and the budget rule', async () => {
    const kept = await runPolicyContractCase(create(base.windowSize), base);
    const rule = count(base);
    checkPolicyContract(kept, base, rule.perHead, rule.layerTotal);
  });

  it('keeps all n − 1 entries when n ≤ C', async () => {
    const c = { ...base, budget: 40 };
    checkPolicyContract(await runPolicyContractCase(create(base.windowSize), c), c, () => 39);
  });

  it('budget = window + 1 keeps one candidate per head (AdaKV: around one)', async () => {
    const c = { ...base, budget: base.windowSize + 1 };
    const rule = count(c);
    checkPolicyContract(await runPolicyContractCase(create(base.windowSize), c), c, rule.perHead, rule.layerTotal);
  });

  it('holds for random shapes and budgets (property)', async () => {
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
          lookahead: fc.integer({ min: 0, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
        }),
        async (r) => {
          fc.pre(r.windowSize < r.promptLength);
          const c: PolicyContractCase = { ...r, numHeads: r.numKvHeads * r.group, budget: r.windowSize + r.extra };
          const rule = count(c);
          checkPolicyContract(await runPolicyContractCase(create(r.windowSize), c), c, rule.perHead, rule.layerTotal);
        },
      ),
      { numRuns: 40 },
    );
  });
});
