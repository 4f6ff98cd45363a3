export * from './policy-registry.js';
export * from './reference-config.js';
