export * from './arguments.js';
