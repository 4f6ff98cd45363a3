import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDraftServer, type DraftServer, type DraftServerOptions } from '../src/index.js';
import { get, JSON_HEADERS, LONG_PROMPT, MODELS, post, until } from './helpers.js';

let target: OrtCausalLM;
let server: DraftServer;
let base: string;
const extra: DraftServer[] = [];

beforeAll(async () => {
  target = await loadModel(`${MODELS}fixtures/random-target`, { threads: 1 });
  server = createDraftServer({ target, disposeModels: false });
  base = (await server.listen({ port: 0 })).url;
});

afterAll(async () => {
  await Promise.all([server, ...extra].map((s) => s?.close()));
  await target?.dispose();
});

async function start(options: Omit<DraftServerOptions, 'target'>): Promise<{ server: DraftServer; url: string; port: number }> {
  const s = createDraftServer({ target, disposeModels: false, ...options });
  extra.push(s);
  const { url, port } = await s.listen({ port: 0 });
  return { server: s, url, port };
}

/** Opens a socket that sends headers announcing a body and then only part of it (a stalled upload). */
function stalledUpload(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt": "`);
      resolve(socket);
    });
    socket.on('error', () => {}); // reset by the server is the expected end
    socket.once('error', reject);
  });
}

/** Resolves with what the server sent once it closes the socket. */
function closedBy(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    socket.on('data', (d) => (data += d));
    socket.once('close', () => resolve(data));
  });
}

/** A raw request with headers fetch will not let us set (Host). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('bad input is a 4xx that does not echo it back', () => {
  it('a malformed percent-escape in /v1/models/{id} is 400', async () => {
    for (const path of ['/v1/models/%E0%A4%A', '/v1/models/%', '/v1/models/a%zz']) {
      const res = await get(base, path);
      expect(res.status, path).toBe(400);
      expect(res.json.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_url' });
    }
  });

  it('deeply nested JSON values are a 400 (no stack overflow formatting the error)', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    for (const body of [`{"prompt": ${deep}}`, `{"prompt": "hi", "temperature": ${deep}}`, `{"prompt": "hi", "draft": {"method": ${deep}}}`, `{"prompt": "hi", "stop": ${deep}}`]) {
      const res = await post(base, '/v1/completions', body);
      expect(res.status).toBe(400);
      expect(res.json.error.message.length).toBeLessThan(300);
    }
  });

  it('a 900 KB string in any field comes back cut, not whole', async () => {
    const huge = 'x'.repeat(900_000);
    const cases: [Record<string, unknown>, number][] = [
      [{ prompt: 'hi', temperature: huge }, 400],
      [{ prompt: 'hi', model: huge }, 404],
      [{ prompt: 'hi', draft: { method: huge } }, 400],
      [{ prompt: 'hi', [huge]: 1 }, 400],
      [{ prompt: 'hi', draft: { method: 'snapkv', options: { [huge]: 1 } } }, 400],
      [{ prompt: 'hi', draft: { method: 'snapkv', budget: 8, options: { kernelSize: huge } } }, 400],
    ];
    for (const [body, status] of cases) {
      const res = await post(base, '/v1/completions', body);
      expect(res.status).toBe(status);
      expect(JSON.stringify(res.json).length).toBeLessThan(1500);
    }
    expect((await get(base, `/v1/models/${huge.slice(0, 5000)}`)).status).toBeLessThan(500);
    expect((await fetch(`${base}/${huge.slice(0, 5000)}`)).status).toBe(404);
  });
});

describe('who may call', () => {
  it('POST bodies must be application/json: text/plain and a missing content type are 415', async () => {
    const body = JSON.stringify({ prompt: 'hi', max_tokens: 1 });
    const plain = await fetch(`${base}/v1/completions`, { method: 'POST', body }); // fetch sends text/plain
    expect(plain.status).toBe(415);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
    const form = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(form.status).toBe(415);
    expect((await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body })).status).toBe(200);
  });

  it('a request with a foreign Origin is 403 unless --cors allows it; allowed origins get CORS headers and a preflight', async () => {
    const body = JSON.stringify({ prompt: 'hi', max_tokens: 1 });
    const foreign = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { ...JSON_HEADERS, origin: 'https://evil.example' }, body });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('forbidden_origin');
    const { url } = await start({ corsOrigins: ['https://app.example'] });
    const allowed = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { ...JSON_HEADERS, origin: 'https://app.example' }, body });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const preflight = await fetch(`${url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    expect((await fetch(`${url}/health`, { headers: { origin: 'https://other.example' } })).status).toBe(403);
  });

  it('a foreign Host header (DNS rebinding) is 403 on a loopback listener', async () => {
    const port = Number(new URL(base).port);
    expect((await rawGet(port, '/v1/models', { host: 'evil.example:80' })).status).toBe(403);
    expect((await rawGet(port, '/v1/models', { host: `localhost:${port}` })).status).toBe(200);
    expect((await rawGet(port, '/v1/models', { host: `[::1]:${port}` })).status).toBe(200);
  });

  it('with an API key the /v1 routes need the bearer token; /health stays open', async () => {
    const { url } = await start({ apiKey: 'sekret' });
    const missing = await fetch(`${url}/v1/models`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });
});

