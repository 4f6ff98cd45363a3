import {
  AbortError,
  type CapabilitiesV1,
  type FinishReason,
  InvalidArgumentError,
  NO_CAPABILITIES,
  RemoteError,
  type TextCompletionRequestV1,
  type TextCompletionResultV1,
  type TextStreamEndV1,
  type TextTargetV1,
} from '@draft/core';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';

/** Options of `new OpenAITextTarget(…)`. */
export interface OpenAITextTargetOptions {
  /** The API root including the version segment, e.g. 'http://127.0.0.1:8080/v1' or 'https://api.openai.com/v1'. */
  baseUrl: string;
  /** The `model` field sent with every request. */
  model: string;
  /** 'chat' → POST {baseUrl}/chat/completions (the prompt is one user message); 'completions' → POST {baseUrl}/completions. Default 'chat'. */
  endpoint?: 'chat' | 'completions';
  /**
   * Sent as `Authorization: Bearer <apiKey>`. Without one no Authorization header is sent: `OPENAI_API_KEY` and
   * the other `OPENAI_*` credentials of the environment are never read (they must not leak to another endpoint).
   */
  apiKey?: string;
  /** An optional system message before the user message ('chat' only). */
  systemPrompt?: string;
  /** Name in errors and pipeline messages. Default `openai:<model>`. */
  name?: string;
  /**
   * Per attempt: milliseconds allowed until the response headers (the client's `timeout`), and for `stream` also
   * for each gap between chunks (an idle timeout, so long generations are not cut). Default 60 000.
   */
  timeoutMs?: number;
  /**
   * Retries after the first attempt (the client's `maxRetries`) on HTTP 408, 409, 429, 5xx, network errors and
   * timeouts — never on other 4xx, never once a stream has started. The client backs off 0.5 s doubling to 8 s
   * with jitter, or waits what the server's `retry-after-ms` / `Retry-After` says. Default 2.
   */
  maxRetries?: number;
  /** @deprecated Ignored since the official `openai` client does the retries; its backoff is not configurable. */
  initialRetryDelayMs?: number;
  /** @deprecated Ignored (see `initialRetryDelayMs`). */
  maxRetryDelayMs?: number;
  /** @deprecated Ignored (see `initialRetryDelayMs`). */
  random?: () => number;
  /** Extra HTTP headers. */
  headers?: Readonly<Record<string, string>>;
  /** Extra body fields merged into every request (e.g. vLLM's `top_k`, or `{ draft: { method, budget } }` for the example server). */
  extraBody?: Readonly<Record<string, unknown>>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

const DEFAULTS = { endpoint: 'chat', timeoutMs: 60_000, maxRetries: 2 } as const;

/** Where an error response's whole body is kept (the client keeps only its `error` field). */
const BODY = Symbol('draft.responseBody');

interface ErrorBody {
  parsed: unknown;
  text: string | undefined;
}

/**
 * The official client, keeping each error response's body: vLLM, TGI and llama.cpp put the message in
 * `{ message }`, `{ error: '…' }` or `{ detail }`, which `APIError` alone would lose.
 */
class Client extends OpenAI {
  protected override makeStatusError(status: number, body: object, text: string | undefined, headers: Headers): APIError {
    return Object.assign(super.makeStatusError(status, body, text, headers), { [BODY]: { parsed: body, text } satisfies ErrorBody });
  }
}

type ChatParams = OpenAI.Chat.ChatCompletionCreateParams;
type CompletionParams = OpenAI.Completions.CompletionCreateParams;

interface Choice {
  text?: string;
  message?: { content?: string | null };
  delta?: { content?: string | null };
  finish_reason?: string | null;
}

interface Reply {
  choices?: Choice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

/**
 * A `TextTargetV1` over any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, TGI, llama.cpp server, or
 * `@draft/server`), on the official `openai` client (transport, retries, timeouts, SSE streaming).
 * It offers no KV capabilities, so a pipeline in front of it can only compress the prompt (SpecPC, SpecPrefill,
 * …); a KV method makes `createPipeline` throw `UnsupportedCapabilityError`.
 *
 * Failures are `RemoteError`s (`status` = the HTTP status, the message quotes the server's error message;
 * `details.serverMessage`, `details.type`, `details.code`, `details.attempts`); a fired `signal` is an
 * `AbortError`, also while the client waits between retries.
 */
export class OpenAITextTarget implements TextTargetV1 {
  readonly specificationVersion = 'v1' as const;
  readonly kind = 'text' as const;
  readonly name: string;
  readonly capabilities: CapabilitiesV1 = NO_CAPABILITIES;
  readonly model: string;
  readonly endpoint: 'chat' | 'completions';
  /** The API root requests go to (trailing slashes removed). */
  readonly baseUrl: string;
  private readonly options: OpenAITextTargetOptions;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly client: Client;

