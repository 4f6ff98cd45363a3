import { describe, expect, it } from 'vitest';
import { defineCachePolicy } from '../policies/define-cache-policy.js';
import type { PrefixCacheV1 } from '../spec/prefix-cache.js';
import type { LookaheadInputV1, LookaheadProviderV1, PromptCompressorV1 } from '../spec/policy.js';
import { FakeCausalLM } from '../testing/fake-causal-lm.js';
import { FakeTextTarget } from '../testing/fake-text-target.js';
import { createPipeline } from './create-pipeline.js';

const DOC = Array.from({ length: 12 }, (_, i) => 97 + i);

async function prefixOf(model: FakeCausalLM, queryCount: number): Promise<PrefixCacheV1> {
  const r = await model.forward({ inputIds: DOC, captureQueries: queryCount || undefined });
  return { inputIds: DOC, cache: r.cache, queryCount, ...(r.queries ? { queries: r.queries } : {}) };
}

// Keeps the 4 highest-scoring earlier entries by the sum of window-query · key: depends on every query it gets.
const dotPolicy = defineCachePolicy({
  type: 'dot',
  queryWindow: 4,
  async select(context) {
    const n = context.promptLength;
    const keys = await context.keys(0);
    const queries = await context.queries(0);
    const d = context.headDim;
    const scores = Array.from({ length: n - 1 }, (_, j) => {
      let s = 0;
      for (let q = 0; q < context.queryCount; q++) for (let i = 0; i < d; i++) s += queries[q * d + i] * keys[j * d + i];
      return s;
    });
    const top = scores.map((s, j) => [s, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 4).map(([, j]) => j).sort((a, b) => a - b);
    return Array.from({ length: context.numLayers }, () => [Int32Array.from(top)]);
  },
});

describe('pipeline.generate with a stored prefix', () => {
  it('selects and decodes exactly as a fresh run, prefilling only the rest of the prompt', async () => {
    const model = new FakeCausalLM({ numLayers: 2, numHeads: 1, numKvHeads: 1, headDim: 4 });
    const prefix = await prefixOf(model, 3);
    const ids = DOC.concat([120, 121]);
    const pipeline = createPipeline({ target: model, cachePolicy: dotPolicy, budget: { tokens: 5 } });
    const fresh = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 4 });
    model.calls.length = 0;
    const cached = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 4, prefix: { target: prefix } });
    expect(cached.tokens).toEqual(fresh.tokens);
    expect(cached.usage.cachedPromptTokens).toBe(12);
    expect(fresh.usage.cachedPromptTokens).toBeUndefined();
    // The prefill call: the two new tokens over the 12 stored entries.
    expect(model.calls[0]).toMatchObject({ inputIds: [120, 121], positionIds: [12, 13], cacheLength: 12 });
    // The stored prefix stays usable for the next question.
    expect(prefix.cache.lengths[0][0]).toBe(12);
    expect((await pipeline.generate({ inputIds: DOC.concat([122]) }, { maxNewTokens: 2, prefix: { target: prefix } })).usage.cachedPromptTokens).toBe(12);
  });

  it('hands both prefixes to the lookahead provider', async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 4 });
    const draft = new FakeCausalLM({ numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 4 });
    const seen: LookaheadInputV1[] = [];
    const lookahead: LookaheadProviderV1 = {
      specificationVersion: 'v1',
      type: 'spy',
      needs: 'target',
      async lookahead(input) {
        seen.push(input);
        return { tokenIds: [122], text: 'z', draftTokens: 0 };
      },
    };
    const policy = defineCachePolicy({ type: 'first', queryWindow: 0, usesLookahead: true, select: () => [[Int32Array.of(0, 1)]] });
    const target = await prefixOf(model, 0);
    const draftPrefix = await prefixOf(draft, 0);
    await createPipeline({ target: model, draft, lookahead, cachePolicy: policy, budget: { tokens: 4 } }).generate(
      { inputIds: DOC.concat([120]) },
      { maxNewTokens: 1, prefix: { target, draft: draftPrefix } },
    );
    expect(seen[0].prefixes?.target).toBe(target);
    expect(seen[0].prefixes?.draft).toBe(draftPrefix);
  });

  it('refuses a prompt that does not extend the prefix, a prompt compressor, and a text target', async () => {
    const model = new FakeCausalLM({ numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 4 });
    const prefix = { target: await prefixOf(model, 0) };
    await expect(createPipeline({ target: model }).generate({ inputIds: [1, 2, 3] }, { maxNewTokens: 1, prefix })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'prefix' });
    await expect(createPipeline({ target: model }).generate({ inputIds: DOC }, { maxNewTokens: 1, prefix })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'prefix' });
    const keepAll: PromptCompressorV1 = {
      specificationVersion: 'v1',
      type: 'keep-all',
      needs: 'none',
      compress: async (input) => ({ keptIndices: Int32Array.from(input.inputIds.keys()), inputIds: Array.from(input.inputIds), text: input.text, draftTokens: 0 }),
      toConfig: () => ({ type: 'keep-all' }),
    };
    await expect(createPipeline({ target: model, compressor: keepAll }).generate({ inputIds: DOC.concat([1]) }, { maxNewTokens: 1, prefix })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      value: "prompt compressor 'keep-all'",
    });
    await expect(createPipeline({ target: new FakeTextTarget() }).generate('hello', { maxNewTokens: 1, prefix })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument: 'prefix' });
  });
});
