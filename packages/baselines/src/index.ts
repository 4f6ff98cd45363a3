/**
 * @draft/baselines — the KV-cache baselines of "Draft-based Approximate Inference for LLMs" (Galim et al. 2025):
 * SnapKV, PyramidKV, AdaKV, StreamingLLM, H2O, LAQ++, as pure selection functions over typed arrays and as
 * `CachePolicyV1`s, plus decode-time policies. Side-effect free: call `registerBaselines()` to register them.
 */
export { SNAPKV_DEFAULTS, type PoolType, type SelectSnapKVOptions, selectSnapKV, selectSnapKVAsync } from './select-snapkv.js';
export {
  PYRAMIDKV_DEFAULT_BETA,
  type PyramidLayerBudgetsOptions,
  pyramidLayerBudgets,
  type SelectPyramidKVOptions,
  selectPyramidKV,
  selectPyramidKVAsync,
} from './select-pyramidkv.js';
export { ADAKV_DEFAULT_ALPHA, type AdaKVHeadBudgetsOptions, adaKVHeadBudgets, type SelectAdaKVOptions, selectAdaKV, selectAdaKVAsync } from './select-adakv.js';
export { type SelectStreamingLLMOptions, selectStreamingLLM } from './select-streamingllm.js';
export { type SelectH2OOptions, selectH2O, selectH2OAsync } from './select-h2o.js';
export { LAQ_DEFAULTS, type SelectLAQOptions, selectLAQ, selectLAQAsync } from './select-laq.js';
export { type SnapKVConfig, type SnapKVOptions, SnapKVPolicy, snapkv } from './snapkv.js';
export { type PyramidKVOptions, PyramidKVPolicy, pyramidkv } from './pyramidkv.js';
export { type AdaKVOptions, AdaKVPolicy, adakv } from './adakv.js';
export { type LAQOptions, LAQPolicy, laq } from './laq.js';
export { type StreamingLLMOptions, StreamingLLMPolicy, streamingllm } from './streamingllm.js';
export { type H2OOptions, H2OPolicy, h2o } from './h2o.js';
export { TargetPseudoLookahead, type TargetPseudoLookaheadOptions, targetPseudoLookahead } from './target-pseudo-lookahead.js';
export { SlidingWindowDecode, type SlidingWindowDecodeOptions, slidingWindowDecode } from './sliding-window-decode.js';
export { PeriodicRescore, type PeriodicRescoreOptions, periodicRescore } from './periodic-rescore.js';
export type { WindowPolicyOptions } from './internal/window-policy.js';
export type { BudgetOption } from '@draft/core';
export { policies, registerBaselines } from './register.js';
export * from './prompt-compression/index.js';
