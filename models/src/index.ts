export type { Architecture, AttentionVariant, ModelSpec } from './spec.js';
export { FUSED_ATTENTION_VARIANTS } from './spec.js';
export { hasQkvBias, ropeFullTables, ropeHalfTables, validateSpec } from './spec.js';
export { buildTokenizer, bytesToUnicode, CHAT_TEMPLATE, SPECIAL_TOKENS } from './tokenizer.js';
export type { BuildTokenizerOptions, BuiltTokenizer, SpecialToken } from './tokenizer.js';
export { generateWeights } from './weights.js';
export type { Weights, WeightTensor } from './weights.js';
export { buildDecoderOnnx, hfConfig, writeDecoderModel } from './writer.js';
export type { WriteDecoderModelOptions, WrittenModel } from './writer.js';
export {
  applyRope,
  createReferenceModel,
  gatherCache,
  loadReferenceModel,
  referenceForward,
  rmsNorm,
} from './reference-forward.js';
export type { KvEntry, ReferenceForwardInput, ReferenceForwardOutput, ReferenceModel } from './reference-forward.js';
export { DEFAULT_WEIGHT_SCALE, FIXTURES, fixturePath, PERF_DRAFT_SPEC, PERF_SPEC, TINY_SIZES } from './fixtures.js';
export type { FixtureDef, FixtureName } from './fixtures.js';
export { GraphBuilder, readInitializers } from './onnx-builder.js';
export type { ReadTensor } from './onnx-builder.js';
export { MHA_TWIN_SPEC, TWIN_NAMES, TWIN_SPEC, writeAttentionTwins } from './twins.js';
export type { TwinName } from './twins.js';
export { convertToGguf, f32ToF16Bits, GGML_TYPE, GGUF_ALIGNMENT, ggufPath, gpt2TokenizerMetadata, permuteForInterleavedRope, writeGguf } from './gguf.js';
export type { ConvertToGgufOptions, GgufTensor, GgufValue } from './gguf.js';
