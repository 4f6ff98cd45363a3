import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '@draft/core';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { TINY_QWEN2_GQA, TORCH_LLAMA, torchGolden } from './helpers.js';

describe('generate / stream on tiny-qwen2-gqa', () => {
  let model: OrtCausalLM;
  const loadProgress: ProgressEvent[] = [];
  beforeAll(async () => {
    model = await loadModel(TINY_QWEN2_GQA, { threads: 1, onProgress: (p) => loadProgress.push(p) });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('reports load progress and model facts', () => {
    expect(loadProgress.map((p) => p.completed)).toEqual([1, 2, 3]);
    expect(loadProgress.every((p) => p.stage === 'load' && p.total === 3)).toBe(true);
    expect(model.info).toMatchObject({ architecture: 'qwen2', eosTokenIds: [507, 511], bosTokenId: 506 });
    expect(model.tokenizer.vocabSize).toBe(512);
    expect(model.tokenizer.fingerprint).toMatch(/^[0-9a-f]{32}$/);
  });

  it('applies the chat template and generates from messages', async () => {
    const messages = [{ role: 'user' as const, content: 'hello there' }];
    expect(model.tokenizer.applyChatTemplate!(messages, { addGenerationPrompt: true })).toBe('<|user|>hello there<|end|><|assistant|>');
    expect(model.tokenizer.applyChatTemplate!(messages)).toBe('<|user|>hello there<|end|>');
    const ids = model.encodePrompt({ messages });
    expect(ids[0]).toBe(509); // <|user|> as one special token
    expect(ids[ids.length - 1]).toBe(510); // <|assistant|>
    const fromMessages = await model.generate({ messages }, { maxNewTokens: 6 });
    const fromIds = await model.generate({ inputIds: ids }, { maxNewTokens: 6 });
    expect(fromMessages.tokens).toEqual(fromIds.tokens);
  });

  it('returns text, usage, timings and KV bytes; chunked prefill reports progress', async () => {
    const progress: number[] = [];
    const r = await model.generate('the quick brown fox jumps over the lazy dog', { maxNewTokens: 8, chunkSize: 4, onProgress: (p) => progress.push(p.completed) });
    const n = r.usage.promptTokens;
    expect(progress[progress.length - 1]).toBe(n);
    expect(progress.length).toBe(Math.ceil(n / 4));
    expect(r.tokens).toHaveLength(8);
    expect(r.finishReason).toBe('length');
    expect(r.text).toBe(model.tokenizer.decode(r.tokens, { skipSpecialTokens: true }));
    expect(r.usage).toMatchObject({ compressedPromptTokens: n, completionTokens: 8, draftTokens: 0 });
    expect(r.usage.keptKvTokens).toEqual([
      [n, n],
      [n, n],
    ]);
    expect(r.kvBytes.afterPrefill).toBe(2 * 2 * 2 * n * 16 * 4);
    expect(r.kvBytes.final).toBe(2 * 2 * 2 * (n + 7) * 16 * 4);
    expect(r.timings.prefillMs).toBeGreaterThan(0);
    expect(r.timings.ttftMs).toBeGreaterThanOrEqual(r.timings.prefillMs);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.ttftMs);
    expect(r.timings.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  it('streams pieces that concatenate to the result text, honouring stop strings', async () => {
    const base = await model.generate('once upon a time', { maxNewTokens: 16 });
    const stream = model.stream('once upon a time', { maxNewTokens: 16 });
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece);
    const result = await stream.result;
    expect(pieces.join('')).toBe(base.text);
    expect(result.tokens).toEqual(base.tokens);
    // Stop at a substring from the middle of the text: the text is cut before it and never streamed.
    const stop = base.text.slice(Math.floor(base.text.length / 2), Math.floor(base.text.length / 2) + 3);
    const cut = base.text.indexOf(stop);
    const stopped = model.stream('once upon a time', { maxNewTokens: 16, stopStrings: [stop] });
    const stoppedPieces: string[] = [];
    for await (const piece of stopped) stoppedPieces.push(piece);
    const r = await stopped.result;
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(base.text.slice(0, cut));
    expect(stoppedPieces.join('')).toBe(r.text);
  });

  it('stops on stop token ids (excluded)', async () => {
    const base = await model.generate('once upon a time', { maxNewTokens: 10 });
    const r = await model.generate('once upon a time', { maxNewTokens: 10, stopTokenIds: [base.tokens[4]] });
    const at = base.tokens.indexOf(base.tokens[4]);
    expect(r.tokens).toEqual(base.tokens.slice(0, at));
    expect(r.finishReason).toBe('stop');
  });

  it('seeded sampling is reproducible', async () => {
    const options = { maxNewTokens: 12, temperature: 1.2, topK: 50, topP: 0.95 };
    const a = await model.generate('hello', { ...options, seed: 11 });
    const b = await model.generate('hello', { ...options, seed: 11 });
    const c = await model.generate('hello', { ...options, seed: 12 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });
});

describe('generate on the torch fixture stops at EOS', () => {
  it('stops with finishReason stop when EOS is a stop id', async () => {
    const model = await loadModel(TORCH_LLAMA, { threads: 1 });
    const c = torchGolden().cases[0];
    // Declare the 4th greedy token a stop token: generation ends before it.
    const r = await model.generate({ inputIds: c.prompt }, { maxNewTokens: 10, stopTokenIds: [c.greedy[3]] });
    expect(r.tokens).toEqual(c.greedy.slice(0, c.greedy.indexOf(c.greedy[3])));
    await model.dispose();
  });
});
