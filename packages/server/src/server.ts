import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CausalLMV1, createPipeline, type GenerationOptionsV1, type GenerationResultV1 } from '@draft/core';
import { type MethodPlan, planMethod, validateMethodSettings } from '@draft/methods';
import type { OrtCausalLM } from '@draft/runtime';
import Fastify, { type FastifyReply, type FastifyRequest, type HTTPMethods } from 'fastify';
import { AddressInUseError } from './errors.js';
import { checkRequest, type GuardOptions, loopbackHosts } from './guard.js';
import { HttpError, invalid, toHttpError, truncate } from './http-error.js';
import { FifoLimiter, QueueFullError } from './limiter.js';
import { type CompletionRequest, finishReason, parseCompletionRequest, usageOf } from './openai.js';

/** Options of `createDraftServer`. */
export interface DraftServerOptions {
  /** The loaded target (served as `modelName`). */
  target: OrtCausalLM;
  /** The loaded draft; methods that need one answer 400 without it. */
  draft?: OrtCausalLM;
  /** The model id of `/v1/models`; requests naming another model get 404. Default: the target's name. */
  modelName?: string;
  /**
   * Generations running at once. Default 8: their decode steps run together as one batch in the model's worker
   * (`@draft/runtime`'s batched decode), prefills one after another.
   */
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
  /** Bearer token the `/v1` routes require (`Authorization: Bearer …`). Default: none. */
  apiKey?: string;
  /** Browser origins allowed to call (CORS), or `['*']`. Default none: a request with an `Origin` header gets 403. */
  corsOrigins?: readonly string[];
  /**
   * Accepted `Host` header names (against DNS rebinding). Default: when listening on a loopback address,
   * `localhost`, `127.0.0.1` and `[::1]`; otherwise any.
   */
  allowedHosts?: readonly string[];
  /** A request's headers and body must arrive within this time, else 408 and the connection closes. Default 30 s. */
  bodyTimeoutMs?: number;
  /** Open connections at most; more are refused at accept (a flood of stalled sockets cannot grow memory). Default 256. */
  maxConnections?: number;
  /** `close()` lets running generations finish for this long, then aborts them and closes every connection. Default 10 s. */
  shutdownTimeoutMs?: number;
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
  /**
   * Starts listening (port 0 = a free port); resolves with the base URL (no `/v1`). A busy port rejects with
   * `AddressInUseError` (code `ADDRESS_IN_USE`).
   */
  listen(options?: { host?: string; port?: number }): Promise<{ url: string; host: string; port: number }>;
  /**
   * Graceful shutdown: stops accepting connections, answers 503 to new requests on open keep-alive
   * connections, lets running and queued generations finish for up to `shutdownTimeoutMs` (then aborts them),
   * closes every connection (stalled uploads included), disposes the models. Idempotent.
   */
  close(): Promise<void>;
}

const CHUNK_OBJECT = { chat: 'chat.completion.chunk', completions: 'text_completion' } as const;
/** Longest delay Node's timers keep. */
const MAX_TIMER_MS = 2_147_483_647;
/** How budget and window errors name the request fields (`param` of the 400). */
const DRAFT_FIELD_NAMES = { budget: 'draft.budget', windowSize: 'draft.window' } as const;
const ALL_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The prompt of one request as each model takes it. */
interface PreparedPrompt {
  /** For the pipeline: text, or chat-templated token ids of the target (with their text, for drafts). */
  pipeline: string | { inputIds: readonly number[]; text: string };
  /** For draft-only: text, or the messages (the draft applies its own template). */
  draftOnly: string | { messages: CompletionRequest['messages'] & object };
}

/**
 * An OpenAI-compatible HTTP server (Fastify) over `@draft/runtime` models: `POST /v1/chat/completions`,
 * `POST /v1/completions` (JSON or `stream: true` server-sent events), `GET /v1/models`, `GET /v1/models/{id}`,
 * `GET /health`. Each request picks its method and budget in the extra body field
 * `draft: { method, budget, window, options }`, planned with `@draft/methods`; `usage.draft` reports what the
 * method did.
 */
