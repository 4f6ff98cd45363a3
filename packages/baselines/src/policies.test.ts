import { AbortError, InvalidArgumentError } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { adakv } from './adakv.js';
import { h2o } from './h2o.js';
import { laq } from './laq.js';
import { pyramidkv } from './pyramidkv.js';
import { selectAdaKV } from './select-adakv.js';
import { selectH2O } from './select-h2o.js';
import { selectLAQ } from './select-laq.js';
import { selectPyramidKV } from './select-pyramidkv.js';
import { selectSnapKV } from './select-snapkv.js';
import { snapkv } from './snapkv.js';
import { streamingllm } from './streamingllm.js';
import { createFakeSelectionContext, randomArray } from '@draft/core/testing';

const shape = { numHeads: 4, numKvHeads: 2, headDim: 3, promptLength: 30 };
const layers = 3;
const W = 4;
const L = 2;
const C = 10;
const tensors = (queryCount: number, lookahead: number) => ({
  queries: Array.from({ length: layers }, (_, l) => randomArray(4 * queryCount * 3, 100 + l)),
  keys: Array.from({ length: layers }, (_, l) => randomArray(2 * (30 + lookahead) * 3, 200 + l)),
});
const ctx = (t: ReturnType<typeof tensors>, queryCount: number, lookahead: number, extra: object = {}) =>
  createFakeSelectionContext({ ...t, ...shape, lookaheadLength: lookahead, budget: C, queryCount, ...extra });

describe('policies select exactly what their pure functions select', () => {
  it('snapkv, pyramidkv, adakv (window W + 1, layer by layer)', async () => {
    const t = tensors(W + 1, 0);
    const opts = { ...t, ...shape, budget: C, windowSize: W, kernelSize: 3 };
    expect(await snapkv({ windowSize: W, kernelSize: 3 }).select(ctx(t, W + 1, 0))).toEqual(selectSnapKV(opts));
    expect(await pyramidkv({ windowSize: W, kernelSize: 3 }).select(ctx(t, W + 1, 0))).toEqual(selectPyramidKV(opts));
    expect(await adakv({ windowSize: W, kernelSize: 3, alpha: 0.4 }).select(ctx(t, W + 1, 0))).toEqual(selectAdaKV({ ...opts, alpha: 0.4 }));
    const context = ctx(t, W + 1, 0);
    await snapkv({ windowSize: W }).select(context);
    expect(context.reads).toEqual(['q0', 'k0', 'q1', 'k1', 'q2', 'k2']);
  });

  it('laq uses the lookahead queries; h2o uses every prompt query', async () => {
    const t = tensors(W + 1 + L, L);
    expect(await laq({ windowSize: W }).select(ctx(t, W + 1 + L, L))).toEqual(selectLAQ({ ...t, ...shape, lookaheadLength: L, budget: C, windowSize: W }));
    const all = tensors(30, 0);
    expect(await h2o({ windowSize: W }).select(ctx(all, 30, 0))).toEqual(selectH2O({ ...all, ...shape, budget: C, windowSize: W }));
  });

  it('selects with context.budget (the pipeline resolves C); its own budget is stored as a Budget for the pipeline', async () => {
    const t = tensors(W + 1, 0);
    const policy = snapkv({ windowSize: W, budget: 64 });
    expect(policy.budget).toEqual({ tokens: 64 });
    expect(snapkv({ budget: { keepRatio: 0.5 } }).budget).toEqual({ keepRatio: 0.5 });
    const kept = await policy.select(ctx(t, W + 1, 0, { budget: 15 }));
    expect(kept.flat().map((h) => h.length)).toEqual(new Array(6).fill(15));
  });

  it('rejects a context that does not match the policy', async () => {
    const t = tensors(W + 1 + L, L);
    await expect(snapkv({ windowSize: W }).select(ctx(t, W + 1 + L, L))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'context.lookaheadLength' });
    await expect(h2o({ windowSize: W }).select(ctx(tensors(W + 1, 0), W + 1, 0))).rejects.toMatchObject({ argument: 'context.queryCount' });
    await expect(laq({ windowSize: W }).select(ctx(tensors(W, L), W, L))).rejects.toMatchObject({ argument: 'context.queryCount' });
    await expect(snapkv({ windowSize: C }).select(ctx(tensors(C + 1, 0), C + 1, 0))).rejects.toMatchObject({ argument: 'windowSize' });
  });

  it('checks the abort signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const t = tensors(W + 1, 0);
    await expect(pyramidkv({ windowSize: W }).select(ctx(t, W + 1, 0, { signal: controller.signal }))).rejects.toBeInstanceOf(AbortError);
  });
});

describe('construction-time validation (typed errors with the offending value)', () => {
  const cases: [string, () => unknown, string, unknown][] = [
    ['even kernel', () => snapkv({ kernelSize: 4 }), 'kernelSize', 4],
    ['W ≥ C', () => snapkv({ budget: 16, windowSize: 16 }), 'windowSize', 16],
    ['W = 0', () => streamingllm({ windowSize: 0 }), 'windowSize', 0],
    ['bad ratio', () => h2o({ budget: { keepRatio: 1.5 } }), 'budget.keepRatio', 1.5],
    ['β = 0', () => pyramidkv({ beta: 0 }), 'beta', 0],
    ['α > 1', () => adakv({ alpha: 2 }), 'alpha', 2],
    ['unknown pool', () => laq({ poolType: 'min' as never }), 'poolType', 'min'],
    ['unknown reduce', () => laq({ reduce: 'median' as never }), 'reduce', 'median'],
  ];
  it.each(cases)('%s', (_name, make, argument, value) => {
    try {
      make();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', argument, value });
      return;
    }
    throw new Error('expected an InvalidArgumentError');
  });

  it('defaults follow ALGORITHMS.md', () => {
    expect(snapkv().toConfig()).toEqual({ type: 'snapkv', windowSize: 32, kernelSize: 7, poolType: 'max' });
    expect(pyramidkv().toConfig()).toMatchObject({ beta: 20 });
    expect(adakv().toConfig()).toMatchObject({ alpha: 0.2 });
    expect(laq().toConfig()).toMatchObject({ reduce: 'max', kernelSize: 7 });
    expect(h2o().toConfig()).toEqual({ type: 'h2o', windowSize: 32, kernelSize: 1, queryBlockSize: 512 });
    expect(laq().usesLookahead).toBe(true);
    expect(snapkv().usesLookahead).toBe(false);
  });
});
