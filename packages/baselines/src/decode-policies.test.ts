import type { DecodePolicyV1, DecodeStepContextV1, KvCacheV1 } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { PeriodicRescore, periodicRescore } from './periodic-rescore.js';
import { slidingWindowDecode } from './sliding-window-decode.js';

const cacheWith = (lengths: number[][]) => ({ lengths }) as unknown as KvCacheV1;
const step = (lengths: number[][], s = 0): DecodeStepContextV1 => ({ cache: cacheWith(lengths), step: s, promptLength: 10 });
const arrays = (kept: readonly (readonly Int32Array[])[] | null) => kept?.map((l) => l.map((h) => Array.from(h))) ?? null;

describe('slidingWindowDecode', () => {
  it('keeps 4 sinks + the last windowSize entries once a head outgrows them', async () => {
    const policy = slidingWindowDecode({ windowSize: 3 });
    expect(await policy.afterStep(step([[7, 7]]))).toBeNull();
    // 9 entries: sinks 0..3, recent 6, 7, 8. A ragged head with 5 entries keeps all 5.
    expect(arrays(await policy.afterStep(step([[9, 5], [8, 8]])))).toEqual([
      [[0, 1, 2, 3, 6, 7, 8], [0, 1, 2, 3, 4]],
      [[0, 1, 2, 3, 5, 6, 7], [0, 1, 2, 3, 5, 6, 7]],
    ]);
    expect(arrays(await slidingWindowDecode({ numSinkTokens: 0, windowSize: 2 }).afterStep(step([[4]])))).toEqual([[[2, 3]]]);
  });

  it('validates and serialises', () => {
    expect(() => slidingWindowDecode({} as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', argument: 'windowSize' }));
    expect(() => slidingWindowDecode({ windowSize: 2, numSinkTokens: -1 })).toThrow(/numSinkTokens/);
    const p = slidingWindowDecode({ windowSize: 8 });
    expect(p.toConfig()).toEqual({ type: 'sliding-window', numSinkTokens: 4, windowSize: 8 });
    expect(p.requires).toEqual(['kvSelection']);
  });
});

describe('periodicRescore', () => {
  it('runs the wrapped policy only after every N-th step', async () => {
    const seen: number[] = [];
    const inner: DecodePolicyV1 = {
      specificationVersion: 'v1',
      type: 'spy',
      requires: ['kvSelection', 'queryCapture'],
      afterStep: async (c) => {
        seen.push(c.step);
        return [[Int32Array.of(0)]];
      },
      toConfig: () => ({ type: 'spy' }),
    };
    const policy = periodicRescore({ every: 3, policy: inner });
    const results = [];
    for (let s = 0; s < 7; s++) results.push(await policy.afterStep(step([[20]], s)));
    expect(seen).toEqual([2, 5]);
    expect(results.map((r) => r !== null)).toEqual([false, false, true, false, false, true, false]);
    expect(policy.requires).toEqual(inner.requires);
    expect(policy.toConfig()).toEqual({ type: 'periodic-rescore', every: 3, policy: { type: 'spy' } });
  });

  it('composes with slidingWindowDecode and validates', async () => {
    const policy = new PeriodicRescore({ every: 2, policy: slidingWindowDecode({ numSinkTokens: 1, windowSize: 2 }) });
    expect(await policy.afterStep(step([[6]], 0))).toBeNull();
    expect(arrays(await policy.afterStep(step([[6]], 1)))).toEqual([[[0, 4, 5]]]);
    expect(() => periodicRescore({ every: 0, policy: slidingWindowDecode({ windowSize: 2 }) })).toThrow(/every/);
    expect(() => periodicRescore({ every: 2, policy: {} as never })).toThrow(expect.objectContaining({ argument: 'policy' }));
  });
});