export function createDraftServer(options: DraftServerOptions): DraftServer {
  const { target, draft } = options;
  const modelName = options.modelName ?? target.name;
  const maxConcurrent = options.maxConcurrent ?? 8;
  const maxQueue = options.maxQueue ?? 16;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  const maxConnections = options.maxConnections ?? 256;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
  const limits = {
    defaultMaxTokens: options.defaultMaxTokens ?? 64,
    maxTokensLimit: options.maxTokensLimit ?? 2048,
    defaultMethod: options.defaultMethod ?? 'full',
    maxBudget: target.info.maxPositions,
  };
  const positiveInt = (name: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) throw invalid(`${name} must be an integer ≥ ${min}; got ${value}.`, name);
  };
  positiveInt('maxConcurrent', maxConcurrent, 1);
  positiveInt('maxQueue', maxQueue, 0);
  positiveInt('bodyTimeoutMs', bodyTimeoutMs, 1);
  positiveInt('maxConnections', maxConnections, 1);
  positiveInt('shutdownTimeoutMs', shutdownTimeoutMs, 0);
  // setTimeout fires a delay above 2^31 − 1 ms after 1 ms: a "25-day" deadline would cut every request at once.
  for (const [name, value] of [['bodyTimeoutMs', bodyTimeoutMs], ['shutdownTimeoutMs', shutdownTimeoutMs]] as const) {
    if (value > MAX_TIMER_MS) throw invalid(`${name} must be at most ${MAX_TIMER_MS} (Node's timer limit); got ${value}.`, name);
  }
  const log = options.log ?? (() => {});
  const limiter = new FifoLimiter(maxConcurrent, maxQueue);
  /** Generations running or queued, each abortable at the shutdown deadline. */
  const inflight = new Map<Promise<unknown>, AbortController>();
  const created = Math.floor(Date.now() / 1000);
  let served = 0;
  let closing: Promise<void> | undefined;
  const guard: GuardOptions = { apiKey: options.apiKey, corsOrigins: options.corsOrigins ?? [], allowedHosts: options.allowedHosts };

  const app = Fastify({
    logger: false,
    bodyLimit: options.maxBodyBytes ?? 1024 * 1024,
    // We answer 503 in our own error shape (onRequest below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
    // A malformed percent-escape in the URL is the client's error: 400 in the OpenAI error shape.
    frameworkErrors: (error, _request, reply) => sendError(reply, toHttpError(error)),
    // The timeouts live on the node:http server: `requestTimeout` bounds receiving headers *and body* (it stops
    // once the request is complete, so generation time is not limited); the check runs often enough to enforce it.
    serverFactory: (handler) => {
      const server = createServer(
        {
          requestTimeout: bodyTimeoutMs,
          headersTimeout: Math.min(30_000, bodyTimeoutMs),
          keepAliveTimeout: 5_000,
          connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(bodyTimeoutMs / 4))),
        },
        handler,
      );
      server.maxConnections = maxConnections;
      return server;
    },
  });
  // JSON only: a `text/plain` POST is what a foreign web page can send without a CORS preflight.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    if (closing) {
      reply.header('connection', 'close');
      throw new HttpError(503, 'The server is shutting down.', 'server_error', 'shutting_down');
    }
    const answered = checkRequest(request, reply, guard);
    if (answered) return reply;
  });
  app.setErrorHandler((error, request, reply) => {
    const http = toHttpError(error);
    // A 5xx is the server's fault: whoever runs it sees it (the client gets the message only).
    if (http.status >= 500 && http.status !== 503) log(`draft server: ${request.method} ${truncate(request.url, 200)} → ${http.status}: ${(error as Error)?.stack ?? http.message}`);
    return sendError(reply, http);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new HttpError(404, `No route for ${request.method} ${truncate(request.url.split('?')[0], 200)}.`, 'invalid_request_error', 'not_found'));
  });

  const route = (method: 'GET' | 'POST', url: string, handler: (request: FastifyRequest, reply: FastifyReply) => unknown) => {
    app.route({ method, url, handler: handler as never });
    // Every other verb is 405 (HEAD comes with GET routes).
    const others = ALL_METHODS.filter((m) => m !== method && !(method === 'GET' && m === 'HEAD'));
    app.route({
      method: others,
      url,
      handler: (_request, reply) => sendError(reply, new HttpError(405, `Use ${method} here.`, 'invalid_request_error', 'method_not_allowed', null, { allow: method })),
    });
  };
  const modelCard = () => ({ id: modelName, object: 'model', created, owned_by: 'draft' });
  route('GET', '/health', () => ({ status: 'ok', model: modelName, draft: draft?.name ?? null, active: limiter.active, queued: limiter.queued, served }));
  route('GET', '/v1/models', () => ({ object: 'list', data: [modelCard()] }));
  route('GET', '/v1/models/:id', (request) => {
    const { id } = request.params as { id: string };
    if (id !== modelName) throw unknownModel(id);
    return modelCard();
  });
  route('POST', '/v1/chat/completions', (request, reply) => tracked((controller) => complete(request, reply, 'chat', controller)));
  route('POST', '/v1/completions', (request, reply) => tracked((controller) => complete(request, reply, 'completions', controller)));

  /** Runs a completion as an in-flight job that the shutdown deadline can abort. */
  function tracked<T>(run: (controller: AbortController) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const job = run(controller);
    inflight.set(job, controller);
    const forget = () => inflight.delete(job);
    job.then(forget, forget);
    return job;
  }

  async function complete(request: FastifyRequest, reply: FastifyReply, kind: 'chat' | 'completions', controller: AbortController): Promise<unknown> {
    const parsed = parseCompletionRequest(kind, request.body, limits);
    if (parsed.model !== undefined && parsed.model !== modelName) throw unknownModel(parsed.model);
    const { method, budget, window, options: methodOptions } = parsed.draft;
    const plan = planMethod(method, { budget, windowSize: window, options: methodOptions });
    validateMethodSettings(plan, { budget, windowSize: window }, { maxBudget: limits.maxBudget, names: DRAFT_FIELD_NAMES });
    if (plan.needsDraft && !draft) throw invalid(`Method '${method}' needs a draft model; this server was started without one.`, 'draft.method', 'draft_required');
    const prompt = preparePrompt(parsed, plan);
    // Sampling without a seed draws one, so two identical requests differ (as OpenAI's do); it is reported in
    // usage.draft.seed so a reply can be reproduced.
    const sampled = (parsed.temperature ?? 0) > 0;
    const seed = parsed.seed ?? (sampled ? randomInt(0, 2 ** 31 - 1) : undefined);

    // The client going away (socket closed before the response finished) aborts queueing and generation.
    const res = reply.raw;
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
        maxNewTokens: parsed.maxTokens,
        temperature: parsed.temperature,
        topP: parsed.topP,
        topK: parsed.topK,
        seed,
        presencePenalty: parsed.presencePenalty,
        frequencyPenalty: parsed.frequencyPenalty,
        repetitionPenalty: parsed.repetitionPenalty,
        stopStrings: parsed.stop,
        signal: controller.signal,
      };
      const usageSeed = sampled ? (seed ?? null) : null;
      if (!parsed.stream) {
        const result = await run(plan, prompt, generation);
        served++;
        return completionBody(kind, id, parsed, result, usageSeed);
      }
      await streamCompletion(reply, kind, id, parsed, prompt, plan, generation, usageSeed);
      served++;
      return reply;
    } catch (error) {
      if (controller.signal.aborted) {
        // Nobody is listening (or the shutdown deadline passed): end quietly.
        if (!res.destroyed) res.destroy();
        return reply;
      }
      throw error;
    } finally {
      release?.();
      res.off('close', onClose);
    }
  }

  /**
   * Chat messages go through the chat template of the model that answers, and the rendered text is encoded
   * *without* the tokenizer's special tokens (`encodePrompt({ messages })`): a template that writes the BOS
   * itself (Llama 3's `<|begin_of_text|>`) must not get a second one from the post-processor. A model without a
   * chat template is a 400, not a silent plain-text fallback.
   */
  function preparePrompt(request: CompletionRequest, plan: MethodPlan): PreparedPrompt {
    if (request.prompt !== undefined) return { pipeline: request.prompt, draftOnly: request.prompt };
    const messages = request.messages ?? [];
    const model = plan.draftOnly && draft ? draft : target;
    const template = model.tokenizer.applyChatTemplate;
    if (!template) {
      throw invalid(
        `The model '${model.name}' has no chat template (tokenizer_config.json has no chat_template): use /v1/completions with a prompt you format yourself.`,
        'messages',
        'chat_template_missing',
      );
    }
    if (plan.draftOnly) return { pipeline: '', draftOnly: { messages } };
    const text = template.call(model.tokenizer, messages, { addGenerationPrompt: true });
    return { pipeline: { inputIds: target.encodePrompt({ messages }), text }, draftOnly: { messages } };
  }

  /** Runs one planned method (draft-only on the draft, anything else through a pipeline). */
  async function run(plan: MethodPlan, prompt: PreparedPrompt, generation: GenerationOptionsV1): Promise<GenerationResultV1> {
    if (plan.draftOnly && draft) {
      const result = await draft.generate(prompt.draftOnly, generation);
      return { ...result, usage: { ...result.usage, draftTokens: result.usage.completionTokens } };
    }
    const pipeline = createPipeline({ target: target as CausalLMV1, draft, ...plan.stages });
    return pipeline.generate(prompt.pipeline, generation);
  }

  async function streamCompletion(
    reply: FastifyReply,
    kind: 'chat' | 'completions',
    id: string,
    request: CompletionRequest,
    prompt: PreparedPrompt,
    plan: MethodPlan,
    generation: GenerationOptionsV1,
    seed: number | null,
  ): Promise<void> {
    const res = reply.raw;
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
        reply.hijack();
        res.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: closing ? 'close' : 'keep-alive',
        });
        if (kind === 'chat') res.write(`data: ${JSON.stringify({ ...base, choices: [choice('', null, true)] })}\n\n`);
      }
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    let result: GenerationResultV1;
    let streamed = '';
    try {
      result = await run(plan, prompt, {
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
    const usage = usageOf(result, request.draft, seed);
    send({ ...base, choices: [choice(undefined, finishReason(result.finishReason))], usage });
    if (request.includeUsage) send({ ...base, choices: [], usage });
    res.end('data: [DONE]\n\n');
  }

  function completionBody(kind: 'chat' | 'completions', id: string, request: CompletionRequest, result: GenerationResultV1, seed: number | null) {
    const finish = finishReason(result.finishReason);
    const choice =
      kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: result.text }, logprobs: null, finish_reason: finish }
        : { index: 0, text: result.text, logprobs: null, finish_reason: finish };
    return { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model: modelName, choices: [choice], usage: usageOf(result, request.draft, seed) };
  }

  let ready: PromiseLike<unknown> | undefined;
  return {
    get http() {
      return app.server;
    },
    get stats() {
      return { active: limiter.active, queued: limiter.queued, served };
    },
    async listen({ host = '127.0.0.1', port = 0 } = {}) {
      guard.allowedHosts ??= loopbackHosts(host);
      ready ??= app.ready();
      await ready;
      try {
        await new Promise<void>((resolve, reject) => {
          const server = app.server;
          const onError = (error: Error) => reject(error);
          server.once('error', onError);
          server.listen(port, host, () => {
            server.off('error', onError);
            resolve();
          });
        });
      } catch (error) {
        if ((error as { code?: string }).code === 'EADDRINUSE') throw new AddressInUseError({ host, port, cause: error });
        throw error;
      }
      const address = app.server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shown}:${address.port}`;
      log(`draft server listening on ${url} (model ${modelName}${draft ? `, draft ${draft.name}` : ''})`);
      return { url, host: address.address, port: address.port };
    },
    close() {
      closing ??= (async () => {
        const listening = app.server.listening;
        if (listening) log(`draft server: shutting down (finishing in-flight requests, at most ${shutdownTimeoutMs} ms)`);
        const stopped = listening ? new Promise<void>((resolve) => app.server.close(() => resolve())) : Promise.resolve();
        app.server.closeIdleConnections();
        if (inflight.size > 0) {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<'deadline'>((resolve) => {
            timer = setTimeout(() => resolve('deadline'), shutdownTimeoutMs);
          });
          const outcome = await Promise.race([Promise.allSettled([...inflight.keys()]).then(() => 'done' as const), deadline]);
          clearTimeout(timer);
          if (outcome === 'deadline') {
            log(`draft server: shutdown deadline passed; aborting ${inflight.size} request(s)`);
            for (const controller of inflight.values()) controller.abort(new Error('server shutdown deadline'));
          }
          await Promise.allSettled([...inflight.keys()]);
        }
        // Whatever is still open (stalled uploads, keep-alive sockets) is closed now, so the process can exit.
        app.server.closeAllConnections();
        await stopped;
        await app.close().catch(() => {});
        if (options.disposeModels !== false) await Promise.all([target.dispose(), draft?.dispose()]);
        if (listening) log('draft server: closed');
      })();
      return closing;
    },
  };
}

function unknownModel(id: string): HttpError {
  return new HttpError(404, `The model '${truncate(id, 80)}' does not exist.`, 'invalid_request_error', 'model_not_found', 'model');
}

function sendError(reply: FastifyReply, error: HttpError): FastifyReply | undefined {
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return undefined;
  }
  return reply.code(error.status).headers(error.headers).send(error.toJSON());
}
