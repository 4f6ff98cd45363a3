// The provider through the real `ai` package (generateText / streamText) on the random-weight fixture pair.
import { fileURLToPath } from 'node:url';
import { createPipeline, DraftError, UnsupportedCapabilityError } from '@draft/core';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { registerSpecPC } from '@draft/specpc';
import { generateText, streamText } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSample, readTaskFormat } from '@draft/cli';
import { startOpenAIStub } from '../../cli/test/openai-stub.js';
import { createDraft, type DraftProvider, type DraftProviderMetadata } from '../src/index.js';

const bundled = (name: string) => fileURLToPath(new URL(`../../../models/${name}`, import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../../../models/fixtures/${name}`, import.meta.url));
// ~300 tokens of the byte-level fixture tokenizer: long enough for small budgets to bite.
const PROMPT = Array.from({ length: 60 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');

let target: OrtCausalLM;
let draftModel: OrtCausalLM;
let draft: DraftProvider;
beforeAll(async () => {
  target = await loadModel(fixture('random-target'));
  draftModel = await loadModel(fixture('random-draft'));
  draft = createDraft({ target, draft: draftModel });
}, 60_000);
afterAll(async () => {
  await draft.dispose();
  await Promise.all([target.dispose(), draftModel.dispose()]);
});

const meta = (providerMetadata: unknown) => (providerMetadata as { draft: DraftProviderMetadata }).draft;

describe('@draft/ai-sdk with generateText / streamText', () => {
  it("full: generateText gives the target's own greedy tokens for the chat-templated prompt", async () => {
    const result = await generateText({ model: draft('full'), prompt: PROMPT, maxOutputTokens: 8 });
    // The reference: the runtime's own chat path (template + greedy decode), not through the provider.
    const reference = await target.generate({ messages: [{ role: 'user', content: PROMPT }] }, { maxNewTokens: 8 });
    expect(result.text).toBe(reference.text);
    expect(result.usage.inputTokens).toBe(reference.usage.promptTokens);
    expect(result.usage.outputTokens).toBe(8);
    expect(result.finishReason).toBe('length');
    expect(meta(result.providerMetadata)).toMatchObject({ method: 'full', compressedPromptTokens: reference.usage.promptTokens });
  });

  it('specpc via providerOptions.draft: the target sees `budget` tokens and answers as the pipeline does', async () => {
    const result = await generateText({
      model: draft('full'),
      prompt: PROMPT,
      maxOutputTokens: 6,
      providerOptions: { draft: { method: 'specpc', budget: 100, windowSize: 8 } },
    });
    const m = meta(result.providerMetadata);
    expect(m).toMatchObject({ method: 'specpc', budget: 100, compressedPromptTokens: 100 });
    expect(m.promptTokens).toBeGreaterThan(250);
    expect(m.draftTokens).toBeGreaterThan(0);
    registerSpecPC({ override: true });
    const rendered = target.tokenizer.applyChatTemplate?.([{ role: 'user', content: PROMPT }], { addGenerationPrompt: true }) as string;
    const pipeline = createPipeline({ target, draft: draftModel, compressor: { type: 'specpc', windowSize: 8 }, promptBudget: { tokens: 100 } });
    expect(result.text).toBe((await pipeline.generate(rendered, { maxNewTokens: 6 })).text);
  });

  it('streamText (speckv, KV budget 48) streams exactly the text generateText returns; usage and metadata arrive', async () => {
    const settings = { model: draft('speckv'), prompt: PROMPT, maxOutputTokens: 8, providerOptions: { draft: { budget: 48, windowSize: 8 } } };
    const whole = await generateText(settings);
    const streamed = streamText(settings);
    const pieces: string[] = [];
    for await (const piece of streamed.textStream) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(whole.text);
    expect(await streamed.finishReason).toBe(whole.finishReason);
    expect((await streamed.usage).outputTokens).toBe(whole.usage.outputTokens);
    expect(meta(await streamed.providerMetadata)).toMatchObject({ method: 'speckv', meanKeptKvTokens: 48 });
  });

  it('unsupported call settings are AI SDK warnings; bad provider options and methods are typed errors', async () => {
    const result = await generateText({ model: draft(), prompt: 'hello', maxOutputTokens: 2, presencePenalty: 0.5 });
    expect(result.warnings).toContainEqual({ type: 'unsupported', feature: 'presencePenalty' });
    for (const draftOptions of [{ budget: -1 }, { method: 'nope' }, { budgte: 3 }]) {
      const error = await generateText({ model: draft(), prompt: 'hello', maxOutputTokens: 2, maxRetries: 0, providerOptions: { draft: draftOptions } }).catch((e: unknown) => e);
      expect(DraftError.isInstance(error), JSON.stringify(draftOptions)).toBe(true);
      expect(['INVALID_ARGUMENT', 'UNKNOWN_METHOD']).toContain((error as DraftError).code);
    }
  });

  it('an aborted call rejects, and a cancelled stream stops generating', async () => {
    const controller = new AbortController();
    controller.abort(new Error('user'));
    await expect(generateText({ model: draft(), prompt: PROMPT, maxOutputTokens: 4, abortSignal: controller.signal })).rejects.toBeDefined();
    const streamed = streamText({ model: draft(), prompt: PROMPT, maxOutputTokens: 200 });
    let count = 0;
    for await (const _ of streamed.textStream) if (++count === 2) break;
    expect(count).toBe(2);
  });
});

describe('@draft/ai-sdk in front of an OpenAI-compatible endpoint', () => {
  it('compresses locally with the draft and sends the compressed prompt; KV methods are refused', async () => {
    const stub = await startOpenAIStub({ reply: () => 'remote says hi' });
    const remote = createDraft({ target: { baseUrl: stub.baseUrl, model: 'big' }, draft: draftModel });
    try {
      const result = await generateText({ model: remote('specpc'), prompt: PROMPT, maxOutputTokens: 5, providerOptions: { draft: { budget: 64, windowSize: 8 } } });
      expect(result.text).toBe('remote says hi');
      expect(meta(result.providerMetadata)).toMatchObject({ method: 'specpc', compressedPromptTokens: 64 });
      const [request] = stub.completions();
      expect(request.body).toMatchObject({ model: 'big', max_tokens: 5 });
      expect((request.prompt as string).length).toBeLessThan(PROMPT.length / 3);

      const streamed = streamText({ model: remote('full'), prompt: 'hello there', maxOutputTokens: 5 });
      expect(await streamed.text).toBe('remote says hi');
      expect(stub.completions()[1].prompt).toBe('hello there');

      const error = await generateText({ model: remote('speckv'), prompt: PROMPT, maxOutputTokens: 5, maxRetries: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect(stub.completions()).toHaveLength(2);
    } finally {
      await remote.dispose();
      await stub.close();
    }
  });
});

describe('@draft/ai-sdk on the bundled trained pair (models/target, models/draft)', () => {
  it('SpecPC at 128 of 1024 prompt tokens still finds the needle the full prompt finds; folders load once and are disposed', async () => {
    const pair = createDraft({ target: bundled('target'), draft: bundled('draft') });
    const tokenizerModel = await loadModel(bundled('draft'));
    try {
      const format = readTaskFormat(bundled('target'));
      expect(format).toBeDefined();
      // The pair shares its tokenizer: the draft's measures the same lengths as the target's.
      const sample = generateSample({ task: 'niah_multikey_1', length: 1024, seed: 1, index: 0, tokenizer: tokenizerModel.tokenizer, format });
      const call = { prompt: sample.input, maxOutputTokens: sample.maxNewTokens, stopSequences: sample.stopStrings };
      const full = await generateText({ model: pair('full'), ...call });
      const specpc = await generateText({
        model: pair('specpc'),
        ...call,
        providerOptions: { draft: { budget: 128, windowSize: 8, options: { kernelSize: 8, neighbourTokens: 8 } } },
      });
      expect(full.text.trim()).toBe(sample.answers[0]);
      expect(specpc.text.trim()).toBe(sample.answers[0]);
      expect(meta(specpc.providerMetadata)).toMatchObject({ promptTokens: 1024, compressedPromptTokens: 128 });
    } finally {
      await tokenizerModel.dispose();
      await pair.dispose();
    }
    // disposed: the next call loads the folders again rather than using disposed sessions
    expect(await generateText({ model: pair('full'), prompt: 'k1', maxOutputTokens: 1 }).then((r) => r.usage.outputTokens)).toBe(1);
    await pair.dispose();
  });
});
