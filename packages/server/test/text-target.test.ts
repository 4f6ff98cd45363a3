import { planMethod } from '@draft/methods';
import { AbortError, createPipeline, RemoteError, UnsupportedCapabilityError } from '@draft/core';
import { FakeTextTarget } from '@draft/core/testing';
import { loadModel, OpenAITextTarget, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDraftServer, type DraftServer } from '../src/index.js';
import { LONG_PROMPT, MODELS, post, until } from './helpers.js';

// The draft compresses locally, the server runs the target: the scale-out set-up of DESIGN.md.
let target: OrtCausalLM;
let draft: OrtCausalLM;
let server: DraftServer;
let base: string;
const sent: Record<string, unknown>[] = [];
const recordingFetch: typeof fetch = (url, init) => {
  sent.push(JSON.parse(String(init?.body)));
  return fetch(url, init);
};

beforeAll(async () => {
  target = await loadModel(`${MODELS}fixtures/random-target`, { threads: 1 });
  draft = await loadModel(`${MODELS}fixtures/random-draft`, { threads: 1 });
  server = createDraftServer({ target, disposeModels: false }); // the server needs no draft here
  base = (await server.listen({ port: 0 })).url;
});

afterAll(async () => {
  await server?.close();
  await Promise.all([target?.dispose(), draft?.dispose()]);
});

const remote = (endpoint: 'chat' | 'completions', extra: Partial<ConstructorParameters<typeof OpenAITextTarget>[0]> = {}) =>
  new OpenAITextTarget({ baseUrl: `${base}/v1`, model: 'random-target', endpoint, fetch: recordingFetch, initialRetryDelayMs: 1, ...extra });

describe('OpenAITextTarget ↔ the example server', () => {
  it('SpecPC in front of the remote target: the server receives the compressed prompt and answers it', async () => {
    const stages = planMethod('specpc', { budget: 48, windowSize: 8 }).stages;
    // What SpecPC sends for this prompt, observed through a fake text target.
    const fake = new FakeTextTarget();
    await createPipeline({ target: fake, draft, ...stages }).generate(LONG_PROMPT, { maxNewTokens: 4 });
    const compressed = fake.requests[0].prompt;
    expect(compressed.length).toBeLessThan(LONG_PROMPT.length / 3);

    sent.length = 0;
    const pipeline = createPipeline({ target: remote('completions'), draft, ...stages });
    const result = await pipeline.generate(LONG_PROMPT, { maxNewTokens: 4 });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ model: 'random-target', prompt: compressed, max_tokens: 4, stream: false });
    expect(result.usage.compressedPromptTokens).toBe(48); // min(budget, n) in draft tokens
    expect(result.usage.promptTokens).toBeGreaterThan(48);
    expect(result.usage.draftTokens).toBeGreaterThan(0);
    expect(result.usage.completionTokens).toBe(4); // the server's usage
    const direct = await target.generate(compressed, { maxNewTokens: 4 });
    expect(result.text).toBe(direct.text);
  });

  it('streams through the pipeline over the chat endpoint: pieces concatenate to the non-streamed reply', async () => {
    const stages = planMethod('specpc', { budget: 48, windowSize: 8 }).stages;
    const pipeline = createPipeline({ target: remote('chat'), draft, ...stages });
    const whole = await pipeline.generate(LONG_PROMPT, { maxNewTokens: 10 });
    const stream = pipeline.stream(LONG_PROMPT, { maxNewTokens: 10 });
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(whole.text);
    expect((await stream.result).text).toBe(whole.text);
  });

  it('a KV method on the text target is refused at construction with UnsupportedCapabilityError', () => {
    for (const method of ['speckv', 'snapkv', 'speckv-pc']) {
      const { stages } = planMethod(method, { budget: 48 });
      let error: unknown;
      try {
        createPipeline({ target: remote('chat'), draft, ...stages });
      } catch (e) {
        error = e;
      }
      expect(error, method).toBeInstanceOf(UnsupportedCapabilityError);
      expect((error as UnsupportedCapabilityError).message).toContain("target 'openai:random-target'");
    }
  });

  it("the server's typed 4xx reaches the client as RemoteError(status, message) without retries", async () => {
    sent.length = 0;
    const bad = remote('completions', { extraBody: { draft: { method: 'magic' } }, maxRetries: 3 });
    const error = await bad.complete({ prompt: 'hi', maxNewTokens: 2 }).catch((e) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.status).toBe(400);
    expect(error.message).toContain("Unknown method 'magic'");
    expect(error.details).toMatchObject({ code: 'unknown_method', type: 'invalid_request_error' });
    expect(sent).toHaveLength(1);
    const wrongModel = new OpenAITextTarget({ baseUrl: `${base}/v1`, model: 'gpt-4o' });
    expect(await wrongModel.complete({ prompt: 'hi', maxNewTokens: 2 }).catch((e) => e.status)).toBe(404);
    // the draft field also works from the client: the server compresses with its own… missing draft → 400
    const needsDraft = remote('completions', { extraBody: { draft: { method: 'specpc', budget: 16 } } });
    expect(await needsDraft.complete({ prompt: LONG_PROMPT, maxNewTokens: 2 }).catch((e) => e.details.code)).toBe('draft_required');
  });

  it('aborting a remote stream aborts the generation on the server', async () => {
    const served = server.stats.served;
    const controller = new AbortController();
    const stream = remote('completions').stream({ prompt: LONG_PROMPT, maxNewTokens: 2000, signal: controller.signal });
    const error = await (async () => {
      for await (const _ of stream) controller.abort();
    })().catch((e) => e);
    expect(error).toBeInstanceOf(AbortError);
    await until(() => server.stats.active === 0, 'the server slot to be freed');
    expect(server.stats.served).toBe(served);
    expect((await post(base, '/v1/completions', { prompt: 'ok?', max_tokens: 1 })).status).toBe(200);
  });
});
