export * from './policy-registry.js';
export * from './reference-config.js';
export * from './options-from-config.js';
