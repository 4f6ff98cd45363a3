/** @draft/runtime — ONNX Runtime decoders with query capture, a position-aware KV cache and generation. */
export { DEFAULT_PREFILL_CHUNK, defaultPrefillChunk, loadModel, OrtCausalLM, PREFILL_SCORE_BUDGET_BYTES } from './causal-lm.js';
export type { GenerateOptions, GenerationStream, LoadModelOptions, OrtForwardRequest, OrtForwardResult, PromptInput } from './causal-lm.js';
export { OrtKvCache } from './kv-cache.js';
export type { KvPoolStats } from './kv-pool.js';
export type { DecodeBatchStats, SessionMemoryStats } from './worker-protocol.js';
export { HfTokenizer } from './tokenizer.js';
export { readModelFolder } from './model-folder.js';
export type { ModelFolder } from './model-folder.js';
export { instrumentGraph } from './graph/instrument.js';
export type { AttentionPattern, InstrumentedGraph, QueryCaptureSpec } from './graph/instrument.js';
export { applyRopeInPlace, RopeTableCache, ropeTables } from './rope.js';
export { type RopeParameters, ropeInverseFrequencies, SUPPORTED_ROPE_TYPES } from './rope-scaling.js';
export { type ArchitectureConfig, KNOWN_ARCHITECTURES, type LayerAttentionType, parseArchitecture } from './architectures.js';
export {
  type AttentionStyle,
  INSPECTION_SCHEMA_VERSION,
  type InspectModelOptions,
  inspectModel,
  type LayerInspection,
  type MethodInspection,
  type ModelInspection,
  type OnnxFileInspection,
} from './inspect.js';
export { checkConfigAgainstGraph, type ConfigHeads, type FusedHeads, type GraphIo, readGraphIo, type TensorIo } from './graph/graph-io.js';
export { type FusedAttentionNode, findFusedAttention } from './graph/fused-attention.js';
export const PACKAGE_NAME = '@draft/runtime';
export { OpenAITextTarget, type OpenAITextTargetOptions, parseSseStream, SseParser, type SseEvent } from './text-target/index.js';
export { DTYPE_SUFFIXES, MODEL_DTYPES, resolveModelFiles, validateDtype } from './model-files.js';
export type { KvCacheDtype, ModelDtype, ModelFileOptions, ModelFiles } from './model-files.js';
export type { FloatType } from './graph/kv-io.js';
export * from './document-cache/index.js';
export { type ModelSource, modelSourceOf } from './model-source.js';
