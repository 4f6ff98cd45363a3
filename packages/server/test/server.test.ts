import { createPipeline } from '@draft/core';
import { planMethod } from '@draft/methods';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDraftServer, type DraftServer } from '../src/index.js';
import { get, JSON_HEADERS, type Json, LONG_PROMPT, MODELS, post, sse, until } from './helpers.js';

let target: OrtCausalLM;
let draft: OrtCausalLM;
let server: DraftServer;
let base: string;

beforeAll(async () => {
  target = await loadModel(`${MODELS}fixtures/random-target`, { threads: 1 });
  draft = await loadModel(`${MODELS}fixtures/random-draft`, { threads: 1 });
  server = createDraftServer({ target, draft, disposeModels: false, maxQueue: 4 });
  base = (await server.listen({ port: 0 })).url;
});

afterAll(async () => {
  await server?.close();
  await Promise.all([target?.dispose(), draft?.dispose()]);
});

const chatPrompt = (content: string) => target.tokenizer.applyChatTemplate?.([{ role: 'user', content }], { addGenerationPrompt: true }) ?? '';

describe('routes', () => {
  it('GET /health, GET /v1/models and /v1/models/:id; 404 for unknown routes and models, 405 for wrong verbs', async () => {
    expect((await get(base, '/health')).json).toMatchObject({ status: 'ok', model: 'random-target', draft: 'random-draft', active: 0, queued: 0 });
    const models = await get(base, '/v1/models');
    expect(models.json).toMatchObject({ object: 'list', data: [{ id: 'random-target', object: 'model', owned_by: 'draft' }] });
    expect((await get(base, '/v1/models/random-target')).json.id).toBe('random-target');
    const missing = await get(base, '/v1/models/gpt-4');
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    expect((await get(base, '/nope')).status).toBe(404);
    expect((await get(base, '/v1/chat/completions')).status).toBe(405);
  });
});