describe('slow and stalled clients', () => {
  it('a stalled upload gets 408 and is closed after the body timeout', async () => {
    const { port } = await start({ bodyTimeoutMs: 300 });
    const socket = await stalledUpload(port);
    const started = Date.now();
    const answer = await closedBy(socket);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('300 stalled uploads: at most maxConnections are held, all are dropped after the body timeout, then the server answers', async () => {
    const { server: s, port, url } = await start({ bodyTimeoutMs: 1_000, maxConnections: 20 });
    const sockets = await Promise.all(Array.from({ length: 300 }, () => stalledUpload(port).catch(() => undefined)));
    const closed = sockets.map((socket) => (socket ? closedBy(socket) : Promise.resolve('')));
    const connections = () => new Promise<number>((resolve) => s.http.getConnections((_e, n) => resolve(n)));
    await new Promise((r) => setTimeout(r, 200));
    expect(await connections()).toBeLessThanOrEqual(20);
    await Promise.all(closed);
    await until(async () => (await connections()) === 0, 'every stalled connection to be dropped', 5_000);
    expect((await get(url, '/health')).json.status).toBe('ok');
  });

  it('close() with a stalled upload and a long generation returns within the shutdown deadline', async () => {
    const own = createDraftServer({ target, disposeModels: false, shutdownTimeoutMs: 500 });
    const { url, port } = await own.listen({ port: 0 });
    const stalled = closedBy(await stalledUpload(port));
    const long = fetch(`${url}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ prompt: LONG_PROMPT, max_tokens: 2000 }) }).then(
      (r) => r.status,
      () => 'closed',
    );
    await until(() => own.stats.active === 1, 'the generation to run');
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(4_000); // 500 ms deadline + one decode step to notice the abort, on a shared CPU
    await stalled;
    expect(await long).toBe('closed'); // aborted at the deadline, connection closed
    // the model is still usable (disposeModels: false) and the aborted run left it clean
    expect((await target.generate('x', { maxNewTokens: 1 })).tokens).toHaveLength(1);
  });

  it('60 concurrent requests against a queue of 4 get only 200 or 429, never a 5xx', async () => {
    const { server: s, url } = await start({ maxConcurrent: 1, maxQueue: 4 });
    const statuses = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const body = JSON.stringify({ prompt: `${LONG_PROMPT.slice(0, 200)} #${i}`, max_tokens: 2, stream: i % 2 === 0 });
        const response = await fetch(`${url}/v1/completions`, { method: 'POST', headers: JSON_HEADERS, body });
        await response.text();
        return response.status;
      }),
    );
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
    expect(statuses.filter((x) => x === 200).length).toBeGreaterThanOrEqual(5); // the running one and the 4 queued
    expect(s.stats).toMatchObject({ active: 0, queued: 0 });
  });

  it('listening on a busy port is a typed ADDRESS_IN_USE error, without a "shutting down" line', async () => {
    const lines: string[] = [];
    const busy = createDraftServer({ target, disposeModels: false, log: (l) => lines.push(l) });
    const error = await busy.listen({ port: Number(new URL(base).port) }).catch((e) => e);
    expect(error).toMatchObject({ code: 'ADDRESS_IN_USE', name: 'AddressInUseError' });
    expect(error.message).toContain('already in use');
    await busy.close();
    expect(lines.join('\n')).not.toContain('shutting down');
  });
});
