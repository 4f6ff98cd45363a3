import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbortError, createPipeline, defineCachePolicy, RemoteError, UnsupportedCapabilityError } from '@draft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenAITextTarget, SseParser } from '../src/index.js';

interface Hit {
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, hit: Hit, n: number) => void;

const servers: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A tiny node:http server; `handler` sees the parsed JSON body and the attempt number (0-based). */
async function fake(handler: Handler): Promise<{ baseUrl: string; hits: Hit[]; closed: Promise<void>[] }> {
  const hits: Hit[] = [];
  const closed: Promise<void>[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const hit = { url: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : {} };
    hits.push(hit);
    closed.push(new Promise((resolve) => res.on('close', () => resolve())));
    handler(req, res, hit, hits.length - 1);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  servers.push({
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return { baseUrl: `http://127.0.0.1:${port}/v1`, hits, closed };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Asks the client to retry after 5 ms (its `retry-after-ms` header) instead of its default 0.5 s backoff. */
const soon = { 'retry-after-ms': '5' };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const piece of iterable) out.push(piece);
  return out;
}

describe('SseParser', () => {
  const stream = 'data: {"a":1}\r\n\r\n: comment\nevent: ping\ndata: x\n\ndata: line one\ndata: line two\r\rdata: [DONE]\n\n';
  const expected = [
    { event: 'message', data: '{"a":1}' },
    { event: 'ping', data: 'x' },
    { event: 'message', data: 'line one\nline two' },
    { event: 'message', data: '[DONE]' },
  ];

  it('gives the same events for every split of the input into two pieces (CRLF split included)', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(stream.slice(0, cut)), ...p.push(stream.slice(cut)), ...p.end()];
      expect(events, `cut at ${cut}`).toEqual(expected);
    }
  });

  it('gives the same events fed one character at a time; end() dispatches an unterminated event', () => {
    const p = new SseParser();
    const events = [...stream].flatMap((ch) => p.push(ch));
    expect(events).toEqual(expected);
    const q = new SseParser();
    expect([...q.push('data: tail'), ...q.end()]).toEqual([{ event: 'message', data: 'tail' }]);
  });
});

