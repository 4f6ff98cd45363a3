/**
 * @draft/bench — the benchmark harness of @draft as a library: RULER-style accuracy (`runRuler`), fidelity to
 * full KV (`runFidelity`), performance beside peer engines (`runPerf`), document caches (`runCacheBench`) and
 * kernels (`runKernelsBench`), plus the pieces they are made of: task generators, scoring, statistics, SVG plots
 * and resumable run fingerprints. `draft bench …` (@draft/cli) parses flags and calls these.
 */

// Benchmarks.
export { runRuler, RULER_DEFAULTS, type RulerOptions, type RulerReport, type RulerResultRow, type RulerSummaryRow, type RulerOutcomeLine, type RulerRunMetrics, type BenchRemoteTarget } from './ruler.js';
export { rulerMarkdown, rulerChart, headlineComparisons, comparisonLine } from './ruler-report.js';
export { runFidelity, FIDELITY_DEFAULTS, SELF_CHECK_KL_TOLERANCE, type FidelityOptions, type FidelityPrompt, type FidelityReport, type FidelityResultRow, type FidelitySummaryRow } from './fidelity.js';
export { runPerf, PERF_DEFAULTS, type PerfOptions, type PerfPeer, type PerfReport, type PerfRow } from './perf.js';
export { perfMarkdown, perfChart } from './perf-report.js';
export { runCacheBench, symbolicDocument, type CacheBenchOptions, type CacheBenchReport, type CacheBenchRow } from './cache-bench.js';
export { runKernelsBench, KERNEL_BENCH_MIN_KEYS, type KernelsBenchOptions, type KernelsBenchReport } from './kernels-bench.js';
export { MIN_PROMPT_LENGTH, type BenchModelOptions, type BenchMethodOptions, type BenchRunOptions } from './options.js';
export type { BenchProgressEvent, BenchProgressListener } from './progress.js';

// Tasks and scoring.
export {
  generateSample,
  availableTasks,
  defaultTasks,
  taskMaxNewTokens,
  fillerIds,
  frequencyList,
  RULER_TASKS,
  EXTRA_TASKS,
  type RulerSample,
  type RulerMetric,
  type Insertion,
  type GenerateSampleOptions,
  type LengthTokenizer,
} from './ruler-tasks.js';
export { readTaskFormat, validateTaskFormat, parseHaystackKind, fillTemplate, HAYSTACK_KINDS, type TaskFormatV1, type TaskFormatParams, type HaystackKind } from './task-format.js';
export { Rng, deriveSeed } from './rng.js';
export { scorePrediction, cutPrediction } from './metrics.js';
export { parseBudget, parseBudgets, resolveBudget, type BudgetSpec, type BudgetInput } from './budgets.js';

// Statistics and comparisons.
export {
  wilsonInterval,
  mcnemarExact,
  bootstrapMean,
  pairedDifference,
  scoreInterval,
  meanInterval,
  formatDifference,
  formatP,
  Z95,
  BOOTSTRAP_RESAMPLES,
  BOOTSTRAP_SEED,
  type ScoreInterval,
  type PairedDifference,
} from './stats.js';
export { compareRuns, readOutcomes, parseComparePairs, checkComparePairs, allPairs, type RulerComparison, type SampleOutcome, type RunOutcomes, type ComparePair } from './ruler-comparisons.js';

// Fidelity, plots, resumable runs.
export { teacherForcedLogits, klDivergence, argmax, agreement } from './teacher-forcing.js';
export { lineChart, flatSeries, type ChartSeries, type ChartPanel, type LineChartOptions } from './svg.js';
export {
  hashModelDir,
  hashText,
  modelFingerprinter,
  resumeState,
  withRunFingerprint,
  staleOutcome,
  MODEL_FINGERPRINT_KEY,
  BENCH_SETTINGS_KEY,
  type RunFingerprint,
  type ModelFingerprint,
  type BenchSettings,
  type ResumeState,
} from './run-fingerprint.js';
export { ResumedRevisions } from './resumed-revisions.js';
export { runMeta, gitRevision, scoresWithQuery } from './run-meta.js';
export { runName } from './run-files.js';

// Running methods and peer engines.
export { runPlan, checkPlanForTextTarget, needsDraft, isTextTarget } from './run-plan.js';
export { loadBenchModels, RAGGED_METHODS, type BenchModels, type BenchDtypes } from './models.js';
export { runEngine, runEngineInChild, summarizeRuns, type EngineJob, type EngineResult } from './engines.js';
export { openLlamaCpp, llamaCppUnavailable, defaultGgufPath, type LlamaCppEngine, type LlamaCppEngineOptions, type LlamaCppKvType, type GreedyRun } from './llamacpp.js';
export { openTransformers, type TransformersEngine } from './transformers-peer.js';
export { importOptionalPeer, processPeakRssBytes, withPeakRss, type ImportedPeer } from './peers.js';
