import { DraftError } from '@draft/core';

/** Longest user-supplied value an error message quotes; the rest is cut (a 900 KB string must not come back). */
export const MAX_ECHO_CHARS = 80;
/** Longest error message the server sends, whatever produced it. */
export const MAX_MESSAGE_CHARS = 1000;

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
    super(truncate(message, MAX_MESSAGE_CHARS));
    this.name = 'HttpError';
  }

  toJSON(): { error: { message: string; type: string; code: string | null; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

/** A 400 `invalid_request_error` naming the offending field. */
export const invalid = (message: string, param: string | null, code = 'invalid_value') => new HttpError(400, message, 'invalid_request_error', code, param);

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/**
 * A short description of a request value for an error message. Never serialises a whole value: strings are
 * cut, containers are described by kind and size, so neither a huge nor a deeply nested value (which would
 * overflow the stack in JSON.stringify) can make the error itself fail or echo the input back.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(truncate(value, MAX_ECHO_CHARS));
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** Maps typed @draft errors to HTTP statuses; anything unknown is a 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (DraftError.isInstance(error)) {
    const details = error.details as Record<string, unknown>;
    const argument = typeof details.argument === 'string' ? details.argument : null;
    switch (error.code) {
      case 'UNKNOWN_METHOD':
        return new HttpError(400, error.message, 'invalid_request_error', 'unknown_method', 'draft.method');
      case 'INVALID_ARGUMENT':
        // planMethod names method options as the CLI flag; the request field is draft.options.
        return new HttpError(400, error.message, 'invalid_request_error', 'invalid_value', argument === '--method-option' ? 'draft.options' : argument);
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
  // Fastify's own request errors (body too large, bad media type, malformed JSON or URL) carry a 4xx statusCode.
  const framework = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof framework?.statusCode === 'number' && framework.statusCode >= 400 && framework.statusCode < 500) {
    const status = framework.statusCode;
    const code = FRAMEWORK_CODES[String(framework.code)] ?? (status === 413 ? 'request_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request');
    return new HttpError(status, String(framework.message), 'invalid_request_error', code, null, status === 413 ? { connection: 'close' } : {});
  }
  return new HttpError(500, String((error as Error)?.message ?? error), 'server_error', 'internal');
}

const FRAMEWORK_CODES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_BAD_URL: 'invalid_url',
};
