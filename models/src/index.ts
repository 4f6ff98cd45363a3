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
export { floatToHalf, toHalfArray } from './float16.js';
export { ensureOpset, matMulWeight, producers, pruneUnused } from './convert-graph.js';
export type { MatMulWeight } from './convert-graph.js';
export { convertToQ4, quantizeQ4 } from './convert-q4.js';
export type { QuantizedBlocks } from './convert-q4.js';
export { convertToInt8, quantizeColumns } from './convert-int8.js';
export type { WeightType } from './convert-int8.js';
export { convertToFp16, FLOAT16, roundWeightsToHalf } from './convert-fp16.js';
export { withFloat16KvIo } from './convert-kv16.js';
export { externalDataFileNames, writeExternalData } from './convert-external-data.js';
export { writeDtypeFixtures } from './dtype-fixtures.js';
export type { DtypeFixtureDirs } from './dtype-fixtures.js';
export { convertToGguf, f32ToF16Bits, GGML_TYPE, GGUF_ALIGNMENT, ggufPath, gpt2TokenizerMetadata, permuteForInterleavedRope, writeGguf } from './gguf.js';
export type { ConvertToGgufOptions, GgufTensor, GgufValue } from './gguf.js';
