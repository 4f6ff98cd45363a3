export * from './sampler.js';
export * from './stopping.js';
export * from './decode-loop.js';
export * from './async-iterable.js';
export * from './greedy-continue.js';
export * from './greedy-scoring-run.js';
export * from './draft-tokens-for-target.js';
export * from './forward-with-prefix.js';
