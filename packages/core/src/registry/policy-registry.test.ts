import { describe, expect, it } from 'vitest';
import { defineCachePolicy } from '../policies/define-cache-policy.js';
import { DraftError, DuplicatePolicyError, InvalidArgumentError, PolicyOutputError, UnknownMethodError } from '../spec/errors.js';
import type { DecodePolicyV1 } from '../spec/policy.js';
import { createPolicy, globalPolicyRegistry, listPolicies, PolicyRegistry, registerPolicy } from './policy-registry.js';
import { fromReferenceConfig } from './reference-config.js';

const keepAll = (config: { type: string; windowSize?: number }) =>
  defineCachePolicy({ type: config.type, queryWindow: config.windowSize ?? 1, select: () => [], config: { windowSize: config.windowSize } });

const noDecode: DecodePolicyV1 = { specificationVersion: 'v1', type: 'none', requires: [], afterStep: async () => null, toConfig: () => ({ type: 'none' }) };

describe('PolicyRegistry', () => {
  it('creates registered policies from serialisable configs and round-trips toConfig', () => {
    const r = new PolicyRegistry();
    r.register('toy', keepAll, { kind: 'cache', description: 'toy' });
    const policy = r.create({ type: 'toy', windowSize: 4 }, { kind: 'cache' });
    expect(policy.type).toBe('toy');
    expect(policy.queryWindow).toBe(4);
    expect(policy.toConfig()).toEqual({ type: 'toy', windowSize: 4 });
    expect(r.create(policy.toConfig(), { kind: 'cache' }).toConfig()).toEqual(policy.toConfig());
  });

  it('rejects duplicates unless override, and lists by kind', () => {
    const r = new PolicyRegistry();
    r.register('toy', keepAll, { kind: 'cache', description: 'first' });
    expect(() => r.register('toy', keepAll, { kind: 'cache', description: 'second' })).toThrow(DuplicatePolicyError);
    try {
      r.register('toy', keepAll, { kind: 'cache', description: 'second' });
    } catch (e) {
      expect(DraftError.isInstance(e) && e.code).toBe('DUPLICATE_POLICY');
    }
    r.register('toy', keepAll, { kind: 'cache', description: 'second', override: true });
    r.register('none', () => noDecode, { kind: 'decode', description: 'keep everything' });
    expect(r.list()).toEqual([
      { type: 'none', kind: 'decode', description: 'keep everything' },
      { type: 'toy', kind: 'cache', description: 'second' },
    ]);
    expect(r.list({ kind: 'decode' }).map((p) => p.type)).toEqual(['none']);
  });

  it('names the known types for an unknown one, and checks the kind and the factory output', () => {
    const r = new PolicyRegistry();
    r.register('toy', keepAll, { kind: 'cache', description: '' });
    r.register('none', () => noDecode, { kind: 'decode', description: '' });
    expect(() => r.create({ type: 'snapkv' })).toThrow(UnknownMethodError);
    expect(() => r.create({ type: 'snapkv' })).toThrow(/Known methods: none, toy/);
    expect(() => r.create({ type: 'none' }, { kind: 'cache' })).toThrow(InvalidArgumentError);
    r.register('broken', () => ({}) as never, { kind: 'cache', description: '' });
    expect(() => r.create({ type: 'broken' })).toThrow(PolicyOutputError);
    expect(() => r.register('x', keepAll, { kind: 'press', description: '' } as never)).toThrow(/kind/);
  });

  it('the global registry is shared through Symbol.for', () => {
    const undo = registerPolicy('toy-global', keepAll, { kind: 'cache', description: 'global' });
    try {
      const holder = globalThis as unknown as Record<symbol, PolicyRegistry>;
      expect(holder[Symbol.for('@draft/core.policyRegistry.v1')]).toBe(globalPolicyRegistry());
      expect(listPolicies({ kind: 'cache' }).map((p) => p.type)).toContain('toy-global');
      expect(createPolicy({ type: 'toy-global' }, { kind: 'cache' }).type).toBe('toy-global');
    } finally {
      undo();
    }
    expect(listPolicies().map((p) => p.type)).not.toContain('toy-global');
  });
});

describe('fromReferenceConfig', () => {
  it('maps snake_case reference options to camelCase ones', () => {
    expect(
      fromReferenceConfig({
        method: 'SpecKV',
        max_capacity_prompt: 256,
        window_size: 32,
        kernel_size: 7,
        pooling: 'maxpool',
        lookahead_tokens: 64,
        starting_layer_index: 8,
        neighbor_tokens: 32,
        weighted_query: true,
        some_new_flag: 1,
      }),
    ).toEqual({
      type: 'speckv',
      budget: { tokens: 256 },
      windowSize: 32,
      kernelSize: 7,
      poolType: 'max',
      lookaheadTokens: 64,
      startingLayerIndex: 8,
      neighbourTokens: 32,
      weightedQuery: true,
      someNewFlag: 1,
    });
    expect(fromReferenceConfig({ pooling: 'avgpool', compression_ratio: 0.5 }, { type: 'snapkv' })).toEqual({
      type: 'snapkv',
      budget: { compressionRatio: 0.5 },
      poolType: 'avg',
    });
  });

  it('rejects a missing method, two budgets and unknown pooling', () => {
    expect(() => fromReferenceConfig({ window_size: 3 })).toThrow(/method/);
    expect(() => fromReferenceConfig({ method: 'x', max_capacity_prompt: 3, keep_ratio: 0.5 })).toThrow(/one budget key/);
    expect(() => fromReferenceConfig({ method: 'x', pooling: 'median' })).toThrow(/pooling/);
  });
});
