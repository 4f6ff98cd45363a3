export * from './create-pipeline.js';
export {
  CROSS_BUDGET_MAX_ROUNDS,
  CROSS_BUDGET_TOLERANCE,
  type CrossCompressionResult,
  compressAcrossTokenizers,
  DEFAULT_MAX_UNKNOWN_TOKEN_FRACTION,
  keptText,
} from './compress-stage.js';