describe('completions over the real bundled models', () => {
  it('chat (non-streaming): the reply is exactly what the target generates from the chat-templated prompt', async () => {
    const { status, json } = await post(base, '/v1/chat/completions', { model: 'random-target', messages: [{ role: 'user', content: 'Where is the key?' }], max_tokens: 6 });
    expect(status).toBe(200);
    const expected = await target.generate(chatPrompt('Where is the key?'), { maxNewTokens: 6 });
    expect(json).toMatchObject({ object: 'chat.completion', model: 'random-target', choices: [{ index: 0, message: { role: 'assistant', content: expected.text }, finish_reason: 'length' }] });
    expect(json.id).toMatch(/^chatcmpl-/);
    expect(json.usage).toMatchObject({ prompt_tokens: expected.usage.promptTokens, completion_tokens: 6, total_tokens: expected.usage.promptTokens + 6 });
    expect(json.usage.draft).toMatchObject({ method: 'full', budget: null, compressedPromptTokens: expected.usage.promptTokens, draftTokens: 0 });
    expect(json.usage.draft.keptKvTokens).toMatchObject({ min: expected.usage.promptTokens, max: expected.usage.promptTokens, layers: 4, kvHeads: 2 });
  });

  it('completions (non-streaming) equals target.generate on the prompt; stop strings and seeds pass through', async () => {
    const { status, json } = await post(base, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 8 });
    expect(status).toBe(200);
    const expected = await target.generate('Once upon a time', { maxNewTokens: 8 });
    expect(json).toMatchObject({ object: 'text_completion', choices: [{ text: expected.text, finish_reason: 'length' }] });
    const sampled = { prompt: 'Once upon a time', max_tokens: 8, temperature: 0.9, seed: 7 };
    expect((await post(base, '/v1/completions', sampled)).json.choices[0].text).toBe((await post(base, '/v1/completions', sampled)).json.choices[0].text);
    const stop = expected.text.slice(2, 4);
    if (stop.trim().length > 0) {
      const cut = await post(base, '/v1/completions', { prompt: 'Once upon a time', max_tokens: 8, stop });
      expect(cut.json.choices[0]).toMatchObject({ text: expected.text.slice(0, expected.text.indexOf(stop)), finish_reason: 'stop' });
    }
  });

  it('streaming chat: OpenAI chunk shapes, deltas concatenate to the non-streamed reply, usage on the final chunk, then [DONE]', async () => {
    const body = { messages: [{ role: 'user', content: 'Where is the key?' }], max_tokens: 12 };
    const whole = (await post(base, '/v1/chat/completions', body)).json.choices[0].message.content;
    const response = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await sse(response);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1) as Json[];
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'random-target')).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(whole);
    const final = chunks.at(-2);
    expect(final.choices[0]).toMatchObject({ delta: {}, finish_reason: 'length' });
    expect(final.usage.completion_tokens).toBe(12);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 12 } }); // include_usage
  });

  it('streaming completions: text chunks concatenate to the non-streamed text', async () => {
    const body = { prompt: 'The tide', max_tokens: 10 };
    const whole = (await post(base, '/v1/completions', body)).json.choices[0].text;
    const events = await sse(await fetch(`${base}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ ...body, stream: true }) }));
    const chunks = events.slice(0, -1) as Json[];
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.map((c) => c.choices[0].text).join('')).toBe(whole);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
  });

  it('the draft field picks the method per request: specpc sends min(budget, n) tokens, speckv / snapkv keep C entries per head', async () => {
    const ask = (draftField: unknown) => post(base, '/v1/completions', { prompt: LONG_PROMPT, max_tokens: 4, draft: draftField });
    const full = await ask(undefined);
    const n = full.json.usage.prompt_tokens;
    expect(n).toBeGreaterThan(200);
    const pc = await ask({ method: 'specpc', budget: 64, window: 8 });
    expect(pc.status).toBe(200);
    expect(pc.json.usage.draft).toMatchObject({ method: 'specpc', budget: 64, window: 8, promptTokens: n, compressedPromptTokens: 64 });
    expect(pc.json.usage.draft.draftTokens).toBeGreaterThan(0);
    // the same as running the CLI's plan in process
    const direct = await createPipeline({ target, draft, ...planMethod('specpc', { budget: 64, windowSize: 8 }).stages }).generate(LONG_PROMPT, { maxNewTokens: 4 });
    expect(pc.json.choices[0].text).toBe(direct.text);
    const roomy = await ask({ method: 'specpc', budget: n + 50 });
    expect(roomy.json.usage.draft.compressedPromptTokens).toBe(n);
    const speckv = await ask({ method: 'speckv', budget: 48, window: 8 });
    expect(speckv.json.usage.draft.keptKvTokens).toMatchObject({ min: 48, max: 48, mean: 48 });
    expect(speckv.json.usage.draft.draftTokens).toBeGreaterThan(0); // the draft's lookahead
    const kv = await ask({ method: 'snapkv', budget: 48, window: 8 });
    expect(kv.json.usage.draft).toMatchObject({ method: 'snapkv', compressedPromptTokens: n, draftTokens: 0 });
    expect(kv.json.usage.draft.keptKvTokens).toMatchObject({ min: 48, max: 48, mean: 48, layers: 4, kvHeads: 2 });
  });
});

describe('bad input gets a JSON error with the right 4xx status, and the server keeps serving', () => {
  const ok = { prompt: 'hi', max_tokens: 2 };
  const cases: [string, string | Record<string, unknown>, number, Record<string, unknown>][] = [
    ['malformed JSON', '{"prompt": "hi",', 400, { code: 'invalid_json', type: 'invalid_request_error' }],
    ['a non-object body', '[1,2]', 400, { code: 'invalid_body' }],
    ['an unknown model', { ...ok, model: 'gpt-4o' }, 404, { code: 'model_not_found', param: 'model' }],
    ['an unknown method', { ...ok, draft: { method: 'magic' } }, 400, { code: 'unknown_method', param: 'draft.method' }],
    ['budget 0', { ...ok, draft: { method: 'specpc', budget: 0 } }, 400, { param: 'draft.budget' }],
    ['a budget beyond max positions', { ...ok, draft: { method: 'snapkv', budget: 10_000_000 } }, 400, { param: 'draft.budget' }],
    ['a fractional budget', { ...ok, draft: { method: 'snapkv', budget: 2.5 } }, 400, { param: 'draft.budget' }],
    ['window > budget', { ...ok, draft: { method: 'snapkv', budget: 4, window: 8 } }, 400, { param: 'draft.window' }],
    ['an unknown draft field', { ...ok, draft: { method: 'full', bugdet: 4 } }, 400, { param: 'draft.bugdet' }],
    ['max_tokens 0', { ...ok, max_tokens: 0 }, 400, { param: 'max_tokens' }],
    ['temperature 5', { ...ok, temperature: 5 }, 400, { param: 'temperature' }],
    ['n = 2', { ...ok, n: 2 }, 400, { param: 'n' }],
    ['a missing prompt', { max_tokens: 2 }, 400, { param: 'prompt' }],
  ];
  for (const [what, body, status, error] of cases) {
    it(`${what} → ${status}`, async () => {
      const res = await post(base, '/v1/completions', body);
      expect(res.status).toBe(status);
      expect(res.json.error).toMatchObject(error);
      expect(typeof res.json.error.message).toBe('string');
    });
  }

  it('an unknown method lists the known ones; chat without messages is 400; AdaKV on a target loaded without a ragged cache is a typed 400', async () => {
    const unknown = await post(base, '/v1/completions', { prompt: 'hi', draft: { method: 'magic' } });
    expect(unknown.json.error.message).toContain("Unknown method 'magic'");
    for (const m of ['speckv', 'specpc', 'snapkv', 'full']) expect(unknown.json.error.message).toContain(m);
    expect((await post(base, '/v1/chat/completions', { messages: [] })).json.error.param).toBe('messages');
    const ada = await post(base, '/v1/completions', { prompt: LONG_PROMPT, max_tokens: 2, draft: { method: 'adakv', budget: 48 } });
    expect(ada.status).toBe(400);
    expect(ada.json.error).toMatchObject({ code: 'unsupported_capability' });
    expect(ada.json.error.message).toContain('raggedKvHeads');
  });

  it('a stream whose method fails before its first piece still gets a 4xx JSON answer, not a 200 stream', async () => {
    // SpecPC's default window (64) exceeds this 3-token prompt once the budget forces compression.
    const res = await post(base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi there' }], stream: true, draft: { method: 'specpc', budget: 2 } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json.error).toMatchObject({ code: 'invalid_value', type: 'invalid_request_error' });
  });

  it('a body over 1 MiB is 413', async () => {
    const res = await post(base, '/v1/completions', { prompt: 'x'.repeat(1.5 * 1024 * 1024), max_tokens: 1 });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('request_too_large');
  });

  it('after every error above the server still answers', async () => {
    const res = await post(base, '/v1/completions', ok);
    expect(res.status).toBe(200);
    expect((await get(base, '/health')).json).toMatchObject({ active: 0, queued: 0 });
  });
});

describe('concurrency, disconnects, shutdown, leaks', () => {
  it('a full queue answers 429; queued requests run in order once the slot frees', async () => {
    const small = createDraftServer({ target, draft, disposeModels: false, maxConcurrent: 1, maxQueue: 1 });
    const url = (await small.listen({ port: 0 })).url;
    try {
      const first = post(url, '/v1/completions', { prompt: LONG_PROMPT, max_tokens: 300 });
      await until(() => small.stats.active === 1, 'the first request to run');
      const second = post(url, '/v1/completions', { prompt: 'second', max_tokens: 2 });
      await until(() => small.stats.queued === 1, 'the second request to queue');
      const third = await post(url, '/v1/completions', { prompt: 'third', max_tokens: 2 });
      expect(third.status).toBe(429);
      expect(third.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
      expect(third.headers.get('retry-after')).toBe('1');
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(a.json.usage.completion_tokens).toBe(300);
      expect(small.stats).toMatchObject({ active: 0, queued: 0, served: 2 });
    } finally {
      await small.close();
    }
  });

  it('a client that disconnects mid-stream aborts its generation and frees the slot', async () => {
    const before = server.stats.served;
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ prompt: LONG_PROMPT, max_tokens: 2000, stream: true }),
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // generation is under way
    expect(server.stats.active).toBe(1);
    controller.abort();
    await until(() => server.stats.active === 0, 'the slot to be freed');
    expect(server.stats.served).toBe(before); // aborted, not completed
    const next = await post(base, '/v1/completions', { prompt: 'still there?', max_tokens: 2 });
    expect(next.status).toBe(200);
  });

  it('a queued client that disconnects leaves the queue', async () => {
    const small = createDraftServer({ target, draft, disposeModels: false, maxConcurrent: 1, maxQueue: 2 });
    const url = (await small.listen({ port: 0 })).url;
    try {
      const first = post(url, '/v1/completions', { prompt: LONG_PROMPT, max_tokens: 200 });
      await until(() => small.stats.active === 1, 'the first request to run');
      const controller = new AbortController();
      const queued = post(url, '/v1/completions', { prompt: 'q', max_tokens: 2 }, { signal: controller.signal }).catch((e) => e);
      await until(() => small.stats.queued === 1, 'the second request to queue');
      controller.abort();
      await until(() => small.stats.queued === 0, 'the queue to empty');
      expect((await queued).name).toBe('AbortError');
      expect((await first).status).toBe(200);
      expect(small.stats.served).toBe(1);
    } finally {
      await small.close();
    }
  });

  it('close() (what SIGTERM runs) stops accepting, finishes in-flight requests, then disposes the models', async () => {
    const t = await loadModel(`${MODELS}fixtures/random-target`, { threads: 1 });
    const own = createDraftServer({ target: t });
    const url = (await own.listen({ port: 0 })).url;
    const inflight = post(url, '/v1/completions', { prompt: LONG_PROMPT, max_tokens: 200 });
    await until(() => own.stats.active === 1, 'the request to run');
    const closing = own.close();
    const late = await fetch(`${url}/health`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(late);
    const done = await inflight;
    expect(done.status).toBe(200);
    expect(done.json.usage.completion_tokens).toBe(200);
    await closing;
    expect(own.http.listening).toBe(false);
    await expect(t.generate('x', { maxNewTokens: 1 })).rejects.toMatchObject({ code: 'DISPOSED' });
  });

  it('200 small requests: RSS stays flat after warm-up and no slot stays taken', async () => {
    const request = (i: number) => {
      const method = ['full', 'specpc', 'streamingllm', 'snapkv'][i % 4];
      const body = { prompt: `${LONG_PROMPT.slice(0, 400)} #${i}`, max_tokens: 2, stream: i % 2 === 0, draft: { method, budget: 48, window: 8 } };
      return fetch(`${base}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) }).then(async (r) => {
        expect(r.status).toBe(200);
        await r.text();
      });
    };
    // RSS climbs for the first ~100-300 requests (allocator arenas, JIT) and then stays flat; the slack covers
    // that climb, while a leaked KV cache or response per request would add up well past it.
    for (let i = 0; i < 60; i++) await request(i);
    const warm = process.memoryUsage().rss;
    for (let i = 60; i < 200; i++) await request(i);
    const after = process.memoryUsage().rss;
    const growthMiB = (after - warm) / 2 ** 20;
    console.log(`RSS after warm-up ${(warm / 2 ** 20).toFixed(1)} MiB, after 140 more requests ${(after / 2 ** 20).toFixed(1)} MiB`);
    expect(growthMiB).toBeLessThan(64);
    expect(server.stats).toMatchObject({ active: 0, queued: 0 });
  });
});

describe('concurrent requests', () => {
  it('decode together in one batch and answer exactly what each answers alone', async () => {
    const bodies = [
      { prompt: 'Where is the key?', max_tokens: 12 },
      { prompt: 'Once upon a time', max_tokens: 12 },
      { prompt: LONG_PROMPT, max_tokens: 12, draft: { method: 'streamingllm', budget: 64 } },
      { prompt: 'The lighthouse keeper wrote the tides', max_tokens: 12 },
    ];
    const alone: string[] = [];
    for (const body of bodies) {
      const r = await post(base, '/v1/completions', body);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      alone.push(r.json.choices[0].text);
    }
    const before = await target.decodeBatchStats();
    const together = await Promise.all(bodies.map((body) => post(base, '/v1/completions', body)));
    const after = await target.decodeBatchStats();
    expect(together.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(together.map((r) => r.json.choices[0].text)).toEqual(alone);
    expect(after.batches).toBeGreaterThan(before.batches);
  });
});
