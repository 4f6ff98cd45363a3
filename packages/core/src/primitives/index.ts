export * from './window-scores.js';
export * from './pool1d.js';
export * from './top-k.js';
export * from './gather.js';
export * from './kept-indices.js';
export * from './float16.js';
export * from './ragged-attention.js';
