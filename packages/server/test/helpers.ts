import { fileURLToPath } from 'node:url';
import { parseSseStream } from '@draft/runtime';

// biome-ignore lint/suspicious/noExplicitAny: JSON from the wire, checked field by field in the tests
export type Json = any;

export const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

// ~300 target tokens on the bundled pair: long enough for small budgets to bite.
export const LONG_PROMPT = Array.from({ length: 60 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');

export const JSON_HEADERS = { 'content-type': 'application/json' };

export async function post(base: string, path: string, body: unknown, init: RequestInit = {}): Promise<{ status: number; json: Json; headers: Headers }> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function get(base: string, path: string): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, json: await response.json() };
}

/** Every `data:` payload of an SSE response, '[DONE]' included as the string. */
export async function sse(response: Response): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const event of parseSseStream(response.body as unknown as AsyncIterable<Uint8Array>)) {
    out.push(event.data === '[DONE]' ? '[DONE]' : JSON.parse(event.data));
  }
  return out;
}

export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
