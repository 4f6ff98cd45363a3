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
import { backoffDelay, sleep } from './retry.js';
import { parseSseStream } from './sse.js';

/** Options of `new OpenAITextTarget(…)`. */
export interface OpenAITextTargetOptions {
  /** The API root including the version segment, e.g. 'http://127.0.0.1:8080/v1' or 'https://api.openai.com/v1'. */
  baseUrl: string;
  /** The `model` field sent with every request. */
  model: string;
  /** 'chat' → POST {baseUrl}/chat/completions (the prompt is one user message); 'completions' → POST {baseUrl}/completions. Default 'chat'. */
  endpoint?: 'chat' | 'completions';
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** An optional system message before the user message ('chat' only). */
  systemPrompt?: string;
  /** Name in errors and pipeline messages. Default `openai:<model>`. */
  name?: string;
  /**
   * Per attempt: milliseconds allowed for the whole response of `complete`, and for the response headers and
   * then for each gap between chunks of `stream` (an idle timeout, so long generations are not cut). Default 60 000.
   */
  timeoutMs?: number;
  /** Retries after the first attempt on HTTP 429, 5xx, network errors and timeouts (never on other 4xx, never once a stream has started). Default 2. */
  maxRetries?: number;
  /** Backoff before the first retry, doubled per retry, with full jitter. Default 500. */
  initialRetryDelayMs?: number;
  /** Cap of one backoff delay, also of a server's `Retry-After`. Default 8 000. */
  maxRetryDelayMs?: number;
  /** Extra HTTP headers. */
  headers?: Readonly<Record<string, string>>;
  /** Extra body fields merged into every request (e.g. vLLM's `top_k`, or `{ draft: { method, budget } }` for the example server). */
  extraBody?: Readonly<Record<string, unknown>>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
}

const DEFAULTS = { endpoint: 'chat', timeoutMs: 60_000, maxRetries: 2, initialRetryDelayMs: 500, maxRetryDelayMs: 8_000 } as const;

/** Largest error body read to find the server's message. */
const MAX_ERROR_BODY = 64 * 1024;

interface OpenAIChoice {
  text?: string;
  message?: { content?: string | null };
  delta?: { content?: string | null };
  finish_reason?: string | null;
}

interface OpenAIResponse {
  choices?: OpenAIChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  error?: unknown;
}

/** One attempt's abort plumbing: the caller's signal, a timeout (re-armable), and the attempt's own controller. */
class Attempt {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.controller.abort(this.signal?.reason);

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly timeoutMs: number,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.arm();
  }

  /** (Re)starts the timeout. */
  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error(`timed out after ${this.timeoutMs} ms`));
    }, this.timeoutMs);
  }

  /** Stops the timer and unlinks the caller's signal; `cancel` also aborts the request (frees the connection). */
  end(cancel: boolean): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    if (cancel && !this.controller.signal.aborted) this.controller.abort(new Error('request finished'));
  }

  /** Maps an exception thrown by fetch or a body read to AbortError (caller), RemoteError (timeout or network). */
  failure(error: unknown, name: string): Error {
    if (this.signal?.aborted) return new AbortError({ reason: this.signal.reason });
    if (this.timedOut) return retryable(new RemoteError(`${name}: timed out after ${this.timeoutMs} ms.`, { cause: error }));
    if (error instanceof RemoteError || error instanceof AbortError) return error;
    const message = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error);
    return retryable(new RemoteError(`${name}: request failed: ${message}`, { cause: error }));
  }
}

const RETRYABLE = Symbol('retryable');

function retryable(error: RemoteError): RemoteError {
  (error as unknown as Record<symbol, boolean>)[RETRYABLE] = true;
  return error;
}

function isRetryable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, boolean>)[RETRYABLE] === true;
}

