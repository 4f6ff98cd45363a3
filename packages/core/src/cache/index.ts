export * from './ragged-kv-store.js';
