/** @draft/specpc — SpecPC prompt compression and the SpecKV-PC cascade. */
export { neighbourOffsets, type SelectSpecPCOptions, selectSpecPC } from './select-specpc.js';
export {
  resolveStartingLayerIndex,
  type ScoreSpecPCInput,
  scoreSpecPC,
  type SpecPCDecodeLayerInput,
  type SpecPCLayerInput,
  specPCQueryWeights,
} from './score-specpc.js';
export {
  SPECPC_DEFAULTS,
  type SpecPCConfig,
  SpecPCCompressor,
  type SpecPCOptions,
  type SpecPCResult,
  specPC,
} from './specpc-compressor.js';
export {
  MAX_PENDING,
  type RememberedLookahead,
  ReusedLookahead,
  type ReusedLookaheadConfig,
  type ReusedLookaheadOptions,
  SPECKV_PC_DEFAULTS,
  type SpecKVPC,
  type SpecKVPCConfig,
  type SpecKVPCOptions,
  specKVPC,
} from './speckv-pc.js';
export { type RegisterSpecPCOptions, registerSpecPC } from './register.js';
