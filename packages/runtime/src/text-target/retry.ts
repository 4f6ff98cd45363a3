import { AbortError } from '@draft/core';

/** Backoff settings of an `OpenAITextTarget`. */
export interface BackoffOptions {
  /** Delay before the first retry (before jitter). */
  initialDelayMs: number;
  /** Largest delay, also the cap for a server's `Retry-After`. */
  maxDelayMs: number;
  /** Uniform [0, 1) source for jitter (tests pass a fixed one). */
  random: () => number;
}

/**
 * Delay before retry number `attempt` (0-based): exponential backoff with "full jitter" (AWS Architecture
 * Blog, *Exponential Backoff and Jitter*, 2015): uniform in [0, min(max, initial · 2^attempt)], so clients
 * that failed together do not retry together. A server's `Retry-After` (seconds or an HTTP date) wins, capped
 * at `maxDelayMs`.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, retryAfter?: string | null): number {
  const fromHeader = parseRetryAfter(retryAfter);
  if (fromHeader !== undefined) return Math.min(fromHeader, options.maxDelayMs);
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt);
  return Math.floor(options.random() * ceiling);
}

function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Waits `ms`, or throws AbortError as soon as `signal` fires. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError({ reason: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError({ reason: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