  constructor(options: OpenAITextTargetOptions) {
    if (!options || typeof options.baseUrl !== 'string') throw new InvalidArgumentError({ argument: 'baseUrl', value: options?.baseUrl, expected: "an http(s) URL such as 'http://127.0.0.1:8080/v1'" });
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch (cause) {
      throw new InvalidArgumentError({ argument: 'baseUrl', value: options.baseUrl, expected: "an http(s) URL such as 'http://127.0.0.1:8080/v1'", cause });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new InvalidArgumentError({ argument: 'baseUrl', value: options.baseUrl, expected: 'an http: or https: URL' });
    if (typeof options.model !== 'string' || options.model.length === 0) throw new InvalidArgumentError({ argument: 'model', value: options.model, expected: 'a non-empty model name' });
    const endpoint = options.endpoint ?? DEFAULTS.endpoint;
    if (endpoint !== 'chat' && endpoint !== 'completions') throw new InvalidArgumentError({ argument: 'endpoint', value: endpoint, expected: "'chat' | 'completions'" });
    const count = (argument: string, value: number | undefined, fallback: number, min: number) => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError({ argument, value, expected: `an integer ≥ ${min}` });
      return v;
    };
    this.timeoutMs = count('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs, 1);
    this.maxRetries = count('maxRetries', options.maxRetries, DEFAULTS.maxRetries, 0);
    this.options = options;
    this.model = options.model;
    this.endpoint = endpoint;
    this.name = options.name ?? `openai:${options.model}`;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.client = new Client({
      baseURL: this.baseUrl,
      // The client insists on a credential and would otherwise read OPENAI_API_KEY: give it a placeholder and
      // drop the header below, so a keyless local server never receives the user's OpenAI key.
      apiKey: options.apiKey ?? 'unused',
      organization: null,
      project: null,
      adminAPIKey: null,
      maxRetries: this.maxRetries,
      timeout: this.timeoutMs,
      fetch: options.fetch,
      defaultHeaders: { ...options.headers, ...(options.apiKey ? {} : { Authorization: null }) },
    });
  }

  /**
   * The model ids the endpoint serves (`GET {baseUrl}/models`; vLLM, TGI, llama.cpp server and OpenAI answer it),
   * e.g. to pick the `model` of a single-model server. Failures are mapped as for `complete`.
   */
  static async listModels(options: Omit<OpenAITextTargetOptions, 'model'> & { signal?: AbortSignal }): Promise<string[]> {
    const probe = new OpenAITextTarget({ ...options, model: 'models' });
    try {
      const page = await abortable(probe.client.models.list({ signal: options.signal }), options.signal);
      return page.data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
    } catch (error) {
      throw probe.failure(error, options.signal);
    }
  }

  /** One non-streaming completion. */
  async complete(request: TextCompletionRequestV1): Promise<TextCompletionResultV1> {
    const params = this.params(request, false);
    const signal = request.signal;
    let reply: Reply;
    try {
      const call: Promise<Reply> =
        this.endpoint === 'chat'
          ? this.client.chat.completions.create(params as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, { signal })
          : this.client.completions.create(params as OpenAI.Completions.CompletionCreateParamsNonStreaming, { signal });
      reply = await abortable(call, signal);
    } catch (error) {
      throw this.failure(error, signal);
    }
    const choice = reply.choices?.[0];
    const content = this.endpoint === 'chat' ? choice?.message?.content : choice?.text;
    if (!choice || (content !== undefined && content !== null && typeof content !== 'string')) {
      throw new RemoteError(`${this.name}: the response has no choices[0]${this.endpoint === 'chat' ? '.message.content' : '.text'}.`, { status: 200 });
    }
    return {
      text: content ?? '',
      finishReason: finishReason(choice.finish_reason),
      usage: { promptTokens: reply.usage?.prompt_tokens, completionTokens: reply.usage?.completion_tokens },
    };
  }

  /**
   * Streams text pieces (`stream: true`). Breaking out of the loop cancels the HTTP request. Retries happen only
   * before the response starts; after that, a gap of `timeoutMs` between chunks is a timeout.
   */
  async *stream(request: TextCompletionRequestV1): AsyncGenerator<string, TextStreamEndV1> {
    const params = this.params(request, true);
    const signal = request.signal;
    // Our own controller: the caller's signal, or the idle timer, cancels the running body.
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error(`timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    };
    try {
      let chunks: AsyncIterable<Reply>;
      try {
        const call: Promise<AsyncIterable<Reply>> =
          this.endpoint === 'chat'
            ? this.client.chat.completions.create(params as OpenAI.Chat.ChatCompletionCreateParamsStreaming, { signal: controller.signal })
            : this.client.completions.create(params as OpenAI.Completions.CompletionCreateParamsStreaming, { signal: controller.signal });
        chunks = await abortable(call, signal);
      } catch (error) {
        throw this.failure(error, signal);
      }
      let sawFinish = false;
      let end: TextStreamEndV1 = { finishReason: 'stop' };
      try {
        arm();
        for await (const chunk of chunks) {
          arm();
          const choice = chunk.choices?.[0];
          const piece = this.endpoint === 'chat' ? choice?.delta?.content : choice?.text;
          if (choice?.finish_reason) {
            sawFinish = true;
            end = { ...end, finishReason: finishReason(choice.finish_reason) };
          }
          if (chunk.usage) end = { ...end, usage: { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens } };
          if (typeof piece === 'string' && piece.length > 0) yield piece;
        }
      } catch (error) {
        throw this.failure(error, signal, timedOut);
      }
      // The client's stream ends quietly when its request is aborted: say why.
      if (signal?.aborted) throw new AbortError({ reason: signal.reason });
      if (timedOut) throw new RemoteError(`${this.name}: timed out after ${this.timeoutMs} ms between stream chunks.`);
      if (!sawFinish) throw new RemoteError(`${this.name}: the stream ended without a finish_reason.`, { status: 200 });
      return end;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // Frees the connection when the caller stopped early (break, throw).
      if (!controller.signal.aborted) controller.abort(new Error('stream closed'));
    }
  }

  private params(request: TextCompletionRequestV1, stream: boolean): ChatParams | CompletionParams {
    if (!request || typeof request.prompt !== 'string') throw new InvalidArgumentError({ argument: 'prompt', value: request?.prompt, expected: 'a string' });
    if (!Number.isInteger(request.maxNewTokens) || request.maxNewTokens < 1) {
      throw new InvalidArgumentError({ argument: 'maxNewTokens', value: request.maxNewTokens, expected: 'an integer ≥ 1' });
    }
    const { systemPrompt, extraBody } = this.options;
    const input =
      this.endpoint === 'chat'
        ? { messages: [...(systemPrompt ? [{ role: 'system' as const, content: systemPrompt }] : []), { role: 'user' as const, content: request.prompt }] }
        : { prompt: request.prompt };
    // extraBody first: the request's own fields win. The client sends unknown fields (vLLM's top_k) as given.
    return {
      ...extraBody,
      model: this.model,
      ...input,
      max_tokens: request.maxNewTokens,
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.topP !== undefined ? { top_p: request.topP } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.stop && request.stop.length > 0 ? { stop: [...request.stop] } : {}),
      stream,
    } as ChatParams | CompletionParams;
  }

  /** Maps what the client throws to AbortError (the caller's signal) or RemoteError (everything else). */
  private failure(error: unknown, signal: AbortSignal | undefined, idleTimeout = false): Error {
    if (error instanceof AbortError || error instanceof RemoteError) return error;
    if (signal?.aborted) return new AbortError({ reason: signal.reason });
    if (idleTimeout) return new RemoteError(`${this.name}: timed out after ${this.timeoutMs} ms between stream chunks.`, { cause: error });
    // Retryable failures reach the caller only once every retry failed too.
    const attempts = (retryable: boolean) => (retryable ? this.maxRetries + 1 : 1);
    if (error instanceof APIConnectionTimeoutError) {
      return withDetails(new RemoteError(`${this.name}: timed out after ${this.timeoutMs} ms.`, { cause: error }), { attempts: attempts(true) });
    }
    if (error instanceof APIConnectionError && !(error instanceof APIUserAbortError)) {
      const cause = error.cause instanceof Error ? ` (${error.cause.message}${error.cause.cause instanceof Error ? `: ${error.cause.cause.message}` : ''})` : '';
      return withDetails(new RemoteError(`${this.name}: request failed: ${error.message}${cause}`, { cause: error }), { attempts: attempts(true) });
    }
    if (error instanceof APIError && error.status !== undefined) {
      const body = (error as APIError & { [BODY]?: ErrorBody })[BODY];
      const remote = remoteError(this.name, error.status, body?.parsed, body?.text, error);
      const retryHeader = error.headers?.get('x-should-retry');
      const retryable = retryHeader === 'true' || (retryHeader !== 'false' && (error.status === 408 || error.status === 409 || error.status === 429 || error.status >= 500));
      return withDetails(remote, { retryAfter: error.headers?.get('retry-after') ?? null, attempts: attempts(retryable) });
    }
    if (error instanceof APIError) {
      // An `error` event inside a 200 stream.
      return withDetails(new RemoteError(`${this.name}: stream error: ${error.message}`, { status: 200, cause: error }), { type: error.type, code: error.code });
    }
    const message = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error);
    return new RemoteError(`${this.name}: request failed: ${message}`, { cause: error });
  }
}

/**
 * Settles with `promise`, or rejects with AbortError as soon as `signal` fires. The client notices an abort
 * only when its backoff sleep ends (up to 8 s, or a server's Retry-After); the caller should not wait for that.
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      // The client's own rejection (APIUserAbortError) comes later: nothing waits for it.
      promise.catch(() => {});
      reject(new AbortError({ reason: signal.reason }));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function withDetails(error: RemoteError, details: Record<string, unknown>): RemoteError {
  Object.assign(error.details, details);
  return error;
}

function finishReason(value: string | null | undefined): FinishReason {
  return value === 'length' ? 'length' : 'stop';
}

/** A RemoteError quoting the server's message from `{ error: { message, type, code } }`, `{ error: '…' }`, `{ message }`, `{ detail }` or the raw text. */
function remoteError(name: string, status: number, parsed: unknown, text: string | undefined, cause: unknown): RemoteError {
  const body = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const inner = body.error;
  let serverMessage: string | undefined;
  let type: unknown;
  let code: unknown;
  if (typeof inner === 'string') serverMessage = inner;
  else if (typeof inner === 'object' && inner !== null) {
    const e = inner as Record<string, unknown>;
    if (typeof e.message === 'string') serverMessage = e.message;
    type = e.type;
    code = e.code;
  }
  if (serverMessage === undefined && typeof body.message === 'string') serverMessage = body.message;
  if (serverMessage === undefined && typeof body.detail === 'string') serverMessage = body.detail;
  if (serverMessage === undefined && text) serverMessage = text.trim().slice(0, 500);
  const error = new RemoteError(`${name}: HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`, { status, cause });
  return withDetails(error, { serverMessage, type, code });
}
