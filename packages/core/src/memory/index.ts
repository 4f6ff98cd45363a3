export * from './heap-trimmer.js';
