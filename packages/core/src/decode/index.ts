export * from './native-decoder.js';
