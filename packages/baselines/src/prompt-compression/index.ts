/** Prompt-compression baselines (stage 1 of the pipeline): SpecPrefill, self-information, recency, random. */
export type { CompressionResult } from './shared.js';
export {
  type ScoreSpecPrefillInput,
  scoreSpecPrefill,
  type SpecPrefillConfig,
  SpecPrefillCompressor,
  type SpecPrefillLayerInput,
  type SpecPrefillOptions,
  selectSpecPrefillChunks,
} from './spec-prefill.js';
export {
  type SelfInformationConfig,
  SelfInformationCompressor,
  type SelfInformationOptions,
  selectSelfInformation,
  surprisal,
} from './self-information.js';
export { type RecencyConfig, RecencyCompressor, type RecencyOptions, selectRecency } from './recency.js';
export { type RandomConfig, RandomCompressor, type RandomOptions, selectRandom } from './random.js';
export { registerPromptCompressionBaselines } from './register.js';
