/**
 * @draft/speckv — SpecKV (Galim et al., "Draft-based Approximate Inference for LLMs", 2025): drop prompt KV
 * entries scored by the target's attention from a draft's predicted answer. Side-effect free: call
 * `registerSpecKV()` to make `{ type: 'speckv' }` configs resolvable through core's `createPolicy`.
 */
export { SPECKV_DEFAULTS, type PoolType, type SelectSpecKVOptions, selectSpecKV, selectSpecKVAsync } from './select-speckv.js';
export { type SpecKVConfig, type SpecKVOptions, SpecKVPolicy, speckv } from './speckv-policy.js';
export { DraftLookahead, type DraftLookaheadConfig, type DraftLookaheadOptions, draftLookahead } from './draft-lookahead.js';
export type { BudgetOption } from '@draft/core';
export { policies, registerSpecKV } from './register.js';
