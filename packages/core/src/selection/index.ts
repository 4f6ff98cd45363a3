export * from './validate-window.js';
export * from './window-selection.js';
export * from './budget-option.js';
export * from './selection-context.js';