describe('OpenAITextTarget', () => {
  it('offers no capabilities; a KV cache policy in front of it is refused with UnsupportedCapabilityError', () => {
    const target = new OpenAITextTarget({ baseUrl: 'http://127.0.0.1:1/v1', model: 'm' });
    expect(Object.values(target.capabilities).every((v) => v === false)).toBe(true);
    const policy = defineCachePolicy({ type: 'keep-first', queryWindow: 8, select: () => [] });
    const error = (() => {
      try {
        createPipeline({ target, cachePolicy: policy });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnsupportedCapabilityError);
    expect((error as UnsupportedCapabilityError).capability).toBe('tokenIds');
    expect((error as Error).message).toContain("target 'openai:m'");
  });

  it('chat: sends model, one user message, max_tokens, sampling, stop, the API key and extra body; reads text, finish reason and usage', async () => {
    const server = await fake((_req, res) =>
      json(res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: 'Paris' }, finish_reason: 'length' }], usage: { prompt_tokens: 7, completion_tokens: 2 } }),
    );
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', apiKey: 'sk-test', systemPrompt: 'Be brief.', extraBody: { top_k: 5 } });
    const result = await target.complete({ prompt: 'Capital of France?', maxNewTokens: 2, temperature: 0.5, topP: 0.9, seed: 3, stop: ['\n'] });
    expect(result).toEqual({ text: 'Paris', finishReason: 'length', usage: { promptTokens: 7, completionTokens: 2 } });
    const [hit] = server.hits;
    expect(hit.url).toBe('/v1/chat/completions');
    expect(hit.headers.authorization).toBe('Bearer sk-test');
    expect(hit.body).toEqual({
      top_k: 5,
      model: 'tiny',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Capital of France?' },
      ],
      max_tokens: 2,
      temperature: 0.5,
      top_p: 0.9,
      seed: 3,
      stop: ['\n'],
      stream: false,
    });
  });

  it('completions: POST /v1/completions with `prompt`, reads choices[0].text', async () => {
    const server = await fake((_req, res) => json(res, 200, { choices: [{ text: ' world', finish_reason: 'stop' }] }));
    const target = new OpenAITextTarget({ baseUrl: `${server.baseUrl}/`, model: 'tiny', endpoint: 'completions' });
    const result = await target.complete({ prompt: 'hello', maxNewTokens: 4 });
    expect(result.text).toBe(' world');
    expect(result.finishReason).toBe('stop');
    expect(server.hits[0].url).toBe('/v1/completions');
    expect(server.hits[0].body).toMatchObject({ prompt: 'hello', max_tokens: 4, stream: false });
    expect(server.hits[0].headers.authorization).toBeUndefined();
  });

  it('stream: parses SSE split at awkward byte boundaries (inside JSON, inside a UTF-8 character, between CR and LF)', async () => {
    const pieces = ['Hé', 'llo ', '🌍', '!'];
    const body =
      pieces.map((p) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })}\r\n\r\n`).join('') +
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`;
    const bytes = Buffer.from(body, 'utf8');
    const server = await fake(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // 7-byte writes with a pause: splits everywhere, including inside 'é' (2 bytes) and '🌍' (4 bytes).
      for (let i = 0; i < bytes.length; i += 7) {
        res.write(bytes.subarray(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      res.end();
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny' });
    expect(await collect(target.stream({ prompt: 'hi', maxNewTokens: 8 }))).toEqual(pieces);
    expect(server.hits[0].body.stream).toBe(true);
  });

  it("a stream ends by returning the remote's finish_reason and usage", async () => {
    const server = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        'data: {"choices":[{"text":"a"}]}\n\ndata: {"choices":[{"text":"b","finish_reason":"length"}]}\n\n' +
          'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\ndata: [DONE]\n\n',
      );
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', endpoint: 'completions' });
    const iterator = target.stream({ prompt: 'x', maxNewTokens: 2 })[Symbol.asyncIterator]();
    const pieces: string[] = [];
    for (;;) {
      const step = await iterator.next();
      if (step.done) {
        expect(step.value).toEqual({ finishReason: 'length', usage: { promptTokens: 7, completionTokens: 2 } });
        break;
      }
      pieces.push(step.value);
    }
    expect(pieces).toEqual(['a', 'b']);
  });

  it('stream on /completions reads choices[0].text; an error event becomes a RemoteError', async () => {
    const server = await fake((_req, res, _hit, n) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 0) res.end('data: {"choices":[{"text":"a"}]}\n\ndata: {"choices":[{"text":"b","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
      else res.end('data: {"choices":[{"text":"a"}]}\n\ndata: {"error":{"message":"model crashed","type":"server_error"}}\n\n');
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', endpoint: 'completions' });
    expect(await collect(target.stream({ prompt: 'x', maxNewTokens: 2 }))).toEqual(['a', 'b']);
    const error = await rejection(collect(target.stream({ prompt: 'x', maxNewTokens: 2 })));
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).message).toContain('model crashed');
  });

  it('retries 503 twice with backoff, then succeeds', async () => {
    const server = await fake((_req, res, _hit, n) => {
      if (n < 2) json(res, 503, { error: { message: 'overloaded', type: 'server_error' } }, soon);
      else json(res, 200, { choices: [{ message: { content: 'ok' }, finish_reason: 'stop' }] });
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 2 });
    expect((await target.complete({ prompt: 'p', maxNewTokens: 1 })).text).toBe('ok');
    expect(server.hits).toHaveLength(3);
  });

  it('gives up after maxRetries on 500 with RemoteError(status, server message, attempts); 429 with Retry-After is retried', async () => {
    const server = await fake((_req, res, hit) => {
      if (hit.body.model === 'busy') json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
      else json(res, 500, { error: { message: 'boom', type: 'server_error', code: 'internal' } }, soon);
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 1 });
    const error = (await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.code).toBe('REMOTE');
    expect(error.status).toBe(500);
    expect(error.message).toBe('openai:tiny: HTTP 500: boom');
    expect(error.details).toMatchObject({ status: 500, serverMessage: 'boom', type: 'server_error', code: 'internal', attempts: 2 });
    expect(server.hits).toHaveLength(2);
    const busy = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'busy', maxRetries: 3 });
    expect(((await rejection(busy.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError).status).toBe(429);
    expect(server.hits).toHaveLength(2 + 4);
  });

  it('does not retry 400; the server message and status reach the caller', async () => {
    const server = await fake((_req, res) => json(res, 400, { error: { message: "Unknown method 'nope'", type: 'invalid_request_error', param: 'draft.method', code: 'unknown_method' } }));
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 3 });
    const error = (await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError;
    expect(error.status).toBe(400);
    expect(error.message).toContain("Unknown method 'nope'");
    expect(error.details).toMatchObject({ code: 'unknown_method', attempts: 1 });
    expect(server.hits).toHaveLength(1);
    // streams are refused the same way before they start
    expect(((await rejection(collect(target.stream({ prompt: 'p', maxNewTokens: 1 })))) as RemoteError).status).toBe(400);
    expect(server.hits).toHaveLength(2);
  });

  it('a timeout fires per attempt and is retried; the error says it timed out', async () => {
    const server = await fake(() => {
      // never answers
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', timeoutMs: 50, maxRetries: 1 });
    const error = (await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toContain('timed out after 50 ms');
    expect(error.status).toBeUndefined();
    expect(server.hits).toHaveLength(2);
    await Promise.all(server.closed); // both requests' connections were dropped by the client
  });

  it('network errors are retried, then reported', async () => {
    const server = await fake((_req, res) => res.destroy());
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 2 });
    const error = (await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toContain('request failed');
    expect(error.details).toMatchObject({ attempts: 3 });
    expect(server.hits).toHaveLength(3);
  });

  it('never retries once a stream has started: a dropped stream is one RemoteError', async () => {
    const server = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"par"}}]}\n\n');
      setTimeout(() => res.destroy(), 20);
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 3 });
    const got: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const p of target.stream({ prompt: 'p', maxNewTokens: 4 })) got.push(p);
      })(),
    );
    expect(got).toEqual(['par']);
    expect(error).toBeInstanceOf(RemoteError);
    expect(server.hits).toHaveLength(1);
  });

  it('AbortSignal: aborts a pending request, a backoff wait, and a running stream (the connection is closed)', async () => {
    const server = await fake((_req, res, hit) => {
      // Retry-After: 60 — the client would sleep a minute before its retry.
      if (hit.body.model === 'flaky') json(res, 503, { error: { message: 'later' } }, { 'retry-after': '60' });
      else if (hit.body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      }
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny' });
    const c1 = new AbortController();
    const pending = target.complete({ prompt: 'p', maxNewTokens: 1, signal: c1.signal });
    setTimeout(() => c1.abort(new Error('user')), 30);
    const e1 = await rejection(pending);
    expect(e1).toBeInstanceOf(AbortError);
    expect((e1 as AbortError).cause).toEqual(new Error('user'));

    const flaky = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'flaky', maxRetries: 5 });
    const c2 = new AbortController();
    const waiting = flaky.complete({ prompt: 'p', maxNewTokens: 1, signal: c2.signal });
    const t0 = performance.now();
    setTimeout(() => c2.abort(), 50);
    expect(await rejection(waiting)).toBeInstanceOf(AbortError);
    expect(performance.now() - t0).toBeLessThan(5_000); // not after the minute

    const c3 = new AbortController();
    const got: string[] = [];
    const e3 = await rejection(
      (async () => {
        for await (const p of target.stream({ prompt: 'p', maxNewTokens: 4, signal: c3.signal })) {
          got.push(p);
          c3.abort();
        }
      })(),
    );
    expect(got).toEqual(['a']);
    expect(e3).toBeInstanceOf(AbortError);
    await Promise.all(server.closed);
  });

  it('breaking out of a stream cancels the request', async () => {
    const server = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"first"}}]}\n\n');
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny' });
    for await (const piece of target.stream({ prompt: 'p', maxNewTokens: 4 })) {
      expect(piece).toBe('first');
      break;
    }
    await Promise.all(server.closed);
  });

  it("without a Retry-After the client's own backoff (0.5 s, jittered by at most 25%) separates attempts", async () => {
    const times: number[] = [];
    const server = await fake((_req, res) => {
      times.push(performance.now());
      json(res, 502, { error: { message: 'bad gateway' } });
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 1 });
    expect(((await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError).status).toBe(502);
    expect(times).toHaveLength(2);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(370);
  });

  it('a stream that stalls between chunks times out (idle timeout) and is not retried', async () => {
    const server = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', timeoutMs: 150, maxRetries: 2 });
    const got: string[] = [];
    const error = (await rejection(
      (async () => {
        for await (const p of target.stream({ prompt: 'p', maxNewTokens: 4 })) got.push(p);
      })(),
    )) as RemoteError;
    expect(got).toEqual(['a']);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.message).toContain('timed out after 150 ms between stream chunks');
    expect(server.hits).toHaveLength(1);
    await Promise.all(server.closed);
  });

  it("never sends the environment's OPENAI_API_KEY (nor any Authorization) when no apiKey is given", async () => {
    const server = await fake((_req, res) => json(res, 200, { choices: [{ message: { content: 'x' }, finish_reason: 'stop' }] }));
    const saved = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'sk-from-env';
    try {
      await new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny' }).complete({ prompt: 'p', maxNewTokens: 1 });
      await new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', apiKey: 'sk-given', headers: { 'x-extra': '1' } }).complete({ prompt: 'p', maxNewTokens: 1 });
    } finally {
      if (saved === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = saved;
    }
    expect(server.hits[0].headers.authorization).toBeUndefined();
    expect(server.hits[1].headers.authorization).toBe('Bearer sk-given');
    expect(server.hits[1].headers['x-extra']).toBe('1');
  });

  it("quotes servers' other error shapes: vLLM's { message }, TGI's { error: '…' }, { detail } and plain text", async () => {
    const bodies: [number, string][] = [
      [400, JSON.stringify({ object: 'error', message: 'max_tokens too large', type: 'BadRequestError', code: 400 })],
      [422, JSON.stringify({ error: 'Input validation error', error_type: 'validation' })],
      [404, JSON.stringify({ detail: 'Not Found' })],
      [403, 'forbidden by proxy'],
    ];
    const server = await fake((_req, res, _hit, n) => {
      res.writeHead(bodies[n][0], { 'content-type': 'text/plain' });
      res.end(bodies[n][1]);
    });
    const target = new OpenAITextTarget({ baseUrl: server.baseUrl, model: 'tiny', maxRetries: 0 });
    const messages: string[] = [];
    for (const _ of bodies) messages.push(((await rejection(target.complete({ prompt: 'p', maxNewTokens: 1 }))) as RemoteError).message);
    expect(messages).toEqual([
      'openai:tiny: HTTP 400: max_tokens too large',
      'openai:tiny: HTTP 422: Input validation error',
      'openai:tiny: HTTP 404: Not Found',
      'openai:tiny: HTTP 403: forbidden by proxy',
    ]);
  });

  it('listModels: GET /models gives the served ids; a failure is a RemoteError', async () => {
    const server = await fake((req, res) => {
      if (req.headers.authorization !== 'Bearer sk-list') json(res, 401, { error: { message: 'no key' } });
      else json(res, 200, { object: 'list', data: [{ id: 'qwen-7b', object: 'model' }, { id: 'draft', object: 'model' }] });
    });
    expect(await OpenAITextTarget.listModels({ baseUrl: server.baseUrl, apiKey: 'sk-list' })).toEqual(['qwen-7b', 'draft']);
    expect(server.hits[0].url).toBe('/v1/models');
    const error = (await rejection(OpenAITextTarget.listModels({ baseUrl: server.baseUrl }))) as RemoteError;
    expect(error.status).toBe(401);
    expect(error.message).toContain('no key');
  });

  it('rejects bad options with InvalidArgumentError', () => {
    expect(() => new OpenAITextTarget({ baseUrl: 'not a url', model: 'm' })).toThrow(/baseUrl/);
    expect(() => new OpenAITextTarget({ baseUrl: 'ftp://x/v1', model: 'm' })).toThrow(/http/);
    expect(() => new OpenAITextTarget({ baseUrl: 'http://x/v1', model: '' })).toThrow(/model/);
    expect(() => new OpenAITextTarget({ baseUrl: 'http://x/v1', model: 'm', maxRetries: -1 })).toThrow(/maxRetries/);
  });
});
