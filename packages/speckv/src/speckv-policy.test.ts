import { AbortError, InvalidArgumentError, type KernelBackendV1, referenceKernelBackend, registerKernelBackend, validateKeptIndices } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { selectSpecKV } from './select-speckv.js';
import { SpecKVPolicy, speckv } from './speckv-policy.js';
import { createFakeSelectionContext, randomArray } from '@draft/core/testing';

const hq = 4;
const hkv = 2;
const d = 3;
const n = 40;
const lookahead = 3;
const window = 4;
const layers = 2;

function tensors(queryCount: number) {
  return {
    queries: Array.from({ length: layers }, (_, l) => randomArray(hq * queryCount * d, 10 + l)),
    keys: Array.from({ length: layers }, (_, l) => randomArray(hkv * (n + lookahead) * d, 20 + l)),
  };
}

describe('SpecKVPolicy', () => {
  it('declares what it needs and serialises its options', () => {
    const policy = speckv({ windowSize: window, kernelSize: 5 });
    expect(policy.specificationVersion).toBe('v1');
    expect(policy.type).toBe('speckv');
    expect(policy.requires).toEqual(['kvSelection', 'queryCapture']);
    expect(policy.queryWindow).toBe(window + 1);
    expect(policy.usesLookahead).toBe(true);
    expect(policy.toConfig()).toEqual({ type: 'speckv', windowSize: 4, kernelSize: 5, poolType: 'max', reduce: 'max' });
    expect(new SpecKVPolicy().toConfig()).toEqual({ type: 'speckv', windowSize: 32, kernelSize: 7, poolType: 'max', reduce: 'max' });
    expect(speckv({ budget: 64 }).toConfig().budget).toEqual({ tokens: 64 });
    expect(speckv({ budget: { keepRatio: 0.1 } }).budget).toEqual({ keepRatio: 0.1 });
  });

  it('validates at construction', () => {
    expect(() => speckv({ kernelSize: 6 })).toThrow(InvalidArgumentError);
    expect(() => speckv({ windowSize: 0 })).toThrow(/windowSize/);
    expect(() => speckv({ budget: 32 })).toThrow(/windowSize/); // W = 32 default ≥ C
    expect(() => speckv({ reduce: 'avg' as never })).toThrow(/reduce/);
  });

  it('selects exactly what selectSpecKV selects, layer by layer, trimming extra captured queries', async () => {
    const need = window + 1 + lookahead;
    const exact = tensors(need);
    const budget = 12;
    const expected = selectSpecKV({ ...exact, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget, windowSize: window, kernelSize: 3 });
    const policy = speckv({ windowSize: window, kernelSize: 3 });
    const context = createFakeSelectionContext({ ...exact, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget, queryCount: need });
    const kept = await policy.select(context);
    expect(kept).toEqual(expected);
    expect(context.reads).toEqual(['q0', 'k0', 'q1', 'k1']);
    validateKeptIndices(kept, { numLayers: layers, numKvHeads: hkv, limit: n - 1 });

    // Two extra leading query positions captured: the policy uses only the trailing W + 1 + L.
    const extra = 2;
    const wide = exact.queries.map((q) => {
      const out = new Float32Array(hq * (need + extra) * d);
      for (let h = 0; h < hq; h++) out.set(q.subarray(h * need * d, (h + 1) * need * d), (h * (need + extra) + extra) * d);
      return out;
    });
    const wideContext = createFakeSelectionContext({ queries: wide, keys: exact.keys, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget, queryCount: need + extra });
    expect(await policy.select(wideContext)).toEqual(expected);
  });

  it('keeps everything without reading tensors when n ≤ context.budget, which always decides C', async () => {
    const context = createFakeSelectionContext({ ...tensors(8), numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget: 40, queryCount: 8 });
    const kept = await speckv({ windowSize: window, budget: 10 }).select(context);
    expect(context.reads).toEqual([]);
    expect(kept.map((heads) => heads.map((h) => h.length))).toEqual([[39, 39], [39, 39]]);
  });

  it('rejects too few captured queries and a window ≥ the context budget', async () => {
    const t = tensors(5);
    const context = createFakeSelectionContext({ ...t, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget: 12, queryCount: 5 });
    await expect(speckv({ windowSize: window }).select(context)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'context.queryCount' });
    await expect(speckv({ windowSize: 12 }).select(context)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'windowSize' });
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const context = createFakeSelectionContext({ ...tensors(8), numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget: 12, queryCount: 8, signal: controller.signal });
    await expect(speckv({ windowSize: window }).select(context)).rejects.toBeInstanceOf(AbortError);
  });

  it('routes scoring, pooling and top-k through the registered kernel backend (async backends too)', async () => {
    const calls: string[] = [];
    const spy: KernelBackendV1 = {
      ...referenceKernelBackend,
      name: 'spy',
      device: 'test',
      windowAttentionScores: async (q, k, o) => {
        calls.push('score');
        return referenceKernelBackend.windowAttentionScores(q, k, o);
      },
      pool1d: async (s, o) => {
        calls.push('pool');
        return referenceKernelBackend.pool1d(s, o);
      },
      topKPerRow: async (s, o) => {
        calls.push('topk');
        return referenceKernelBackend.topKPerRow(s, o);
      },
    };
    const undo = registerKernelBackend(spy, { priority: 1000 });
    try {
      const t = tensors(8);
      const context = createFakeSelectionContext({ ...t, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget: 12, queryCount: 8 });
      const kept = await speckv({ windowSize: window, kernelSize: 3 }).select(context);
      expect(calls).toEqual(['score', 'pool', 'topk', 'score', 'pool', 'topk']);
      expect(kept).toEqual(selectSpecKV({ ...t, numHeads: hq, numKvHeads: hkv, headDim: d, promptLength: n, lookaheadLength: lookahead, budget: 12, windowSize: window, kernelSize: 3 }));
    } finally {
      undo();
    }
  });
});
