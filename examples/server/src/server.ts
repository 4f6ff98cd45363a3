import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { planMethod, runPlan } from '@draft/cli';
import { DraftError, type GenerationOptionsV1, type GenerationResultV1 } from '@draft/core';
import type { OrtCausalLM } from '@draft/runtime';
import { FifoLimiter, QueueFullError } from './limiter.js';
import { type CompletionRequest, finishReason, HttpError, invalid, parseCompletionRequest, usageOf } from './openai.js';

/** Options of `createDraftServer`. */
export interface DraftServerOptions {
  /** The loaded target (served as `modelName`). */
  target: OrtCausalLM;
  /** The loaded draft; methods that need one answer 400 without it. */
  draft?: OrtCausalLM;
  /** The model id of `/v1/models`; requests naming another model get 404. Default: the target's name. */
  modelName?: string;
  /** Generations running at once. Default 1 (one ORT worker per model runs one call at a time anyway). */
  maxConcurrent?: number;
  /** Requests waiting for a slot, first in first out; more get 429. Default 16. */
  maxQueue?: number;
  /** Largest request body in bytes; larger bodies get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** `max_tokens` when the request has none. Default 64. */
  defaultMaxTokens?: number;
  /** Largest accepted `max_tokens`. Default 2048. */
  maxTokensLimit?: number;
  /** Method when a request has no `draft.method`. Default 'full'. */
  defaultMethod?: string;
  /** `close()` disposes the models. Default true. */
  disposeModels?: boolean;
  /** One line per event (listening, shutdown). Default: nothing. */
  log?: (line: string) => void;
}

export interface DraftServer {
  /** The underlying node:http server. */
  readonly http: Server;
  /** Running and queued generations now. */
  readonly stats: { active: number; queued: number; served: number };
  /** Starts listening (port 0 = a free port); resolves with the base URL (no `/v1`). */
  listen(options?: { host?: string; port?: number }): Promise<{ url: string; host: string; port: number }>;
  /**
   * Graceful shutdown: stops accepting connections, answers 503 to new requests on open keep-alive
   * connections, lets running and queued generations finish, closes the connections, disposes the models.
   * Idempotent.
   */
  close(): Promise<void>;
}

const CHUNK_OBJECT = { chat: 'chat.completion.chunk', completions: 'text_completion' } as const;

/**
 * An OpenAI-compatible HTTP server over `@draft/runtime` models: `POST /v1/chat/completions`,
 * `POST /v1/completions` (JSON or `stream: true` server-sent events), `GET /v1/models`, `GET /health`. Each
 * request picks its method and budget in the extra body field `draft: { method, budget, window }`, resolved
 * with the CLI's `planMethod`; `usage.draft` reports what the method did.
 */
