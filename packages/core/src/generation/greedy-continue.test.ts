import { describe, expect, it } from 'vitest';
import { createLetterTokenizer, createScriptedCausalLM } from '../testing/scripted-causal-lm.js';
import { greedyContinue } from './greedy-continue.js';

const tokenizer = createLetterTokenizer({ fingerprint: 'letters', specials: [15] });
const nextLetter = (t: number) => (t === 5 ? 15 : t + 1); // … e, f, then EOS (15)

async function prefill(model: ReturnType<typeof createScriptedCausalLM>, ids: number[]) {
  return model.forward({ inputIds: ids, positionIds: Int32Array.from(ids, (_, i) => i) });
}

describe('greedyContinue', () => {
  it('keeps the EOS that stops it, feeds back every other token at cache.nextPosition, and leaves the caller cache', async () => {
    const model = createScriptedCausalLM({ next: nextLetter, tokenizer, eos: [15] });
    const start = await prefill(model, [0, 1, 2]);
    const progress: number[] = [];
    const out = await greedyContinue({ model, cache: start.cache, logits: start.logits, maxNewTokens: 10, stage: 'lookahead', onProgress: (e) => progress.push(e.completed) });
    expect(out).toEqual({ tokens: [3, 4, 5, 15], stoppedAtEos: true });
    expect(model.calls.slice(1)).toEqual([
      { inputIds: [3], positionIds: [3], cacheLength: 3 },
      { inputIds: [4], positionIds: [4], cacheLength: 4 },
      { inputIds: [5], positionIds: [5], cacheLength: 5 },
    ]);
    expect(progress).toEqual([1, 2, 3, 4]);
    expect([...model.live]).toEqual([start.cache]);
  });

  it('stops after maxNewTokens without feeding back the last token', async () => {
    const model = createScriptedCausalLM({ next: nextLetter, tokenizer, eos: [15] });
    const start = await prefill(model, [0]);
    expect(await greedyContinue({ model, cache: start.cache, logits: start.logits, maxNewTokens: 2, stage: 's' })).toEqual({ tokens: [1, 2], stoppedAtEos: false });
    expect(model.calls).toHaveLength(2);
    expect(model.live.size).toBe(1);
  });

  it('stops at the model’s last position', async () => {
    const model = createScriptedCausalLM({ next: nextLetter, tokenizer, eos: [15], maxPositions: 3 });
    const start = await prefill(model, [0, 1]);
    expect(await greedyContinue({ model, cache: start.cache, logits: start.logits, maxNewTokens: 10, stage: 's' })).toEqual({ tokens: [2, 3], stoppedAtEos: false });
  });

  it('throws on an aborted signal and disposes what it created', async () => {
    const model = createScriptedCausalLM({ next: nextLetter, tokenizer, eos: [15] });
    const start = await prefill(model, [0]);
    const controller = new AbortController();
    const pending = greedyContinue({
      model,
      cache: start.cache,
      logits: start.logits,
      maxNewTokens: 10,
      stage: 's',
      signal: controller.signal,
      onProgress: (e) => e.completed === 2 && controller.abort(),
    });
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect([...model.live]).toEqual([start.cache]);
  });
});
