import { describe, expect, it } from 'vitest';
import { range } from '../primitives/kept-indices.js';
import { type DraftError, PromptNotRepresentableError, UnsupportedCapabilityError } from '../spec/errors.js';
import type { PromptCompressionInputV1, PromptCompressorV1 } from '../spec/policy.js';
import type { TokenizerV1 } from '../spec/tokenizer.js';
import { FakeCausalLM } from '../testing/fake-causal-lm.js';
import { createFakeTokenizer } from '../testing/fake-tokenizer.js';
import { FakeTextTarget } from '../testing/fake-text-target.js';
import { keptText } from './compress-stage.js';
import { createPipeline } from './create-pipeline.js';

describe('keptText', () => {
  // WordLevel spans of 'the cat,  sat\n on mat' (see runtime's token-offsets test).
  const text = 'the cat,  sat\n on mat';
  const words: [number, number][] = [
    [0, 3],
    [4, 7],
    [7, 8],
    [10, 13],
    [15, 17],
    [18, 21],
  ];

  it('joins runs of consecutive kept tokens with the whitespace that preceded each run in the original', () => {
    expect(keptText(text, words, [0, 1, 3, 4])).toBe('the cat  sat\n on');
    expect(keptText(text, words, [1, 2, 5])).toBe('cat, mat');
    expect(keptText(text, words, [3])).toBe('sat'); // no separator before the first run
    expect(keptText(text, words, range(0, 6))).toBe(text);
  });

  it('never repeats a character that byte-level tokens share; empty spans add nothing', () => {
    // 'aé 日😀' byte-level: BOS, a, é, ' '+日's first byte, 日's 2nd and 3rd bytes, then 😀.
    const t = 'aé 日😀';
    const spans: [number, number][] = [[0, 0], [0, 1], [1, 2], [2, 4], [3, 4], [3, 4], [4, 6]];
    expect(keptText(t, spans, [0, 1])).toBe('a');
    expect(keptText(t, spans, [3, 4])).toBe(' 日');
    expect(keptText(t, spans, [3, 5])).toBe(' 日'); // 5 lies in the character run 3 already emitted
    expect(keptText(t, spans, [1, 4])).toBe('a 日'); // the gap 'é ' contributes its whitespace only
    expect(keptText(t, spans, [6])).toBe('😀');
  });
});

/** Whitespace-separated words; ids from `vocab` (1-based), anything else is the unknown token 0. Offsets built by hand. */
function wordTokenizer(vocab: readonly string[]): TokenizerV1 {
  const ids = new Map(vocab.map((w, i) => [w, i + 1]));
  const encodeWithOffsets = (text: string) => {
    const out = { ids: [] as number[], offsets: [] as [number, number][] };
    for (const m of text.matchAll(/\S+/g)) {
      out.ids.push(ids.get(m[0]) ?? 0);
      out.offsets.push([m.index, m.index + m[0].length]);
    }
    return out;
  };
  return {
    vocabSize: vocab.length + 1,
    fingerprint: 'words',
    unknownTokenId: 0,
    encode: (text) => encodeWithOffsets(text).ids,
    encodeWithOffsets,
    decode: (list) => list.map((id) => (id === 0 ? '' : vocab[id - 1])).join(' '),
  };
}

/** Keeps the last `budget` draft tokens and records each call. */
function lastTokens(): PromptCompressorV1 & { budgets: number[] } {
  const compressor = {
    specificationVersion: 'v1' as const,
    type: 'last-tokens',
    needs: 'none' as const,
    budgets: [] as number[],
    async compress(input: PromptCompressionInputV1) {
      compressor.budgets.push(input.budget);
      const kept = range(Math.max(0, input.inputIds.length - input.budget), input.inputIds.length);
      return { keptIndices: kept, inputIds: Array.from(kept, (i) => input.inputIds[i]), text: 'draft decoding', draftTokens: 0 };
    },
    toConfig: () => ({ type: 'last-tokens' }),
  };
  return compressor;
}

const VOCAB = Array.from({ length: 40 }, (_, i) => `w${String.fromCharCode(97 + (i % 26))}`);
// 40 two-letter words, single spaces: the character-level target sees 1 (BOS) + 119 characters = 120 tokens.
const PROMPT = VOCAB.join(' ');

