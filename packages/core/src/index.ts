/** @draft/core — plugin interfaces (spec v1), budgets, typed errors and scoring primitives. */
export * from './spec/index.js';
export * from './primitives/index.js';
export * from './generation/index.js';
export * from './validation/index.js';
export * from './selection/index.js';
export * from './kernels/index.js';
export * from './registry/index.js';
export * from './policies/index.js';
export * from './pipeline/index.js';
export * from './cache/index.js';
export * from './memory/index.js';
export * from './decode/index.js';
