import type { DecodePolicyV1, KeptIndices, KvCacheV1 } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { argmax, TORCH_LLAMA, torchGolden } from './helpers.js';

/** StreamingLLM-style decode policy: 2 sinks + the 6 most recent entries. */
function keepSinksAndRecent(cache: KvCacheV1): KeptIndices | null {
  const n = cache.lengths[0][0];
  if (n <= 8) return null;
  const idx = Int32Array.from([0, 1, n - 6, n - 5, n - 4, n - 3, n - 2, n - 1]);
  return Array.from({ length: cache.numLayers }, () => Array.from({ length: cache.numKvHeads }, () => idx));
}

describe('decodePolicy in generate', () => {
  let model: OrtCausalLM;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('evicts after every step, keeps positions, and matches a hand-written loop', async () => {
    const prompt = torchGolden().cases[0].prompt; // 12 tokens
    const steps: number[] = [];
    const policy: DecodePolicyV1 = {
      specificationVersion: 'v1',
      type: 'sinks-and-recent',
      requires: ['kvSelection'],
      toConfig: () => ({ type: 'sinks-and-recent' }),
      afterStep: async ({ cache, step, promptLength }) => {
        steps.push(step);
        expect(promptLength).toBe(12);
        return keepSinksAndRecent(cache);
      },
    };
    const r = await model.generate({ inputIds: prompt }, { maxNewTokens: 6, decodePolicy: policy });
    expect(steps).toEqual([0, 1, 2, 3, 4]);
    expect(r.kvBytes.final).toBe(2 * 2 * 2 * 8 * 16 * 4);

    // The same by hand: forward, evict, forward at the true next position.
    const pre = await model.forward({ inputIds: prompt });
    let cache = pre.cache;
    let logits = pre.logits;
    const tokens: number[] = [];
    for (let i = 0; i < 6; i++) {
      tokens.push(argmax(logits));
      if (i === 5) break;
      const step = await model.forward({ inputIds: [tokens[i]], cache });
      const kept = keepSinksAndRecent(step.cache);
      const next = kept ? await step.cache.gather(kept) : step.cache;
      logits = step.logits;
      cache = next;
    }
    expect(r.tokens).toEqual(tokens);
    expect(Array.from(cache.positions(1, 1))).toEqual([0, 1, 11, 12, 13, 14, 15, 16]);
    expect(cache.nextPosition).toBe(17);
    // Eviction changed the output relative to the full cache (so the policy really acted).
    expect(r.tokens).not.toEqual(torchGolden().cases[0].greedy.slice(0, 6));
  });
});
