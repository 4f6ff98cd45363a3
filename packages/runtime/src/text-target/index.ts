export { OpenAITextTarget, type OpenAITextTargetOptions } from './openai-text-target.js';
export { parseSseStream, SseParser, type SseEvent } from './sse.js';
