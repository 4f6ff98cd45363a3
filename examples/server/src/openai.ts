import type { ChatMessage, GenerationResultV1 } from '@draft/core';

/** An error answered as `{ error: { message, type, code, param } }` with an HTTP status (OpenAI's error shape). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toJSON(): { error: { message: string; type: string; code: string | null; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

export const invalid = (message: string, param: string | null, code = 'invalid_value') => new HttpError(400, message, 'invalid_request_error', code, param);

/** The `draft` extension field of a request body. */
export interface DraftField {
  method: string;
  budget?: number;
  window?: number;
}

/** A validated chat or completions request. */
export interface CompletionRequest {
  kind: 'chat' | 'completions';
  model: string | undefined;
  messages?: ChatMessage[];
  prompt?: string;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stop?: string[];
  stream: boolean;
  includeUsage: boolean;
  draft: DraftField;
}

export interface ParseLimits {
  defaultMaxTokens: number;
  maxTokensLimit: number;
  defaultMethod: string;
  /** Largest accepted budget (the target's max positions). */
  maxBudget: number;
}

function optionalNumber(body: Record<string, unknown>, key: string, check: (v: number) => boolean, expected: string, param = key): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw invalid(`'${param}' must be ${expected}; got ${JSON.stringify(v)}.`, param);
  return v;
}

const isInt = (v: number) => Number.isInteger(v);

/** Validates an OpenAI chat/completions body plus the `draft` field; throws HttpError(400) naming the field. */
export function parseCompletionRequest(kind: 'chat' | 'completions', raw: unknown, limits: ParseLimits): CompletionRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('The request body must be a JSON object.', null, 'invalid_body');
  const body = raw as Record<string, unknown>;
  if (body.model !== undefined && typeof body.model !== 'string') throw invalid("'model' must be a string.", 'model');
  let messages: ChatMessage[] | undefined;
  let prompt: string | undefined;
  if (kind === 'chat') {
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid("'messages' must be a non-empty array.", 'messages');
    messages = body.messages.map((m, i) => {
      const role = (m as { role?: unknown })?.role;
      let content = (m as { content?: unknown })?.content;
      if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'developer') {
        throw invalid(`'messages[${i}].role' must be 'system', 'developer', 'user' or 'assistant'.`, `messages[${i}].role`);
      }
      // Content parts: only text parts are supported.
      if (Array.isArray(content)) {
        if (!content.every((p) => p?.type === 'text' && typeof p.text === 'string')) throw invalid(`'messages[${i}].content' may only hold text parts.`, `messages[${i}].content`);
        content = content.map((p) => p.text).join('');
      }
      if (typeof content !== 'string') throw invalid(`'messages[${i}].content' must be a string.`, `messages[${i}].content`);
      return { role: role === 'developer' ? 'system' : role, content };
    });
  } else {
    const p = body.prompt;
    if (typeof p === 'string') prompt = p;
    else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
    else throw invalid("'prompt' must be a string (or an array of one string).", 'prompt');
    if (prompt.length === 0) throw invalid("'prompt' must not be empty.", 'prompt');
  }
  const n = optionalNumber(body, 'n', (v) => v === 1, '1 (one choice per request)');
  void n;
  const maxKey = body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optionalNumber(body, maxKey, (v) => isInt(v) && v >= 1 && v <= limits.maxTokensLimit, `an integer in [1, ${limits.maxTokensLimit}]`) ?? limits.defaultMaxTokens;
  const temperature = optionalNumber(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number in [0, 2]');
  const topP = optionalNumber(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const topK = optionalNumber(body, 'top_k', (v) => isInt(v) && v >= 0, 'an integer ≥ 0');
  const seed = optionalNumber(body, 'seed', (v) => isInt(v) && v >= 0, 'an integer ≥ 0');
  let stop: string[] | undefined;
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) {
    if (body.stop.length > 4 || !body.stop.every((s) => typeof s === 'string' && s.length > 0)) throw invalid("'stop' must be a string or up to 4 non-empty strings.", 'stop');
    stop = body.stop as string[];
  } else if (body.stop !== undefined && body.stop !== null) throw invalid("'stop' must be a string or an array of strings.", 'stop');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalid("'stream' must be a boolean.", 'stream');
  const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  return {
    kind,
    model: body.model as string | undefined,
    messages,
    prompt,
    maxTokens,
    temperature,
    topP,
    topK,
    seed,
    stop: stop && stop.length > 0 ? stop : undefined,
    stream: body.stream === true,
    includeUsage,
    draft: parseDraftField(body.draft, limits),
  };
}

function parseDraftField(raw: unknown, limits: ParseLimits): DraftField {
  if (raw === undefined || raw === null) return { method: limits.defaultMethod };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid("'draft' must be an object { method, budget?, window? }.", 'draft');
  const d = raw as Record<string, unknown>;
  const method = d.method ?? limits.defaultMethod;
  if (typeof method !== 'string' || method.length === 0) throw invalid("'draft.method' must be a method name.", 'draft.method');
  const budget = optionalNumber(d, 'budget', (v) => isInt(v) && v >= 1 && v <= limits.maxBudget, `an integer in [1, ${limits.maxBudget}]`, 'draft.budget');
  const window = optionalNumber(d, 'window', (v) => isInt(v) && v >= 1 && (budget === undefined || v <= budget), `an integer in [1, ${budget ?? limits.maxBudget}] (at most the budget)`, 'draft.window');
  for (const key of Object.keys(d)) {
    if (key !== 'method' && key !== 'budget' && key !== 'window') throw invalid(`Unknown field 'draft.${key}'; expected method, budget, window.`, `draft.${key}`);
  }
  return { method, budget, window };
}

/** min / max / mean of `keptKvTokens[layer][kvHead]`, or null when the result has none (text targets, draft-only). */
export function summariseKept(kept: readonly (readonly number[])[]): { min: number; max: number; mean: number; layers: number; kvHeads: number } | null {
  const all = kept.flat();
  if (all.length === 0) return null;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let sum = 0;
  for (const v of all) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { min, max, mean: sum / all.length, layers: kept.length, kvHeads: kept[0]?.length ?? 0 };
}

/** The response `usage`: OpenAI's three counts plus `draft` (method, budget, compression and KV facts, timings). */
export function usageOf(result: GenerationResultV1, draft: DraftField) {
  const u = result.usage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    draft: {
      method: draft.method,
      budget: draft.budget ?? null,
      window: draft.window ?? null,
      promptTokens: u.promptTokens,
      compressedPromptTokens: u.compressedPromptTokens,
      keptKvTokens: summariseKept(u.keptKvTokens),
      draftTokens: u.draftTokens,
      kvBytes: result.kvBytes,
      timings: result.timings,
    },
  };
}

export function finishReason(reason: GenerationResultV1['finishReason']): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}
