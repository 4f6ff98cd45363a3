/** @draft/runtime — ONNX Runtime decoders with query capture, a position-aware KV cache and generation. */
export { loadModel, OrtCausalLM } from './causal-lm.js';
export type { GenerateOptions, GenerationStream, LoadModelOptions, OrtForwardRequest, OrtForwardResult, PromptInput } from './causal-lm.js';
export { OrtKvCache } from './kv-cache.js';
export { HfTokenizer } from './tokenizer.js';
export { readModelFolder } from './model-folder.js';
export type { ModelFolder } from './model-folder.js';
export { instrumentGraph } from './graph/instrument.js';
export type { AttentionPattern, InstrumentedGraph, QueryCaptureSpec } from './graph/instrument.js';
export { applyRopeInPlace, ropeTables } from './rope.js';
export const PACKAGE_NAME = '@draft/runtime';
export { OpenAITextTarget, type OpenAITextTargetOptions, parseSseStream, SseParser, type SseEvent } from './text-target/index.js';
