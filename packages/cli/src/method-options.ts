// Moved to @draft/methods with method planning; re-exported here for the CLI's modules.
export {
  parseMethodOptions,
  parseMethodOptionValue,
  formatMethodOptions,
  methodLabel,
  withMethodOptions,
  type MethodOptionValue,
  type MethodOptionMap,
  type MethodOptions,
} from '@draft/methods';
