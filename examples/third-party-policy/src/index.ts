export { KeyNormPolicy, type KeyNormOptions, register } from './keynorm.js';
