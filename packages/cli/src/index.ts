/** @draft/cli — the `draft` command, also usable as a library. */
export { runCli, USAGE, type CliIo } from './cli.js';
export { planMethod, knownMethods, registerBuiltInMethods, BUILT_IN_METHODS, type MethodPlan, type MethodSettings } from './methods.js';
export {
  parseMethodOptions,
  parseMethodOptionValue,
  formatMethodOptions,
  methodLabel,
  type MethodOptionValue,
  type MethodOptionMap,
  type MethodOptions,
} from './method-options.js';
export { runGenerate, runPlan, toJson, type GenerateFlags, type GenerateJson, type GenerateRun } from './commands/generate.js';
export { runDemo } from './commands/demo.js';
export { formatInspection, runInspect } from './commands/inspect.js';
export { kernelsInfo, benchKernels, useNativeKernels } from './commands/kernels.js';
export { bundledModelsDir, resolveModelDir } from './model-dirs.js';
export { checkPlanForTextTarget, isTextTarget, needsDraft, remoteTargetFromFlags, type RemoteTarget, type RemoteTargetFlags } from './remote-target.js';
export { runBenchRuler, type BenchRulerFlags, type BenchIo } from './commands/bench-ruler.js';
export { runBenchFidelity, type BenchFidelityFlags } from './commands/bench-fidelity.js';
export { runBenchPerf, type BenchPerfFlags } from './commands/bench-perf.js';
export { runBenchCommand, BENCH_USAGE } from './commands/bench-command.js';
export { type CacheBuildFlags, type CacheSummary, runCacheBuild, runCacheInfo } from './commands/cache.js';
export { type BenchCacheFlags, type BenchCacheResult, type BenchCacheRow, runBenchCache, formatBenchCache } from './commands/bench-cache.js';
// The harness moved to @draft/bench; what the CLI exported of it before stays importable from here.
export {
  generateSample,
  availableTasks,
  defaultTasks,
  taskMaxNewTokens,
  RULER_TASKS,
  EXTRA_TASKS,
  type RulerSample,
  type RulerMetric,
  type Insertion,
  type GenerateSampleOptions,
  scorePrediction,
  cutPrediction,
  readTaskFormat,
  validateTaskFormat,
  type TaskFormatV1,
  RULER_DEFAULTS,
  type RulerReport as RulerBenchJson,
  type RulerResultRow,
  type RulerSummaryRow,
  type RulerOutcomeLine,
  wilsonInterval,
  mcnemarExact,
  bootstrapMean,
  pairedDifference,
  scoreInterval,
  meanInterval,
  formatDifference,
  type ScoreInterval,
  type PairedDifference,
  compareRuns,
  readOutcomes,
  type RulerComparison,
  type SampleOutcome,
  type RunOutcomes,
  FIDELITY_DEFAULTS,
  type FidelityReport as FidelityBenchJson,
  type FidelityResultRow,
  type FidelitySummaryRow,
  PERF_DEFAULTS,
  type PerfReport as PerfBenchJson,
  type PerfRow,
  symbolicDocument,
} from '@draft/bench';
