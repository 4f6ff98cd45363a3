import { AbortError, createPolicy, InvalidArgumentError, UnsupportedCapabilityError } from '@draft/core';
import { createFakeTokenizer, FakeCausalLM } from '@draft/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { RandomCompressor } from './random.js';
import { RecencyCompressor } from './recency.js';
import { registerPromptCompressionBaselines } from './register.js';
import { SelfInformationCompressor } from './self-information.js';
import { SpecPrefillCompressor, scoreSpecPrefill, selectSpecPrefillChunks } from './spec-prefill.js';

const promptIds = (n: number) => Array.from({ length: n }, (_, i) => 33 + ((i * 7) % 90));
const model = (options: ConstructorParameters<typeof FakeCausalLM>[0] = {}) =>
  new FakeCausalLM({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, ...options });

describe('SpecPrefillCompressor', () => {
  it('scores with the last prompt query + 7 fed-back lookahead queries and keeps chunks with original positions', async () => {
    const draft = model();
    const ids = promptIds(100);
    const result = await new SpecPrefillCompressor({ chunkSize: 8 }).compress({ inputIds: ids, text: '', budget: 30, draft });
    expect(draft.calls).toHaveLength(8);
    expect(draft.calls[0]).toMatchObject({ captureQueries: 1, cacheLength: 0 });
    draft.calls.slice(1).forEach((call, t) => {
      expect(call).toMatchObject({ positionIds: [100 + t], captureQueries: 1 });
    });
    expect(result.draftTokens).toBe(8);
    expect(result.keptIndices.length).toBe(30);
    expect(Array.from(result.positionIds!)).toEqual(Array.from(result.keptIndices));
    for (let p = 96; p < 100; p++) expect(result.keptIndices).toContain(p); // last chunk [96, 100)

    // Same result from the pure functions over the fake's tensors.
    const probe = model();
    const { numHeads, numKvHeads, headDim } = probe.info;
    const prefill = await probe.forward({ inputIds: ids, captureQueries: 1 });
    const steps = [];
    const stepOf = async (queries: Float32Array[], cache: typeof prefill.cache) =>
      Promise.all([0, 1].map(async (l) => ({ queries: queries[l], keys: await cache.readKeys(l) })));
    steps.push(await stepOf(prefill.queries!, prefill.cache));
    let cache = prefill.cache;
    for (const token of result.draftTokenIds!.slice(0, 7)) {
      const step = await probe.forward({ inputIds: [token], cache, captureQueries: 1 });
      steps.push(await stepOf(step.queries!, step.cache));
      cache = step.cache;
    }
    const scores = scoreSpecPrefill({ steps, numHeads, numKvHeads, headDim, promptLength: 100 });
    expect(Array.from(result.keptIndices)).toEqual(Array.from(selectSpecPrefillChunks({ scores, budget: 30, chunkSize: 8 })));
    expect(draft.tracker.live).toBe(0);
  });

  it('passes short prompts through, validates, needs query capture, honours abort', async () => {
    const draft = model();
    const through = await new SpecPrefillCompressor().compress({ inputIds: promptIds(10), text: 'hi', budget: 10, draft });
    expect(through).toMatchObject({ text: 'hi', compressed: false, draftTokens: 0 });
    expect(draft.calls).toHaveLength(0);
    for (const bad of [{ lookaheadTokens: 0 }, { kernelSize: 4 }, { chunkSize: 0 }, { reduce: 'sum' as 'max' }]) {
      expect(() => new SpecPrefillCompressor(bad)).toThrow(InvalidArgumentError);
    }
    await expect(new SpecPrefillCompressor().compress({ inputIds: promptIds(10), text: '', budget: 2.5, draft })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      new SpecPrefillCompressor().compress({ inputIds: promptIds(10), text: '', budget: 4, draft: model({ capabilities: { queryCapture: false } }) }),
    ).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    const controller = new AbortController();
    const run = new SpecPrefillCompressor().compress({
      inputIds: promptIds(40),
      text: '',
      budget: 8,
      draft,
      signal: controller.signal,
      onProgress: (e) => e.completed === 3 && controller.abort(),
    });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(draft.tracker.live).toBe(0);
  });
});

