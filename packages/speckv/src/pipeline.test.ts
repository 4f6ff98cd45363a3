import { createPipeline, type PromptCompressorV1 } from '@draft/core';
import { createFakeTokenizer, FakeCausalLM } from '@draft/core/testing';
import { describe, expect, it } from 'vitest';
import { DraftLookahead } from './draft-lookahead.js';
import { speckv } from './speckv-policy.js';

// End to end through core's createPipeline on its FakeCausalLM (real in-memory KV cache, structured queries).
const prompt = 'The quick brown fox jumps over the lazy dog, twice over.';

describe('createPipeline + speckv + DraftLookahead', () => {
  it('drafts, prefills prompt ++ draft, keeps C per (layer, KV head), re-runs x[n−1] at n − 1, decodes', async () => {
    const target = new FakeCausalLM({ name: 'target' });
    const draft = new FakeCausalLM({ name: 'draft', numLayers: 1, numHeads: 2, numKvHeads: 1 });
    const pipeline = createPipeline({ target, draft, lookahead: new DraftLookahead(), cachePolicy: speckv({ windowSize: 4, budget: 16 }) });
    const result = await pipeline.generate(prompt, { maxNewTokens: 5 });
    const n = target.calls[0].inputIds.length - 5; // the prefill holds prompt ++ 5 draft tokens
    expect(result.usage.draftTokens).toBe(5);
    expect(result.usage.keptKvTokens).toEqual([[16, 16], [16, 16]]); // the policy's budget became the pipeline's C
    expect(target.calls[0].captureQueries).toBe(4 + 1 + 5);
    expect(target.calls[1]).toMatchObject({ positionIds: [n - 1], cacheLength: 16 });
    expect(result.tokens).toHaveLength(5);
    expect(target.tracker.live + draft.tracker.live).toBe(0);
  });

  it('different tokenizers: the draft answer crosses as text', async () => {
    const target = new FakeCausalLM({ name: 'target' });
    const draft = new FakeCausalLM({ name: 'draft', tokenizer: createFakeTokenizer({ shift: 3 }) });
    const pipeline = createPipeline({ target, draft, lookahead: new DraftLookahead({ maxNewTokens: 3 }), cachePolicy: speckv({ windowSize: 4 }), budget: { tokens: 16 } });
    const result = await pipeline.generate(prompt, { maxNewTokens: 2 });
    expect(result.usage.draftTokens).toBe(3);
    // The draft's first call read the prompt with its own (shifted) ids.
    expect(draft.calls[0].inputIds[1]).toBe((prompt.charCodeAt(0) + 3) % 128);
    expect(result.usage.keptKvTokens.flat().every((c) => c === 16)).toBe(true);
  });

  it("after a compressor that hands over its own draft tokens, SpecKV still drafts L = maxNewTokens (no reuse)", async () => {
    // A SpecPC-like compressor: keeps the last 40 tokens and reports its one (Lk = 1) draft token.
    const seen: { lookaheadTokens?: number }[] = [];
    const compressor: PromptCompressorV1 = {
      specificationVersion: 'v1',
      type: 'lk1-compressor',
      needs: 'draft',
      async compress(input) {
        seen.push({ lookaheadTokens: input.lookaheadTokens });
        const n = input.inputIds.length;
        const kept = Int32Array.from({ length: input.budget }, (_, i) => n - input.budget + i);
        const ids = Array.from(kept, (i) => input.inputIds[i]);
        return { keptIndices: kept, inputIds: ids, text: '', draftTokenIds: [120], draftTokens: 1 };
      },
      toConfig: () => ({ type: 'lk1-compressor' }),
    };
    const target = new FakeCausalLM({ name: 'target' });
    const draft = new FakeCausalLM({ name: 'draft', numLayers: 1, numHeads: 2, numKvHeads: 1 });
    const pipeline = createPipeline({ target, draft, compressor, promptBudget: { tokens: 40 }, lookahead: new DraftLookahead(), cachePolicy: speckv({ windowSize: 4, budget: 16 }) });
    const result = await pipeline.generate(prompt, { maxNewTokens: 5, lookaheadTokens: 6 });
    // The compressor drafted with its own lookahead: the pipeline's L is not its Lk.
    expect(seen).toEqual([{ lookaheadTokens: undefined }]);
    // SpecKV's lookahead: 6 fresh draft tokens after the 40-token compressed prompt, not the compressor's 1.
    expect(target.calls[0].inputIds).toHaveLength(40 + 6);
    expect(result.usage.draftTokens).toBe(1 + 6);
    expect(target.tracker.live + draft.tracker.live).toBe(0);
  });

  it('n ≤ C: no draft run, no selection', async () => {
    const target = new FakeCausalLM();
    const draft = new FakeCausalLM();
    const pipeline = createPipeline({ target, draft, lookahead: new DraftLookahead(), cachePolicy: speckv({ windowSize: 4 }) });
    await pipeline.generate('short', { maxNewTokens: 2 });
    expect(draft.calls).toHaveLength(0);
  });
});
