import { InvalidArgumentError } from '@draft/core';
import { createFakeTokenizer, FakeCausalLM } from '@draft/core/testing';
import { describe, expect, it } from 'vitest';
import { MAX_PENDING, ReusedLookahead, specKVPC } from './speckv-pc.js';

const promptIds = (n: number) => Array.from({ length: n }, (_, i) => 33 + ((i * 7) % 90));
const model = (options: ConstructorParameters<typeof FakeCausalLM>[0] = {}) =>
  new FakeCausalLM({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, ...options });
/** Draft runs = forward calls that start from an empty cache (a prefill of the prompt). */
const draftRuns = (m: FakeCausalLM) => m.calls.filter((c) => c.cacheLength === 0).length;

describe('specKVPC', () => {
  it('uses C_pc = 2048, k = N = 32 and 20 lookahead tokens by default', () => {
    const { compressor, toConfig } = specKVPC();
    expect(compressor.toConfig()).toMatchObject({ budget: { tokens: 2048 }, kernelSize: 32, neighbourTokens: 32, lookaheadTokens: 20, windowSize: 64 });
    expect(toConfig()).toMatchObject({ type: 'speckv-pc', lookahead: { type: 'reused-lookahead', maxNewTokens: 20 } });
    expect(specKVPC({ kernelSize: 16 }).compressor.neighbourTokens).toBe(16); // N follows an explicit k
  });

  it('one draft run serves both stages: SpecKV gets the 20 tokens the compressor generated', async () => {
    const draft = model();
    const target = model({ name: 'target' });
    const { compressor, lookahead } = specKVPC({ budget: 24, windowSize: 4, kernelSize: 3, neighbourTokens: 3 });
    const ids = promptIds(80);
    const compressed = await compressor.compress({ inputIds: ids, text: '', budget: 24, draft });
    expect(compressed.keptIndices.length).toBe(24);
    expect(compressed.draftTokenIds).toHaveLength(20);
    expect(draft.calls).toHaveLength(20); // 1 prefill + 19 fed-back tokens
    expect(draftRuns(draft)).toBe(1);
    expect(lookahead.pending).toBe(1);

    const reused = await lookahead.lookahead({ inputIds: compressed.inputIds, text: compressed.text, maxNewTokens: 64, target, draft });
    expect(reused.tokenIds).toEqual(compressed.draftTokenIds);
    expect(reused.draftTokens).toBe(0); // counted by the compressor
    expect(draft.calls).toHaveLength(20); // no second draft run
    expect(target.calls).toHaveLength(0);
    expect(lookahead.pending).toBe(0);
    expect(lookahead.fallbackRuns).toBe(0);
  });

  it("prefers the pipeline's input.draftTokenIds and forgets the remembered entry", async () => {
    const draft = model();
    const { compressor, lookahead } = specKVPC({ budget: 10, windowSize: 2, lookaheadTokens: 3 });
    const a = await compressor.compress({ inputIds: promptIds(30), text: '', budget: 10, draft });
    const out = await lookahead.lookahead({ inputIds: a.inputIds, text: a.text, maxNewTokens: 8, target: model(), draft, draftTokenIds: [120, 121] });
    expect(out).toEqual({ tokenIds: [120, 121], text: 'xy', draftTokens: 0 });
    expect(lookahead.pending).toBe(0);
  });

  it('matches the compressed prompt (not the latest) when several requests interleave', async () => {
    const draft = model();
    const { compressor, lookahead } = specKVPC({ budget: 10, windowSize: 2, lookaheadTokens: 3 });
    const a = await compressor.compress({ inputIds: promptIds(30), text: '', budget: 10, draft });
    const b = await compressor.compress({ inputIds: promptIds(31), text: '', budget: 10, draft });
    expect(a.draftTokenIds).not.toEqual(b.draftTokenIds); // the fake's next token depends on the position
    const target = model();
    expect((await lookahead.lookahead({ inputIds: a.inputIds, text: 'x', maxNewTokens: 8, target, draft })).tokenIds).toEqual(a.draftTokenIds);
    expect((await lookahead.lookahead({ inputIds: b.inputIds, text: 'y', maxNewTokens: 8, target, draft })).tokenIds).toEqual(b.draftTokenIds);
  });

  it('carries the answer as text across different vocabularies (EOS mapped to the target EOS)', async () => {
    const draft = model({ nextToken: ({ position }) => (position >= 41 ? 0 : 104) }); // 'h', 'h', then EOS
    const target = model({ tokenizer: createFakeTokenizer({ shift: 5 }), eosTokenIds: [7] });
    const { compressor, lookahead } = specKVPC({ budget: 10, windowSize: 2 });
    const compressed = await compressor.compress({ inputIds: promptIds(40), text: '', budget: 10, draft });
    expect(compressed.draftTokenIds).toEqual([104, 104, 0]);
    const reused = await lookahead.lookahead({ inputIds: [1, 2, 3], text: compressed.text, maxNewTokens: 8, target, draft });
    expect(reused.text).toBe('hh');
    expect(reused.tokenIds).toEqual([109, 109, 7]); // 'h' + shift 5, then the target's EOS
  });

  it('a passed-through prompt has no draft answer: the lookahead runs the draft once (the only run)', async () => {
    const draft = model();
    const target = model();
    const { compressor, lookahead } = specKVPC({ budget: 64, lookaheadTokens: 5 });
    const ids = promptIds(20);
    const passed = await compressor.compress({ inputIds: ids, text: '', budget: 64, draft });
    expect(passed.compressed).toBe(false);
    expect(draft.calls).toHaveLength(0);
    const out = await lookahead.lookahead({ inputIds: passed.inputIds, text: '', maxNewTokens: 64, target, draft });
    expect(out.tokenIds).toHaveLength(5);
    expect(out.draftTokens).toBe(5);
    expect(draftRuns(draft)).toBe(1);
    expect(lookahead.fallbackRuns).toBe(1);
    expect(draft.tracker.live).toBe(0);
  });

  it("onMissing 'error' throws; remembered answers are bounded", async () => {
    const strict = new ReusedLookahead({ onMissing: 'error' });
    await expect(strict.lookahead({ inputIds: [1], text: 'q', maxNewTokens: 4, target: model() })).rejects.toBeInstanceOf(InvalidArgumentError);
    const tokenizer = createFakeTokenizer();
    for (let i = 0; i < MAX_PENDING + 5; i++) {
      strict.remember({ promptIds: [i], promptText: `p${i}`, tokenIds: [i], stoppedAtEos: false, draftTokenizer: tokenizer });
    }
    expect(strict.pending).toBe(MAX_PENDING);
    expect(() => new ReusedLookahead({ onMissing: 'maybe' as 'error' })).toThrow(InvalidArgumentError);
  });
});