describe('SelfInformationCompressor', () => {
  // The fake predicts "the next character" after every token: runs of consecutive letters are predictable.
  const nextChar = ({ tokenId }: { tokenId: number }) => tokenId + 1;
  const tokenizer = createFakeTokenizer();
  const ids = tokenizer.encode('abcQdefZghij', { addSpecialTokens: false });

  it('keeps the most surprising tokens (by hand: Q, d, Z, g break the runs) plus the window; chunking does not matter', async () => {
    // Surprising (not predicted by the previous token): 3 'Q' (after c), 4 'd' (after Q), 7 'Z' (after f),
    // 8 'g' (after Z); position 0 has no context (∞). C = 6, W = 1: [11] + {0, 3, 4, 7, 8}.
    for (const forwardChunkSize of [1, 5, 512]) {
      const draft = model({ nextToken: nextChar });
      const result = await new SelfInformationCompressor({ windowSize: 1, forwardChunkSize }).compress({ inputIds: ids, text: '', budget: 6, draft });
      expect(Array.from(result.keptIndices)).toEqual([0, 3, 4, 7, 8, 11]);
      expect(result.text).toBe('aQdZgj');
      expect(result.positionIds).toBeUndefined();
      expect(draft.calls).toHaveLength(Math.ceil(12 / forwardChunkSize));
      expect(draft.calls.every((c) => c.logits === 'all')).toBe(true);
      expect(draft.tracker.live).toBe(0);
    }
  });

  it('passes short prompts through; validates; needs a draft', async () => {
    expect(await new SelfInformationCompressor().compress({ inputIds: ids, text: 't', budget: 12 })).toMatchObject({ text: 't', compressed: false });
    await expect(new SelfInformationCompressor().compress({ inputIds: ids, text: '', budget: 4 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => new SelfInformationCompressor({ windowSize: -1 })).toThrow(InvalidArgumentError);
    expect(() => new SelfInformationCompressor({ forwardChunkSize: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('RecencyCompressor and RandomCompressor', () => {
  it('recency keeps the tail and detokenises with the draft tokenizer when given', async () => {
    const ids = createFakeTokenizer().encode('hello world', { addSpecialTokens: false });
    const r = await new RecencyCompressor().compress({ inputIds: ids, text: '', budget: 5, draft: model() });
    expect(Array.from(r.keptIndices)).toEqual([6, 7, 8, 9, 10]);
    expect(r.text).toBe('world');
    // Without any tokenizer the text cannot be rebuilt.
    expect((await new RecencyCompressor().compress({ inputIds: ids, text: '', budget: 5 })).text).toBe('');
    const withTokenizer = new RecencyCompressor({ tokenizer: createFakeTokenizer(), keepOriginalPositions: true });
    const r2 = await withTokenizer.compress({ inputIds: ids, text: '', budget: 5 });
    expect(r2.text).toBe('world');
    expect(Array.from(r2.positionIds!)).toEqual([6, 7, 8, 9, 10]);
    await expect(new RecencyCompressor().compress({ inputIds: ids, text: '', budget: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('random is seeded and reproducible across calls', async () => {
    const ids = promptIds(50);
    const a = await new RandomCompressor({ seed: 3 }).compress({ inputIds: ids, text: '', budget: 10 });
    const b = await new RandomCompressor({ seed: 3 }).compress({ inputIds: ids, text: '', budget: 10 });
    expect(Array.from(a.keptIndices)).toEqual(Array.from(b.keptIndices));
    expect(a.keptIndices.length).toBe(10);
    expect(() => new RandomCompressor({ seed: 1.5 })).toThrow(InvalidArgumentError);
  });
});

describe('registerPromptCompressionBaselines', () => {
  let undo: (() => void) | undefined;
  afterEach(() => undo?.());

  it('registers four compressors whose configs round-trip', () => {
    undo = registerPromptCompressionBaselines();
    for (const compressor of [
      new SpecPrefillCompressor({ lookaheadTokens: 4, keepOriginalPositions: false }),
      new SelfInformationCompressor({ windowSize: 8 }),
      new RecencyCompressor(),
      new RandomCompressor({ seed: 9 }),
    ]) {
      const config = compressor.toConfig();
      const rebuilt = createPolicy(config, { kind: 'compressor' });
      expect(rebuilt.type).toBe(config.type);
      expect(rebuilt.toConfig()).toEqual(config);
    }
    expect(() => createPolicy({ type: 'specprefill', chunkSize: -1 }, { kind: 'compressor' })).toThrow(InvalidArgumentError);
  });
});
