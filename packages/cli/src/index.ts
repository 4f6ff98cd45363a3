/** @draft/cli — the `draft` command, also usable as a library. */
export { runCli, USAGE, type CliIo } from './cli.js';
export { planMethod, knownMethods, registerBuiltInMethods, BUILT_IN_METHODS, type MethodPlan, type MethodSettings } from './methods.js';
export { runGenerate, runPlan, toJson, type GenerateFlags, type GenerateJson, type GenerateRun } from './commands/generate.js';
export { runDemo, needlePrompt } from './commands/demo.js';
export { kernelsInfo, benchKernels } from './commands/kernels.js';
export { bundledModelsDir, resolveModelDir } from './model-dirs.js';
