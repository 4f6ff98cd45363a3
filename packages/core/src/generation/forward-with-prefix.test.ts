import { describe, expect, it } from 'vitest';
import type { PrefixCacheV1 } from '../spec/prefix-cache.js';
import { FakeCausalLM } from '../testing/fake-causal-lm.js';
import { forwardWithPrefix, prefixApplies } from './forward-with-prefix.js';

const DOC = [3, 4, 5, 6, 7, 8, 9, 10];
const QUESTION = [11, 12];

async function storedPrefix(model: FakeCausalLM, queryCount: number): Promise<PrefixCacheV1> {
  const r = await model.forward({ inputIds: DOC, captureQueries: queryCount > 0 ? queryCount : undefined });
  return { inputIds: DOC, cache: r.cache, queryCount, ...(r.queries ? { queries: r.queries } : {}) };
}

describe('forwardWithPrefix', () => {
  it('runs only the new tokens at their own positions and stitches the window queries from the prefix', async () => {
    const model = new FakeCausalLM({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 });
    const prefix = await storedPrefix(model, 5);
    const ids = DOC.concat(QUESTION);
    const full = await model.forward({ inputIds: ids, captureQueries: 6 });
    model.calls.length = 0;
    const reused = await forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 6 });
    // One call: the 2 question tokens at positions 8, 9 over the 8 stored entries, capturing their 2 queries.
    expect(model.calls).toEqual([expect.objectContaining({ inputIds: QUESTION, positionIds: [8, 9], cacheLength: 8, captureQueries: 2 })]);
    expect(reused.reusedTokens).toBe(8);
    expect(reused.queries).toEqual(full.queries);
    expect(Array.from(reused.logits)).toEqual(Array.from(full.logits));
    expect(reused.cache.lengths).toEqual(full.cache.lengths);
    expect(await reused.cache.readKeys(1)).toEqual(await full.cache.readKeys(1));
    expect(reused.cache.nextPosition).toBe(10);
  });

  it('a window within the new tokens needs no stored queries', async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4 });
    const prefix = await storedPrefix(model, 0);
    const ids = DOC.concat(QUESTION);
    const full = await model.forward({ inputIds: ids, captureQueries: 2 });
    expect((await forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 2 })).queries).toEqual(full.queries);
  });

  it("refuses (or, with onMismatch 'full', runs everything) when the window reaches past the stored queries", async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4 });
    const prefix = await storedPrefix(model, 3);
    const ids = DOC.concat(QUESTION);
    await expect(forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 'all' })).rejects.toMatchObject({ code: 'UNSUPPORTED_CAPABILITY', capability: 'prefixQueries' });
    await expect(forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 6 })).rejects.toMatchObject({ code: 'UNSUPPORTED_CAPABILITY' });
    // 5 = 2 new + the 3 stored: fits exactly.
    expect((await forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 5 })).reusedTokens).toBe(8);
    model.calls.length = 0;
    const fallback = await forwardWithPrefix({ model, inputIds: ids, prefix, captureQueries: 'all', onMismatch: 'full' });
    expect(fallback.reusedTokens).toBe(0);
    expect(model.calls[0]).toMatchObject({ inputIds: ids, cacheLength: 0, captureQueries: 'all' });
  });

  it('a prompt that does not extend the prefix (or adds nothing) is refused or run in full', async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4 });
    const prefix = await storedPrefix(model, 0);
    const other = [3, 4, 5, 6, 7, 8, 9, 99, 11];
    expect(prefixApplies(prefix, other)).toBe(false);
    expect(prefixApplies(prefix, DOC)).toBe(false);
    expect(prefixApplies(prefix, DOC.concat([1]))).toBe(true);
    await expect(forwardWithPrefix({ model, inputIds: other, prefix })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'prefix' });
    expect((await forwardWithPrefix({ model, inputIds: other, prefix, onMismatch: 'full' })).reusedTokens).toBe(0);
  });
});
