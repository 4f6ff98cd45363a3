import { createPolicy, fromReferenceConfig, listPolicies } from '@draft/core';
import { afterEach, describe, expect, it } from 'vitest';
import * as api from './index.js';
import { PeriodicRescore } from './periodic-rescore.js';
import { registerBaselines } from './register.js';

describe('registerBaselines', () => {
  let undo: (() => void) | undefined;
  afterEach(() => {
    undo?.();
    undo = undefined;
  });

  it('importing registers nothing; registering exposes every baseline by kind', () => {
    expect(typeof api.registerBaselines).toBe('function');
    expect(listPolicies().map((p) => p.type)).not.toContain('snapkv');
    undo = registerBaselines();
    expect(listPolicies({ kind: 'cache' }).map((p) => p.type)).toEqual(['adakv', 'h2o', 'laq', 'pyramidkv', 'snapkv', 'streamingllm']);
    expect(listPolicies({ kind: 'decode' }).map((p) => p.type)).toEqual(['periodic-rescore', 'sliding-window']);
    expect(listPolicies({ kind: 'lookahead' }).map((p) => p.type)).toEqual(['target-pseudo-lookahead']);
    expect(() => registerBaselines()).toThrow(expect.objectContaining({ code: 'DUPLICATE_POLICY' }));
    undo();
    undo = undefined;
    expect(listPolicies().map((p) => p.type)).not.toContain('snapkv');
  });

  it('builds nested decode configs and reference-style configs', () => {
    undo = registerBaselines();
    const decode = createPolicy({ type: 'periodic-rescore', every: 4, policy: { type: 'sliding-window', windowSize: 16 } }, { kind: 'decode' });
    expect(decode).toBeInstanceOf(PeriodicRescore);
    expect(decode.toConfig()).toEqual({ type: 'periodic-rescore', every: 4, policy: { type: 'sliding-window', numSinkTokens: 4, windowSize: 16 } });
    const ada = createPolicy(fromReferenceConfig({ method: 'AdaKV', max_capacity_prompt: 128, window_size: 8, floor_alpha: 0.3, pooling: 'avgpool', kernel_size: 5 }), { kind: 'cache' });
    expect(ada.toConfig()).toEqual({ type: 'adakv', budget: { tokens: 128 }, windowSize: 8, kernelSize: 5, poolType: 'avg', alpha: 0.3 });
    const pyramid = createPolicy(fromReferenceConfig({ method: 'PyramidKV', max_capacity_prompt: 64, window_size: 8, beta: 10 }), { kind: 'cache' });
    expect(pyramid.toConfig()).toMatchObject({ type: 'pyramidkv', beta: 10 });
    expect(() => createPolicy({ type: 'snapkv', windowsize: 8 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', argument: 'config.windowsize' }));
  });
});
