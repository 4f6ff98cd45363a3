// Test-only: a local OpenAI-compatible server on 127.0.0.1 that records every request and answers
// /v1/chat/completions and /v1/completions (JSON or SSE streaming) and /v1/models, with injectable failures.
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** The prompt: the last user message (chat) or `prompt` (completions). */
  prompt: string | undefined;
}

/** What the stub does with one request: answer, fail with a status, or never answer (a timeout). */
export type StubAction = { kind: 'answer' } | { kind: 'fail'; status: number; message?: string; headers?: Record<string, string> } | { kind: 'stall' };

export interface StubOptions {
  /** The completion text for a prompt (default 'stub answer'). */
  reply?: (prompt: string) => string;
  /** The ids `GET /v1/models` lists (default ['stub-model']). */
  models?: string[];
}

export interface OpenAIStub {
  /** The API root, e.g. http://127.0.0.1:PORT/v1. */
  baseUrl: string;
  requests: StubRequest[];
  /** Completion requests only (not /models). */
  completions(): StubRequest[];
  /** Queue actions for the next completion requests (then it answers). */
  next(...actions: StubAction[]): void;
  close(): Promise<void>;
}

export async function startOpenAIStub(options: StubOptions = {}): Promise<OpenAIStub> {
  const reply = options.reply ?? (() => 'stub answer');
  const models = options.models ?? ['stub-model'];
  const requests: StubRequest[] = [];
  const queue: StubAction[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    const url = req.url ?? '';
    const messages = body.messages as { role: string; content: string }[] | undefined;
    const prompt = messages ? messages.filter((m) => m.role === 'user').at(-1)?.content : (body.prompt as string | undefined);
    requests.push({ method: req.method ?? '', url, headers: req.headers, body, prompt });
    if (req.method === 'GET' && url === '/v1/models') {
      json(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', owned_by: 'stub' })) });
      return;
    }
    const chat = url === '/v1/chat/completions';
    if (req.method !== 'POST' || (!chat && url !== '/v1/completions')) {
      json(res, 404, { error: { message: `no route ${req.method} ${url}`, type: 'invalid_request_error' } });
      return;
    }
    const action = queue.shift() ?? { kind: 'answer' };
    if (action.kind === 'stall') return; // never answers; the client times out or aborts
    if (action.kind === 'fail') {
      json(res, action.status, { error: { message: action.message ?? `stub failure ${action.status}`, type: 'server_error' } }, action.headers);
      return;
    }
    const answer = reply(prompt ?? '');
    const usage = { prompt_tokens: (prompt ?? '').length, completion_tokens: answer.split(' ').length };
    if (body.stream !== true) {
      const choice = chat ? { index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' } : { index: 0, text: answer, finish_reason: 'stop' };
      json(res, 200, { id: 'cmpl-stub', object: chat ? 'chat.completion' : 'text_completion', model: body.model, choices: [choice], usage });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const pieces = answer.split(/(?<= )/);
    for (const piece of pieces) {
      const choice = chat ? { index: 0, delta: { content: piece }, finish_reason: null } : { index: 0, text: piece, finish_reason: null };
      res.write(`data: ${JSON.stringify({ id: 'cmpl-stub', choices: [choice] })}\n\n`);
      await new Promise((r) => setImmediate(r));
    }
    const last = chat ? { index: 0, delta: {}, finish_reason: 'stop' } : { index: 0, text: '', finish_reason: 'stop' };
    res.end(`data: ${JSON.stringify({ id: 'cmpl-stub', choices: [last], usage })}\n\ndata: [DONE]\n\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    completions: () => requests.filter((r) => r.method === 'POST'),
    next: (...actions) => queue.push(...actions),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
