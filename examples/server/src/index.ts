/** @draft/example-server — an OpenAI-compatible HTTP server over @draft/runtime with per-request draft methods. */
export { createDraftServer, toHttpError, type DraftServer, type DraftServerOptions } from './server.js';
export { startServer, type RunningServer, type StartServerOptions } from './start.js';
export { FifoLimiter, QueueFullError } from './limiter.js';
export { HttpError, parseCompletionRequest, summariseKept, usageOf, type CompletionRequest, type DraftField } from './openai.js';
