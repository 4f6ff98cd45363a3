import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, truncate } from './http-error.js';

/** Who may call the server: a bearer key, browser origins (CORS), and the Host names it answers to. */
export interface GuardOptions {
  apiKey?: string;
  corsOrigins: readonly string[];
  /** Undefined = any Host. */
  allowedHosts?: readonly string[];
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);

/** Host names a loopback listener answers to; undefined (any) for other addresses, whose public names we cannot know. */
export function loopbackHosts(host: string): readonly string[] | undefined {
  return LOOPBACK.has(host) || host.startsWith('127.') ? ['localhost', '127.0.0.1', '[::1]'] : undefined;
}

/** `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.split(':')[0];
}

/**
 * A local server is reachable from any web page the user opens, so (1) a foreign `Host` is refused (DNS
 * rebinding), (2) a request carrying an `Origin` (every browser POST does) is refused unless `corsOrigins` allows
 * it, and allowed ones get CORS headers and their preflight answered, (3) with an API key, `/v1` routes need
 * `Authorization: Bearer <key>`. Returns true when it has answered the request itself (a preflight).
 * JSON-only bodies (415 otherwise) close the remaining gap: a cross-site `text/plain` POST needs no preflight.
 */
export function checkRequest(request: FastifyRequest, reply: FastifyReply, guard: GuardOptions): boolean {
  const host = request.headers.host;
  if (guard.allowedHosts && (host === undefined || !guard.allowedHosts.includes(hostName(host)))) {
    throw new HttpError(403, `Host '${truncate(host ?? '', 80)}' is not served here (allowed: ${guard.allowedHosts.join(', ')}).`, 'invalid_request_error', 'forbidden_host');
  }
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (!guard.corsOrigins.includes('*') && !guard.corsOrigins.includes(origin)) {
      throw new HttpError(403, `Origin '${truncate(origin, 80)}' is not allowed; start the server with --cors ORIGIN to allow it.`, 'invalid_request_error', 'forbidden_origin');
    }
    reply.header('access-control-allow-origin', guard.corsOrigins.includes('*') ? '*' : origin);
    reply.header('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, OPTIONS')
        .header('access-control-allow-headers', 'authorization, content-type')
        .header('access-control-max-age', '600')
        .send();
      return true;
    }
  }
  if (guard.apiKey !== undefined && request.url.startsWith('/v1') && !bearerMatches(request.headers.authorization, guard.apiKey)) {
    throw new HttpError(401, 'Missing or wrong API key: send Authorization: Bearer <key>.', 'invalid_request_error', 'invalid_api_key', null, { 'www-authenticate': 'Bearer' });
  }
  return false;
}

/** Constant-time comparison (of digests, so the lengths match). */
function bearerMatches(header: string | undefined, key: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(match[1].trim()), digest(key));
}
