// Method planning moved to @draft/methods (the server uses it without depending on the CLI); re-exported here.
export { planMethod, knownMethods, registerBuiltInMethods, BUILT_IN_METHODS, type MethodPlan, type MethodSettings } from '@draft/methods';
