/** @draft/server — an OpenAI-compatible HTTP server over @draft/runtime with per-request draft methods. */
export { createDraftServer, type DraftServer, type DraftServerOptions } from './server.js';
export { startServer, type RunningServer, type StartServerOptions } from './start.js';
export { AddressInUseError } from './errors.js';
export { FifoLimiter, QueueFullError } from './limiter.js';
export { HttpError, toHttpError, describeValue } from './http-error.js';
export { parseCompletionRequest, summariseKept, usageOf, type CompletionRequest, type DraftField, type ParseLimits } from './openai.js';
