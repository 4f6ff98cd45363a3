export * from './window-scores.js';
export * from './pool1d.js';
export * from './top-k.js';
export * from './gather.js';
export * from './kept-indices.js';
