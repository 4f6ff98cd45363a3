import { createPolicy, DraftError, fromReferenceConfig, listPolicies } from '@draft/core';
import { afterEach, describe, expect, it } from 'vitest';
import * as api from './index.js';
import { DraftLookahead } from './draft-lookahead.js';
import { registerSpecKV } from './register.js';
import { SpecKVPolicy } from './speckv-policy.js';

describe('registerSpecKV', () => {
  let undo: (() => void) | undefined;
  afterEach(() => undo?.());

  it('importing the package registers nothing', () => {
    expect(typeof api.registerSpecKV).toBe('function');
    expect(listPolicies().map((p) => p.type)).not.toContain('speckv');
  });

  it('registers speckv and draft-lookahead, round-tripping toConfig', () => {
    undo = registerSpecKV();
    const policy = createPolicy({ type: 'speckv', windowSize: 8, kernelSize: 3, budget: { tokens: 64 } }, { kind: 'cache' });
    expect(policy).toBeInstanceOf(SpecKVPolicy);
    expect(createPolicy(policy.toConfig(), { kind: 'cache' }).toConfig()).toEqual(policy.toConfig());
    expect(createPolicy({ type: 'draft-lookahead', maxNewTokens: 4 }, { kind: 'lookahead' })).toBeInstanceOf(DraftLookahead);
    expect(() => registerSpecKV()).toThrow(expect.objectContaining({ code: 'DUPLICATE_POLICY' }));
  });

  it("accepts the reference's snake_case config through fromReferenceConfig", () => {
    undo = registerSpecKV();
    const config = fromReferenceConfig({ method: 'SpecKV', max_capacity_prompt: 128, window_size: 16, kernel_size: 5, pooling: 'maxpool' });
    expect(createPolicy(config, { kind: 'cache' }).toConfig()).toEqual({ type: 'speckv', budget: { tokens: 128 }, windowSize: 16, kernelSize: 5, poolType: 'max', reduce: 'max' });
  });

  it('rejects unknown and invalid options with typed errors', () => {
    undo = registerSpecKV();
    try {
      createPolicy({ type: 'speckv', windowSize: 8, kernalSize: 3 });
      throw new Error('no error');
    } catch (error) {
      expect(DraftError.isInstance(error) && error.code).toBe('INVALID_ARGUMENT');
      expect((error as Error).message).toMatch(/kernalSize.*windowSize, kernelSize/);
    }
    expect(() => createPolicy({ type: 'speckv', windowSize: 64, budget: 32 })).toThrow(/windowSize/);
  });
});
