export * from './define-cache-policy.js';
export * from './base-cache-policy.js';
