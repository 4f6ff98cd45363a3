/** @draft/core/testing — deterministic fakes for tests of policies, pipelines and backends. */
export * from './fake-tokenizer.js';
export * from './fake-kv-cache.js';
export * from './fake-causal-lm.js';
export * from './fake-text-target.js';
export * from './fake-selection-context.js';
export * from './scripted-causal-lm.js';
export * from './policy-contract.js';
