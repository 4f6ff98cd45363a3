import { AbortError, InvalidArgumentError } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { DraftLookahead, draftLookahead } from './draft-lookahead.js';
import { createLetterTokenizer, createScriptedCausalLM } from '@draft/core/testing';

// Vocabulary of the draft: 'a'..'o' = 0..14, EOS = 15. It answers "the next letter", and 'f' -> EOS.
const draftTokenizer = createLetterTokenizer({ fingerprint: 'letters', specials: [15] });
const nextLetter = (t: number) => (t === 5 ? 15 : (t + 1) % 15);

describe('DraftLookahead', () => {
  it('same tokenizer: greedy ids at explicit positions, the last token not fed back, caches disposed', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: draftTokenizer, eos: [15] });
    // prompt "abc" -> d e f, then f -> EOS; maxNewTokens 3 stops before that.
    const result = await new DraftLookahead().lookahead({ inputIds: [0, 1, 2], text: 'abc', maxNewTokens: 3, target, draft });
    expect(result).toEqual({ tokenIds: [3, 4, 5], text: 'def', draftTokens: 3 });
    expect(draft.calls).toEqual([
      { inputIds: [0, 1, 2], positionIds: [0, 1, 2], cacheLength: 0 },
      { inputIds: [3], positionIds: [3], cacheLength: 3 },
      { inputIds: [4], positionIds: [4], cacheLength: 4 },
    ]);
    expect(draft.live.size).toBe(0);
  });

  it('stops at EOS and keeps it', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: draftTokenizer, eos: [15] });
    const result = await draftLookahead({ maxNewTokens: 10 }).lookahead({ inputIds: [2], text: 'c', maxNewTokens: 99, target, draft });
    expect(result).toEqual({ tokenIds: [3, 4, 5, 15], text: 'def', draftTokens: 4 });
    expect(draft.calls).toHaveLength(4); // prefill + d, e, f fed back; EOS is not
  });

  it('different tokenizers: the prompt and the answer cross as text, EOS maps to the target EOS', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    // Target ids are shifted: 'a' = 3, and its EOS is 1.
    const targetTokenizer = createLetterTokenizer({ fingerprint: 'shifted', offset: 3, vocabSize: 20, specials: [1] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: targetTokenizer, eos: [1], vocabSize: 20 });
    const result = await new DraftLookahead().lookahead({ inputIds: [99, 98], text: 'd', maxNewTokens: 8, target, draft });
    // The draft read 'd' with its own tokenizer (id 3), not the target ids.
    expect(draft.calls[0].inputIds).toEqual([3]);
    expect(result.text).toBe('ef');
    expect(result.tokenIds).toEqual([4 + 3, 5 + 3, 1]);
    expect(result.draftTokens).toBe(3);
  });

  it('maxNewTokens 0 runs nothing; a missing draft and a bad option are typed errors', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: draftTokenizer, eos: [15] });
    expect(await new DraftLookahead().lookahead({ inputIds: [0], text: 'a', maxNewTokens: 0, target, draft })).toEqual({
      tokenIds: [],
      text: '',
      draftTokens: 0,
    });
    expect(draft.calls).toHaveLength(0);
    await expect(new DraftLookahead().lookahead({ inputIds: [0], text: 'a', maxNewTokens: 2, target })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      argument: 'draft',
    });
    expect(() => new DraftLookahead({ maxNewTokens: -1 })).toThrow(InvalidArgumentError);
    expect(new DraftLookahead({ maxNewTokens: 5 }).toConfig()).toEqual({ type: 'draft-lookahead', maxNewTokens: 5, reuseDraftTokens: false });
  });

  it('ignores draftTokenIds from an earlier stage by default (L = maxNewTokens); reuses them only when told to', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: draftTokenizer, eos: [15] });
    const input = { inputIds: [0], text: 'a', maxNewTokens: 4, target, draft, draftTokenIds: [7] };
    expect(await new DraftLookahead().lookahead(input)).toEqual({ tokenIds: [1, 2, 3, 4], text: 'bcde', draftTokens: 4 });
    expect(draft.calls).toHaveLength(4);
    const reused = await new DraftLookahead({ reuseDraftTokens: true }).lookahead({ ...input, draftTokenIds: [7, 8, 15] });
    expect(reused).toEqual({ tokenIds: [7, 8, 15], text: 'hi', draftTokens: 0 });
    expect(draft.calls).toHaveLength(4);
  });

  it('aborts with an AbortError and leaves no cache alive', async () => {
    const draft = createScriptedCausalLM({ next: nextLetter, tokenizer: draftTokenizer, eos: [15] });
    const target = createScriptedCausalLM({ next: () => 0, tokenizer: draftTokenizer, eos: [15] });
    const controller = new AbortController();
    const run = new DraftLookahead().lookahead({
      inputIds: [0],
      text: 'a',
      maxNewTokens: 10,
      target,
      draft,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.completed === 2) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(draft.live.size).toBe(0);
  });
});
