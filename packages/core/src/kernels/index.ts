export * from './kernel-backend.js';
export * from './reference-backend.js';
export * from './registry.js';
export * from './kernel-program.js';
