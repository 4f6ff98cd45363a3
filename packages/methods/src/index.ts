/**
 * @draft/methods — method planning shared by the CLI and the server: a method name (`speckv`, `specpc`, a
 * registered plugin policy, …) with a budget, window and options becomes the stages of `createPipeline`.
 * It depends only on core and the method packages, so the server can use it without depending on the CLI.
 */
export { planMethod, knownMethods, registerBuiltInMethods, BUILT_IN_METHODS, type MethodPlan, type MethodSettings } from './methods.js';
export { validateMethodSettings, type MethodSettingsLimits } from './method-settings.js';
export {
  parseMethodOptions,
  parseMethodOptionValue,
  formatMethodOptions,
  methodLabel,
  withMethodOptions,
  type MethodOptionValue,
  type MethodOptionMap,
  type MethodOptions,
} from './method-options.js';