export function createDraftServer(options: DraftServerOptions): DraftServer {
  const { target, draft } = options;
  const modelName = options.modelName ?? target.name;
  const maxConcurrent = options.maxConcurrent ?? 1;
  const maxQueue = options.maxQueue ?? 16;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const limits = {
    defaultMaxTokens: options.defaultMaxTokens ?? 64,
    maxTokensLimit: options.maxTokensLimit ?? 2048,
    defaultMethod: options.defaultMethod ?? 'full',
    maxBudget: target.info.maxPositions,
  };
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw invalid(`maxConcurrent must be an integer ≥ 1; got ${maxConcurrent}.`, 'maxConcurrent');
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw invalid(`maxQueue must be an integer ≥ 0; got ${maxQueue}.`, 'maxQueue');
  const log = options.log ?? (() => {});
  const limiter = new FifoLimiter(maxConcurrent, maxQueue);
  const inflight = new Set<Promise<void>>();
  const created = Math.floor(Date.now() / 1000);
  let served = 0;
  let closing: Promise<void> | undefined;

  const http = createServer((req, res) => {
    const handled = handle(req, res).catch((error) => {
      // Last resort: handle() answers every error itself; this only guards against a bug there.
      if (!res.headersSent) sendError(res, new HttpError(500, String((error as Error)?.message ?? error), 'server_error', 'internal'));
      else res.destroy();
    });
    inflight.add(handled);
    handled.finally(() => inflight.delete(handled));
  });
  // A request without a body for this long is dropped (slowloris); generation time is not limited here.
  http.headersTimeout = 30_000;
  http.requestTimeout = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    if (closing) {
      res.setHeader('connection', 'close');
      req.resume();
      return sendError(res, new HttpError(503, 'The server is shutting down.', 'server_error', 'shutting_down'));
    }
    try {
      if (path === '/health') {
        requireMethod(req, 'GET');
        return sendJson(res, 200, { status: 'ok', model: modelName, draft: draft?.name ?? null, active: limiter.active, queued: limiter.queued, served });
      }
      if (path === '/v1/models') {
        requireMethod(req, 'GET');
        return sendJson(res, 200, { object: 'list', data: [modelCard()] });
      }
      if (path.startsWith('/v1/models/')) {
        requireMethod(req, 'GET');
        const id = decodeURIComponent(path.slice('/v1/models/'.length));
        if (id !== modelName) throw unknownModel(id);
        return sendJson(res, 200, modelCard());
      }
      if (path === '/v1/chat/completions' || path === '/v1/completions') {
        requireMethod(req, 'POST');
        return await complete(req, res, path === '/v1/chat/completions' ? 'chat' : 'completions');
      }
      req.resume();
      throw new HttpError(404, `No route for ${req.method} ${path}.`, 'invalid_request_error', 'not_found');
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, toHttpError(error));
    }
  }

  function modelCard() {
    return { id: modelName, object: 'model', created, owned_by: 'draft' };
  }

  async function complete(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completions'): Promise<void> {
    const body = await readJson(req, maxBodyBytes);
    const request = parseCompletionRequest(kind, body, limits);
    if (request.model !== undefined && request.model !== modelName) throw unknownModel(request.model);
    const { method, budget, window } = request.draft;
    const plan = planMethod(method, { budget, windowSize: window });
    if (plan.needsDraft && !draft) throw invalid(`Method '${method}' needs a draft model; this server was started without one.`, 'draft.method', 'draft_required');
    const prompt = renderPrompt(request);

    // The client going away (socket closed before the response finished) aborts queueing and generation.
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new Error('client disconnected'));
    };
    res.on('close', onClose);
    let release: (() => void) | undefined;
    try {
      try {
        release = await limiter.acquire(controller.signal);
      } catch (error) {
        if (error instanceof QueueFullError) throw new HttpError(429, error.message, 'rate_limit_error', 'queue_full', null, { 'retry-after': '1' });
        throw error;
      }
      const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
      const generation: GenerationOptionsV1 = {
        maxNewTokens: request.maxTokens,
        temperature: request.temperature,
        topP: request.topP,
        topK: request.topK,
        seed: request.seed,
        stopStrings: request.stop,
        signal: controller.signal,
      };
      if (!request.stream) {
        const result = await runPlan(plan, { target, draft }, prompt, generation);
        served++;
        return sendJson(res, 200, completionBody(kind, id, request, result));
      }
      await streamCompletion(res, kind, id, request, prompt, plan, generation);
      served++;
    } catch (error) {
      if (controller.signal.aborted) {
        // Nobody is listening: end quietly.
        if (!res.destroyed) res.destroy();
        return;
      }
      throw error;
    } finally {
      release?.();
      res.off('close', onClose);
    }
  }

  async function streamCompletion(
    res: ServerResponse,
    kind: 'chat' | 'completions',
    id: string,
    request: CompletionRequest,
    prompt: string,
    plan: ReturnType<typeof planMethod>,
    generation: GenerationOptionsV1,
  ): Promise<void> {
    const base = { id, object: CHUNK_OBJECT[kind], created: Math.floor(Date.now() / 1000), model: modelName };
    const choice = (text: string | undefined, finish: string | null, first = false) =>
      kind === 'chat'
        ? { index: 0, delta: text === undefined ? {} : first ? { role: 'assistant', content: text } : { content: text }, logprobs: null, finish_reason: finish }
        : { index: 0, text: text ?? '', logprobs: null, finish_reason: finish };
    // Headers go out with the first piece: an error before it (bad window for this prompt, prompt too long, …)
    // still gets its proper 4xx JSON answer instead of a 200 stream holding an error event.
    const send = (data: unknown) => {
      if (res.destroyed || res.writableEnded) return;
      if (!res.headersSent) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: closing ? 'close' : 'keep-alive' });
        if (kind === 'chat') res.write(`data: ${JSON.stringify({ ...base, choices: [choice('', null, true)] })}\n\n`);
      }
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    let result: GenerationResultV1;
    let streamed = '';
    try {
      result = await runPlan(plan, { target, draft }, prompt, {
        ...generation,
        onToken: (token) => {
          if (!token.text) return;
          streamed += token.text;
          send({ ...base, choices: [choice(token.text, null)] });
        },
      });
    } catch (error) {
      if (generation.signal?.aborted || !res.headersSent) throw error;
      // Headers are gone: report the error in the stream, as OpenAI does, and end it cleanly.
      send(toHttpError(error).toJSON());
      res.end('data: [DONE]\n\n');
      return;
    }
    // Text the decoder held back to the end (an incomplete UTF-8 sequence flushed as U+FFFD) is sent now, so
    // the pieces always concatenate to the non-streamed text.
    if (result.text.length > streamed.length && result.text.startsWith(streamed)) send({ ...base, choices: [choice(result.text.slice(streamed.length), null)] });
    const usage = usageOf(result, request.draft);
    send({ ...base, choices: [choice(undefined, finishReason(result.finishReason))], usage });
    if (request.includeUsage) send({ ...base, choices: [], usage });
    res.end('data: [DONE]\n\n');
  }

  function completionBody(kind: 'chat' | 'completions', id: string, request: CompletionRequest, result: GenerationResultV1) {
    const finish = finishReason(result.finishReason);
    const choice =
      kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: result.text }, logprobs: null, finish_reason: finish }
        : { index: 0, text: result.text, logprobs: null, finish_reason: finish };
    return { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model: modelName, choices: [choice], usage: usageOf(result, request.draft) };
  }

  /** Chat messages go through the target's chat template when it has one (else `role: content` lines). */
  function renderPrompt(request: CompletionRequest): string {
    if (request.prompt !== undefined) return request.prompt;
    const messages = request.messages ?? [];
    const template = target.tokenizer.applyChatTemplate;
    if (template) {
      try {
        return template.call(target.tokenizer, messages, { addGenerationPrompt: true });
      } catch {
        // No jinja engine installed: fall through to the plain rendering.
      }
    }
    return `${messages.map((m) => `${m.role}: ${m.content}`).join('\n')}\nassistant:`;
  }

  return {
    http,
    get stats() {
      return { active: limiter.active, queued: limiter.queued, served };
    },
    async listen({ host = '127.0.0.1', port = 0 } = {}) {
      http.listen(port, host);
      await once(http, 'listening');
      const address = http.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shown}:${address.port}`;
      log(`draft server listening on ${url} (model ${modelName}${draft ? `, draft ${draft.name}` : ''})`);
      return { url, host: address.address, port: address.port };
    },
    close() {
      closing ??= (async () => {
        log('draft server: shutting down (finishing in-flight requests)');
        const stopped = http.listening ? new Promise<void>((resolve) => http.close(() => resolve())) : Promise.resolve();
        http.closeIdleConnections();
        while (inflight.size > 0) await Promise.allSettled([...inflight]);
        http.closeAllConnections();
        await stopped;
        if (options.disposeModels !== false) await Promise.all([target.dispose(), draft?.dispose()]);
        log('draft server: closed');
      })();
      return closing;
    },
  };
}

function requireMethod(req: IncomingMessage, method: string): void {
  if (req.method !== method) {
    req.resume();
    throw new HttpError(405, `Use ${method} here, not ${req.method}.`, 'invalid_request_error', 'method_not_allowed', null, { allow: method });
  }
}

function unknownModel(id: string): HttpError {
  return new HttpError(404, `The model '${id}' does not exist.`, 'invalid_request_error', 'model_not_found', 'model');
}

/** Reads a JSON body of at most `limit` bytes: 413 beyond it, 400 when it does not parse. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw invalid(`The request body is not valid JSON: ${(cause as Error).message}`, null, 'invalid_json');
  }
}

function tooLarge(limit: number): HttpError {
  // `connection: close`: the rest of an oversized upload is not worth reading.
  return new HttpError(413, `The request body exceeds ${limit} bytes.`, 'invalid_request_error', 'request_too_large', null, { connection: 'close' });
}

/** Maps typed @draft errors to HTTP statuses; anything unknown is a 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (DraftError.isInstance(error)) {
    const details = error.details as Record<string, unknown>;
    switch (error.code) {
      case 'UNKNOWN_METHOD':
        return new HttpError(400, error.message, 'invalid_request_error', 'unknown_method', 'draft.method');
      case 'INVALID_ARGUMENT':
        return new HttpError(400, error.message, 'invalid_request_error', 'invalid_value', typeof details.argument === 'string' ? details.argument : null);
      case 'PROMPT_TOO_LONG':
        return new HttpError(400, error.message, 'invalid_request_error', 'context_length_exceeded', 'messages');
      case 'UNSUPPORTED_CAPABILITY':
        return new HttpError(400, error.message, 'invalid_request_error', 'unsupported_capability', 'draft.method');
      case 'ABORTED':
        return new HttpError(499, error.message, 'invalid_request_error', 'aborted');
      default:
        return new HttpError(500, error.message, 'server_error', error.code.toLowerCase());
    }
  }
  return new HttpError(500, (error as Error)?.message ?? String(error), 'server_error', 'internal');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, error: HttpError): void {
  if (res.destroyed) return;
  sendJson(res, error.status, error.toJSON(), error.headers);
}
