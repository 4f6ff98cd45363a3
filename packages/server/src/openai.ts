import type { ChatMessage, GenerationResultV1 } from '@draft/core';
import type { MethodOptionMap, MethodOptionValue } from '@draft/methods';
import { describeValue, invalid, MAX_ECHO_CHARS, truncate } from './http-error.js';

/** The `draft` extension field of a request body. */
export interface DraftField {
  method: string;
  budget?: number;
  window?: number;
  /** Options of the method's policy (as `--method-option`), e.g. `{ kernelSize: 8 }`. */
  options?: MethodOptionMap;
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
  /** The request's seed; undefined when absent (the server then draws one). */
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  stop?: string[];
  stream: boolean;
  includeUsage: boolean;
  draft: DraftField;
}

export interface ParseLimits {
  defaultMaxTokens: number;
  maxTokensLimit: number;
  defaultMethod: string;
  /** Largest accepted budget (the target's max positions); checked with the method (validateMethodSettings). */
  maxBudget: number;
}

/** Longest method name or option name accepted (they are echoed in errors). */
const MAX_NAME_CHARS = 64;

/** Fields read (or harmlessly ignored: `user`, `metadata`, `store`, `stream_options`) by both endpoints. */
const COMMON_FIELDS = new Set([
  'model',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop',
  'stream',
  'stream_options',
  'presence_penalty',
  'frequency_penalty',
  'repetition_penalty',
  'n',
  'user',
  'metadata',
  'store',
  'draft',
]);
const FIELDS = {
  chat: new Set([...COMMON_FIELDS, 'messages', 'max_completion_tokens']),
  completions: new Set([...COMMON_FIELDS, 'prompt']),
};

/**
 * OpenAI parameters this server does not implement, with the values that mean "not used" (those pass). Any
 * other value is a 400 naming the parameter: silently ignoring e.g. `tools` or `response_format` would hand the
 * client an answer of a different kind than it asked for.
 */
const UNSUPPORTED: Readonly<Record<string, (value: unknown) => boolean>> = {
  logprobs: (v) => v === false || v === null,
  top_logprobs: (v) => v === null || v === 0,
  tools: (v) => v === null || (Array.isArray(v) && v.length === 0),
  tool_choice: (v) => v === null || v === 'none',
  parallel_tool_calls: (v) => v === null,
  functions: (v) => v === null || (Array.isArray(v) && v.length === 0),
  function_call: (v) => v === null || v === 'none',
  response_format: (v) => v === null || (isObject(v) && v.type === 'text' && Object.keys(v).length === 1),
  logit_bias: (v) => v === null || (isObject(v) && Object.keys(v).length === 0),
  best_of: (v) => v === null || v === 1,
  echo: (v) => v === false || v === null,
  suffix: (v) => v === null || v === '',
  modalities: (v) => v === null || (Array.isArray(v) && v.length === 1 && v[0] === 'text'),
  audio: (v) => v === null,
  prediction: (v) => v === null,
  reasoning_effort: (v) => v === null,
  web_search_options: (v) => v === null,
  service_tier: (v) => v === null || v === 'auto' || v === 'default',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalNumber(body: Record<string, unknown>, key: string, check: (v: number) => boolean, expected: string, param = key): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw invalid(`'${param}' must be ${expected}; got ${describeValue(v)}.`, param);
  return v;
}

const isInt = (v: number) => Number.isInteger(v);

/**
 * Validates an OpenAI chat/completions body plus the `draft` field; throws HttpError(400) naming the field.
 * Unsupported OpenAI parameters and unknown fields are refused by name rather than ignored.
 */
