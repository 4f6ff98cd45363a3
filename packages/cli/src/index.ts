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
export { generateSample, availableTasks, defaultTasks, taskMaxNewTokens, RULER_TASKS, EXTRA_TASKS, type RulerSample, type RulerMetric, type Insertion, type GenerateSampleOptions } from './bench/ruler-tasks.js';
export { scorePrediction, cutPrediction } from './bench/metrics.js';
export { readTaskFormat, validateTaskFormat, type TaskFormatV1 } from './bench/task-format.js';
export { runBenchRuler, RULER_DEFAULTS, type BenchRulerFlags, type BenchIo, type RulerBenchJson, type RulerResultRow, type RulerSummaryRow, type RulerOutcomeLine } from './commands/bench-ruler.js';
export { wilsonInterval, mcnemarExact, bootstrapMean, pairedDifference, scoreInterval, meanInterval, formatDifference, type ScoreInterval, type PairedDifference } from './bench/stats.js';
export { compareRuns, readOutcomes, type RulerComparison, type SampleOutcome, type RunOutcomes } from './bench/ruler-comparisons.js';
export { runBenchFidelity, FIDELITY_DEFAULTS, type BenchFidelityFlags, type FidelityBenchJson, type FidelityResultRow, type FidelitySummaryRow } from './commands/bench-fidelity.js';
export { runBenchPerf, PERF_DEFAULTS, type BenchPerfFlags, type PerfBenchJson, type PerfRow } from './commands/bench-perf.js';
export { runBenchCommand, BENCH_USAGE } from './commands/bench-command.js';
export { type CacheBuildFlags, type CacheSummary, runCacheBuild, runCacheInfo } from './commands/cache.js';
export { type BenchCacheFlags, type BenchCacheResult, type BenchCacheRow, runBenchCache, symbolicDocument } from './commands/bench-cache.js';
