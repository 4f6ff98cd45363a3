import { type CachePolicyV1, createPipeline } from '@draft/core';
import { FakeCausalLM } from '@draft/core/testing';
import { describe, expect, it } from 'vitest';
import { specKVPC } from './speckv-pc.js';
import { specPC } from './specpc-compressor.js';

// Integration with core's createPipeline (fakes only; the runtime end-to-end checks are in packages/cli/test/specpc-e2e.test.ts).
const model = (name: string) => new FakeCausalLM({ name, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 });
const prompt = 'The quick brown fox jumps over the lazy dog; the needle is 42. '.repeat(2);

/** A stand-in KV policy that wants lookahead and keeps the first C − 1 entries (ascending, < n − 1). */
const firstEntries: CachePolicyV1 = {
  specificationVersion: 'v1',
  type: 'first-entries',
  requires: [],
  queryWindow: 1,
  usesLookahead: true,
  async select(context) {
    const keep = Int32Array.from({ length: Math.min(context.budget, context.promptLength) - 1 }, (_, i) => i);
    return Array.from({ length: context.numLayers }, () => Array.from({ length: context.numKvHeads }, () => keep));
  },
  toConfig: () => ({ type: 'first-entries' }),
};

describe('SpecPC in core createPipeline', () => {
  it("the compressor's budget option is the pipeline's prompt budget", async () => {
    const target = model('target');
    const draft = model('draft');
    const pipeline = createPipeline({ target, draft, compressor: specPC({ budget: 40, windowSize: 8, kernelSize: 5 }) });
    const result = await pipeline.generate(prompt, { maxNewTokens: 2 });
    expect(result.usage.compressedPromptTokens).toBe(40);
    expect(draft.calls).toHaveLength(1);
    expect(target.calls[0].inputIds).toHaveLength(40);
  });

  it('SpecKV-PC: one draft run; the KV stage prefills the compressed prompt ++ the 20 draft tokens', async () => {
    const target = model('target');
    const draft = model('draft');
    const { compressor, lookahead } = specKVPC({ budget: 48, windowSize: 8 });
    const pipeline = createPipeline({ target, draft, compressor, lookahead, cachePolicy: firstEntries, budget: { tokens: 16 } });
    const result = await pipeline.generate(prompt, { maxNewTokens: 2 });
    expect(result.usage.compressedPromptTokens).toBe(48);
    expect(draft.calls.filter((c) => c.cacheLength === 0)).toHaveLength(1); // one draft prefill
    expect(draft.calls).toHaveLength(20); // + 19 fed-back lookahead tokens, nothing more
    const prefill = target.calls[0];
    expect(prefill.inputIds).toHaveLength(48 + 20);
    expect(result.usage.draftTokens).toBe(20);
  });
});