describe('createPipeline: a compressor whose draft has another tokenizer', () => {
  const draft = () => new FakeCausalLM({ name: 'draft', tokenizer: wordTokenizer(VOCAB) });

  it('counts the budget in target tokens and hands the target the kept original text', async () => {
    const target = new FakeCausalLM({ name: 'target' });
    const compressor = lastTokens();
    const result = await createPipeline({ target, draft: draft(), compressor, promptBudget: { tokens: 30 } }).generate(PROMPT, { maxNewTokens: 1 });
    // c = round(30 · 40 / 120) = 10 draft words → 'ww … wn' text of 10·3 − 1 = 29 characters + BOS = 30 tokens.
    expect(compressor.budgets).toEqual([10]);
    expect(result.usage.promptTokens).toBe(120);
    expect(result.usage.compressedPromptTokens).toBe(30);
    expect(target.tokenizer.decode(target.calls[0].inputIds, { skipSpecialTokens: true })).toBe(VOCAB.slice(30).join(' '));
  });

  it('re-runs the compressor with a corrected draft budget until the target sees at most C and at least 0.9·C', async () => {
    const target = new FakeCausalLM({ name: 'target' });
    const compressor = lastTokens();
    const result = await createPipeline({ target, draft: draft(), compressor, promptBudget: { tokens: 20 } }).generate(PROMPT, { maxNewTokens: 1 });
    // c = round(20/3) = 7 → 21 target tokens > 20; then min(round(7 · 20/21), 6) = 6 → 18 ≥ 0.9 · 20: accepted.
    expect(compressor.budgets).toEqual([7, 6]);
    expect(result.usage.compressedPromptTokens).toBe(18);
  });

  it('a prompt that fits the target budget is not compressed', async () => {
    const compressor = lastTokens();
    const result = await createPipeline({ target: new FakeCausalLM(), draft: draft(), compressor, promptBudget: { tokens: 120 } }).generate(PROMPT, { maxNewTokens: 1 });
    expect(compressor.budgets).toEqual([]);
    expect(result.usage.compressedPromptTokens).toBe(120);
  });

  it('refuses a prompt mostly unknown to the draft before any model runs', async () => {
    const target = new FakeCausalLM({ name: 'target' });
    const d = draft();
    const compressor = lastTokens();
    const prompt = `${'lorem ipsum dolor '.repeat(10)}wa wb`; // 30 unknown words of 32
    const error = await createPipeline({ target, draft: d, compressor, promptBudget: { tokens: 20 } })
      .generate(prompt, { maxNewTokens: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PromptNotRepresentableError);
    expect((error as DraftError).code).toBe('PROMPT_NOT_REPRESENTABLE');
    expect((error as DraftError).details).toMatchObject({ promptTokens: 32, unknownTokens: 30, unknownFraction: 30 / 32, maxUnknownFraction: 0.5, examples: ['lorem', 'ipsum', 'dolor'] });
    expect(compressor.budgets).toEqual([]);
    expect(d.calls).toHaveLength(0);
    expect(target.calls).toHaveLength(0);
    // The threshold is an option.
    const lenient = createPipeline({ target, draft: d, compressor, promptBudget: { tokens: 20 }, maxUnknownTokenFraction: 1 });
    await expect(lenient.generate(prompt, { maxNewTokens: 1 })).resolves.toBeDefined();
  });

  it('needs a draft tokenizer with offsets', async () => {
    const plain = new FakeCausalLM({ name: 'draft', tokenizer: createFakeTokenizer({ shift: 3 }) });
    const pipeline = createPipeline({ target: new FakeCausalLM(), draft: plain, compressor: lastTokens(), promptBudget: { tokens: 20 } });
    await expect(pipeline.generate(PROMPT, { maxNewTokens: 1 })).rejects.toThrow(UnsupportedCapabilityError);
  });

  it('a text target receives the kept original text (budget in draft tokens)', async () => {
    const target = new FakeTextTarget();
    const spaced = PROMPT.replaceAll(' ', '  ');
    const result = await createPipeline({ target, draft: draft(), compressor: lastTokens(), promptBudget: { tokens: 3 } }).generate(spaced, { maxNewTokens: 1 });
    expect(target.requests[0].prompt).toBe('wl  wm  wn');
    expect(result.usage.compressedPromptTokens).toBe(3);
  });
});
