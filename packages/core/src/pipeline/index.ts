export * from './create-pipeline.js';