/**
 * A `TextTargetV1` over any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, TGI, llama.cpp server, or
 * `@draft/server`). It offers no KV capabilities, so a pipeline in front of it can only compress
 * the prompt (SpecPC, SpecPrefill, …); a KV method makes `createPipeline` throw `UnsupportedCapabilityError`.
 *
 * Failures are `RemoteError`s (`status` = the HTTP status, the message quotes the server's error message;
 * `details.serverMessage`, `details.type`, `details.code`, `details.attempts`); a fired `signal` is an
 * `AbortError`. 429, 5xx, network errors and timeouts are retried `maxRetries` times with exponential backoff
 * and full jitter (honouring `Retry-After`); other 4xx and anything after a stream's first byte are not.
 */
export class OpenAITextTarget implements TextTargetV1 {
  readonly specificationVersion = 'v1' as const;
  readonly kind = 'text' as const;
  readonly name: string;
  readonly capabilities: CapabilitiesV1 = NO_CAPABILITIES;
  readonly model: string;
  readonly endpoint: 'chat' | 'completions';
  private readonly url: string;
  private readonly options: OpenAITextTargetOptions;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoff: { initialDelayMs: number; maxDelayMs: number; random: () => number };
  private readonly fetchImpl: typeof globalThis.fetch;

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
    this.backoff = {
      initialDelayMs: count('initialRetryDelayMs', options.initialRetryDelayMs, DEFAULTS.initialRetryDelayMs, 0),
      maxDelayMs: count('maxRetryDelayMs', options.maxRetryDelayMs, DEFAULTS.maxRetryDelayMs, 0),
      random: options.random ?? Math.random,
    };
    this.options = options;
    this.model = options.model;
    this.endpoint = endpoint;
    this.name = options.name ?? `openai:${options.model}`;
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** One non-streaming completion. */
  async complete(request: TextCompletionRequestV1): Promise<TextCompletionResultV1> {
    const body = this.body(request, false);
    const json = await this.withRetries(request.signal, async (attempt) => {
      const response = await this.post(body, attempt);
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        throw attempt.failure(error, this.name);
      }
      let parsed: OpenAIResponse;
      try {
        parsed = JSON.parse(text) as OpenAIResponse;
      } catch (cause) {
        throw new RemoteError(`${this.name}: the response is not JSON: ${text.slice(0, 200)}`, { status: response.status, cause });
      }
      return parsed;
    });
    const choice = json.choices?.[0];
    const content = this.endpoint === 'chat' ? choice?.message?.content : choice?.text;
    if (!choice || (content !== undefined && content !== null && typeof content !== 'string')) {
      throw new RemoteError(`${this.name}: the response has no choices[0]${this.endpoint === 'chat' ? '.message.content' : '.text'}.`, { status: 200 });
    }
    return {
      text: content ?? '',
      finishReason: finishReason(choice.finish_reason),
      usage: { promptTokens: json.usage?.prompt_tokens, completionTokens: json.usage?.completion_tokens },
    };
  }

  /**
   * Streams text pieces (`stream: true`, server-sent events until `data: [DONE]`). Breaking out of the loop
   * cancels the HTTP request. Retries happen only before the response starts.
   */
  async *stream(request: TextCompletionRequestV1): AsyncGenerator<string, TextStreamEndV1> {
    const body = this.body(request, true);
    const { response, attempt } = await this.withRetries(request.signal, async (a) => ({ response: await this.post(body, a), attempt: a }), true);
    let finished = false;
    try {
      if (!response.body) throw new RemoteError(`${this.name}: the streaming response has no body.`, { status: response.status });
      let sawFinish = false;
      let end: TextStreamEndV1 = { finishReason: 'stop' };
      for await (const event of parseSseStream(response.body as unknown as AsyncIterable<Uint8Array>)) {
        attempt.arm();
        if (event.data === '[DONE]') {
          finished = true;
          break;
        }
        let chunk: OpenAIResponse;
        try {
          chunk = JSON.parse(event.data) as OpenAIResponse;
        } catch (cause) {
          throw new RemoteError(`${this.name}: a stream event is not JSON: ${event.data.slice(0, 200)}`, { status: response.status, cause });
        }
        if (chunk.error !== undefined) throw remoteError(this.name, response.status, chunk, undefined);
        const choice = chunk.choices?.[0];
        const piece = this.endpoint === 'chat' ? choice?.delta?.content : choice?.text;
        if (choice?.finish_reason) {
          sawFinish = true;
          end = { ...end, finishReason: finishReason(choice.finish_reason) };
        }
        if (chunk.usage) end = { ...end, usage: { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens } };
        if (typeof piece === 'string' && piece.length > 0) yield piece;
      }
      if (!finished && !sawFinish) throw new RemoteError(`${this.name}: the stream ended before 'data: [DONE]'.`, { status: response.status });
      finished = true;
      return end;
    } catch (error) {
      throw attempt.failure(error, this.name);
    } finally {
      attempt.end(!finished);
    }
  }

  private body(request: TextCompletionRequestV1, stream: boolean): string {
    if (!request || typeof request.prompt !== 'string') throw new InvalidArgumentError({ argument: 'prompt', value: request?.prompt, expected: 'a string' });
    if (!Number.isInteger(request.maxNewTokens) || request.maxNewTokens < 1) {
      throw new InvalidArgumentError({ argument: 'maxNewTokens', value: request.maxNewTokens, expected: 'an integer ≥ 1' });
    }
    const { systemPrompt, extraBody } = this.options;
    const input =
      this.endpoint === 'chat'
        ? { messages: [...(systemPrompt ? [{ role: 'system', content: systemPrompt }] : []), { role: 'user', content: request.prompt }] }
        : { prompt: request.prompt };
    return JSON.stringify({
      ...extraBody,
      model: this.model,
      ...input,
      max_tokens: request.maxNewTokens,
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.topP !== undefined ? { top_p: request.topP } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.stop && request.stop.length > 0 ? { stop: [...request.stop] } : {}),
      stream,
    });
  }

  /** Sends one attempt; resolves with a 2xx response (its timeout still armed) or throws a mapped error. */
  private async post(body: string, attempt: Attempt): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...this.options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.url, { method: 'POST', headers, body, signal: attempt.controller.signal });
    } catch (error) {
      throw attempt.failure(error, this.name);
    }
    if (response.ok) return response;
    let text = '';
    try {
      text = (await response.text()).slice(0, MAX_ERROR_BODY);
    } catch {
      // The status alone still says what happened.
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const error = remoteError(this.name, response.status, parsed, text);
    (error.details as Record<string, unknown>).retryAfter = response.headers.get('retry-after');
    throw response.status === 429 || response.status >= 500 ? retryable(error) : error;
  }

  /**
   * Runs `run` until it succeeds, a non-retryable error occurs, or `maxRetries` retries are spent. Each attempt
   * gets a fresh `Attempt`; it is ended here unless `keep` (a stream hands it on to its reader).
   */
  private async withRetries<T>(signal: AbortSignal | undefined, run: (attempt: Attempt) => Promise<T>, keep = false): Promise<T> {
    for (let retry = 0; ; retry++) {
      if (signal?.aborted) throw new AbortError({ reason: signal.reason });
      const attempt = new Attempt(signal, this.timeoutMs);
      let ok = false;
      try {
        const result = await run(attempt);
        ok = true;
        return result;
      } catch (error) {
        const mapped = attempt.failure(error, this.name);
        if (mapped instanceof RemoteError) (mapped.details as Record<string, unknown>).attempts = retry + 1;
        if (!isRetryable(mapped) || retry >= this.maxRetries) throw mapped;
        const retryAfter = (mapped as RemoteError).details.retryAfter as string | null | undefined;
        await sleep(backoffDelay(retry, this.backoff, retryAfter), signal);
      } finally {
        if (!ok || !keep) attempt.end(!ok);
      }
    }
  }
}

function finishReason(value: string | null | undefined): FinishReason {
  return value === 'length' ? 'length' : 'stop';
}

/** A RemoteError quoting the server's message from `{ error: { message, type, code } }`, `{ error: '…' }`, `{ message }`, `{ detail }` or the raw text. */
function remoteError(name: string, status: number, parsed: unknown, text: string | undefined): RemoteError {
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
  const error = new RemoteError(`${name}: HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`, { status });
  Object.assign(error.details, { serverMessage, type, code });
  return error;
}