export function parseCompletionRequest(kind: 'chat' | 'completions', raw: unknown, limits: ParseLimits): CompletionRequest {
  if (!isObject(raw)) throw invalid('The request body must be a JSON object.', null, 'invalid_body');
  const body = raw;
  for (const key of Object.keys(body)) {
    const accepts = UNSUPPORTED[key];
    if (accepts) {
      if (!accepts(body[key])) throw invalid(`'${key}' is not supported by this server; leave it out.`, key, 'unsupported_parameter');
    } else if (!FIELDS[kind].has(key)) {
      const name = truncate(key, MAX_ECHO_CHARS);
      throw invalid(`Unrecognized request argument supplied: '${name}'.`, name, 'unknown_parameter');
    }
  }
  if (body.model !== undefined && body.model !== null && typeof body.model !== 'string') throw invalid("'model' must be a string.", 'model');
  let messages: ChatMessage[] | undefined;
  let prompt: string | undefined;
  if (kind === 'chat') {
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid("'messages' must be a non-empty array.", 'messages');
    messages = body.messages.map((m, i) => {
      const role = (m as { role?: unknown })?.role;
      let content = (m as { content?: unknown })?.content;
      if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'developer') {
        throw invalid(`'messages[${i}].role' must be 'system', 'developer', 'user' or 'assistant'; got ${describeValue(role)}.`, `messages[${i}].role`);
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
  optionalNumber(body, 'n', (v) => v === 1, '1 (one choice per request)');
  const maxKey = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optionalNumber(body, maxKey, (v) => isInt(v) && v >= 1 && v <= limits.maxTokensLimit, `an integer in [1, ${limits.maxTokensLimit}]`) ?? limits.defaultMaxTokens;
  const temperature = optionalNumber(body, 'temperature', (v) => v >= 0 && v <= 2, 'a number in [0, 2]');
  const topP = optionalNumber(body, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const topK = optionalNumber(body, 'top_k', (v) => isInt(v) && v >= 0, 'an integer ≥ 0');
  const seed = optionalNumber(body, 'seed', (v) => isInt(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER, 'an integer ≥ 0');
  const presencePenalty = optionalNumber(body, 'presence_penalty', (v) => v >= -2 && v <= 2, 'a number in [-2, 2]');
  const frequencyPenalty = optionalNumber(body, 'frequency_penalty', (v) => v >= -2 && v <= 2, 'a number in [-2, 2]');
  const repetitionPenalty = optionalNumber(body, 'repetition_penalty', (v) => v > 0 && v <= 10, 'a number in (0, 10]');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalid("'stream' must be a boolean.", 'stream');
  if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options)) throw invalid("'stream_options' must be an object.", 'stream_options');
  const includeUsage = (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  return {
    kind,
    model: (body.model ?? undefined) as string | undefined,
    messages,
    prompt,
    maxTokens,
    temperature,
    topP,
    topK,
    seed,
    presencePenalty,
    frequencyPenalty,
    repetitionPenalty,
    stop: parseStop(body.stop),
    stream: body.stream === true,
    includeUsage,
    draft: parseDraftField(body.draft, limits),
  };
}

/** `stop`: a string or up to 4 strings. Empty strings stop nothing, so `""` and `[""]` both mean no stop. */
function parseStop(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  const list = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string')) throw invalid("'stop' must be a string or an array of up to 4 strings.", 'stop');
  const stop = list.filter((s) => s.length > 0);
  return stop.length > 0 ? stop : undefined;
}

function parseDraftField(raw: unknown, limits: ParseLimits): DraftField {
  if (raw === undefined || raw === null) return { method: limits.defaultMethod };
  if (!isObject(raw)) throw invalid("'draft' must be an object { method, budget?, window?, options? }.", 'draft');
  const d = raw;
  for (const key of Object.keys(d)) {
    if (key !== 'method' && key !== 'budget' && key !== 'window' && key !== 'options') {
      const param = `draft.${truncate(key, MAX_ECHO_CHARS)}`;
      throw invalid(`Unknown field '${param}'; expected method, budget, window, options.`, param);
    }
  }
  const method = d.method ?? limits.defaultMethod;
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_NAME_CHARS) {
    throw invalid(`'draft.method' must be a method name (at most ${MAX_NAME_CHARS} characters); got ${describeValue(method)}.`, 'draft.method');
  }
  // Only the JSON type here: ranges (and a KV method's window below its budget) are checked once the method is
  // planned, by @draft/methods' validateMethodSettings, the same check `draft generate` runs.
  const budget = optionalNumber(d, 'budget', () => true, 'a number', 'draft.budget');
  const window = optionalNumber(d, 'window', () => true, 'a number', 'draft.window');
  let options: Record<string, MethodOptionValue> | undefined;
  if (d.options !== undefined && d.options !== null) {
    if (!isObject(d.options)) throw invalid("'draft.options' must be an object of option names to numbers, booleans or strings.", 'draft.options');
    options = {};
    for (const [name, value] of Object.entries(d.options)) {
      const param = `draft.options.${truncate(name, MAX_ECHO_CHARS)}`;
      if (name.length > MAX_NAME_CHARS) throw invalid(`Option names have at most ${MAX_NAME_CHARS} characters.`, 'draft.options');
      if (!(typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.length <= MAX_NAME_CHARS))) {
        throw invalid(`'${param}' must be a finite number, a boolean or a short string; got ${describeValue(value)}.`, param);
      }
      options[name] = value;
    }
  }
  return { method, budget, window, ...(options && Object.keys(options).length > 0 ? { options } : {}) };
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

/**
 * The response `usage`: OpenAI's three counts plus `draft` (method, budget, options, the sampling seed used,
 * compression and KV facts, timings).
 */
export function usageOf(result: GenerationResultV1, draft: DraftField, seed: number | null = null) {
  const u = result.usage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    draft: {
      method: draft.method,
      budget: draft.budget ?? null,
      window: draft.window ?? null,
      options: draft.options ?? null,
      seed,
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
