import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type TextTargetV1, type TokenizerV1 } from '@draft/core';
import { type MethodOptionMap, type MethodPlan, planMethod, withMethodOptions } from '@draft/methods';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { type BudgetInput, type BudgetSpec, parseBudgets, resolveBudget } from './budgets.js';
import { cutPrediction, scorePrediction } from './metrics.js';
import { type BenchModels, dtypeSettings, loadBenchModels } from './models.js';
import { type BenchMethodOptions, type BenchModelOptions, type BenchRunOptions, checkDtype, checkFolder, checkInteger, checkIntegers, checkMethodOptions, checkNames, MIN_PROMPT_LENGTH } from './options.js';
import { ProgressReporter } from './progress.js';
import { ResumedRevisions } from './resumed-revisions.js';
import { rulerChart, rulerMarkdown } from './ruler-report.js';
import { allPairs, type ComparePair, checkComparePairs, compareRuns, type RulerComparison, type RunOutcomes, readOutcomes } from './ruler-comparisons.js';
import { availableTasks, defaultTasks, generateSample, type RulerSample } from './ruler-tasks.js';
import { runName, writeJson, writeText } from './run-files.js';
import { type BenchSettings, modelFingerprinter, resumeState, staleOutcome, withRunFingerprint } from './run-fingerprint.js';
import { runMeta, scoresWithQuery } from './run-meta.js';
import { checkPlanForTextTarget, needsDraft, runPlan } from './run-plan.js';
import { skipReason } from './skip-reason.js';
import { meanInterval, type ScoreInterval, scoreInterval } from './stats.js';
import { readTaskFormat } from './task-format.js';

/** An OpenAI-compatible endpoint as a ruler target, and what identifies it in results and fingerprints (never a key). */
export interface BenchRemoteTarget {
  target: TextTargetV1;
  /** The API root, e.g. http://127.0.0.1:8000/v1. */
  url: string;
  /** The `model` sent with each request. */
  model: string;
  endpoint: 'chat' | 'completions';
}

/** `runRuler` options: the settings of `draft bench ruler`'s flags, as values. */
export interface RulerOptions extends Omit<BenchModelOptions, 'target'>, BenchMethodOptions, BenchRunOptions {
  /** Target model folder; or give `remoteTarget` instead (then sample lengths count the draft's tokens). */
  target?: string;
  remoteTarget?: BenchRemoteTarget;
  /** KV / prompt budgets: tokens or fractions of each length (default `1/16, 1/8, 1/4`). */
  budgets?: readonly BudgetInput[];
  /** Prompt lengths in target tokens, each ≥ 16 (default 1024, 2048). */
  lengths?: readonly number[];
  /** Task names (default: RULER's tasks the target's format offers; see `availableTasks`). */
  tasks?: readonly string[];
  /** Samples per task and length (default 10). */
  samples?: number;
  /** Seed of the sample generator (default 0). */
  seed?: number;
  /** Cap on generated tokens (default: each task's own, RULER's). */
  maxNewTokens?: number;
  /** Method pairs compared on the same samples (default: every pair of `methods`). */
  compare?: readonly ComparePair[];
}

/** One run = method × budget × length × task. */
export interface RulerResultRow {
  method: string;
  /** Tokens (resolved from a fraction when one was given); null for full and draft-only. */
  budget: number | null;
  length: number;
  task: string;
  /** Mean metric over samples, 0..1; null when skipped. */
  accuracy: number | null;
  samples: number;
  /** 95% interval of `accuracy` (Wilson for 0/1 outcomes, bootstrap for fractional ones); absent when skipped. */
  interval?: ScoreInterval;
  /** Why the run did not run (typed capability/argument error of the backend). */
  skipped?: string;
  /** The method options of the method, when it had any. */
  methodOptions?: MethodOptionMap;
}

export interface RulerSummaryRow {
  method: string;
  budget: number | null;
  length: number;
  /** Mean over the tasks that ran. */
  accuracy: number;
  /** 95% interval of the mean over tasks (stratified bootstrap over each task's samples). */
  interval?: ScoreInterval;
  methodOptions?: MethodOptionMap;
}

/** What `runRuler` returns, results.json holds and `draft bench ruler --json` prints: exactly this object. */
export interface RulerReport {
  results: RulerResultRow[];
  summary: RulerSummaryRow[];
  /** Paired A − B per task and over tasks, on the samples both methods ran (0..1 units; `p` two-sided). */
  comparisons: RulerComparison[];
}

/** A line of outcomes.jsonl: one sample of one run, enough to recompute any interval or comparison. */
export interface RulerOutcomeLine {
  method: string;
  budget: number | null;
  length: number;
  task: string;
  index: number;
  seed: number;
  score: number;
  methodOptions?: MethodOptionMap;
}

/** A run's metrics.json (without its fingerprint). */
export interface RulerRunMetrics {
  status: 'ok' | 'skipped';
  reason?: string;
  method: string;
  budget: number | null;
  budgetSpec: string | null;
  length: number;
  task: string;
  metric?: string;
  accuracy: number | null;
  samples: number;
  meanPromptTokens?: number;
  meanKeptKvTokens?: number;
  meanKvBytes?: number;
  meanTtftMs?: number;
  meanTotalMs?: number;
  methodOptions?: MethodOptionMap;
}

export const RULER_DEFAULTS = Object.freeze({
  methods: Object.freeze(['full', 'draft-only', 'speckv', 'laq', 'snapkv', 'pyramidkv', 'h2o', 'streamingllm']),
  budgets: Object.freeze(['1/16', '1/8', '1/4']),
  lengths: Object.freeze([1024, 2048]),
  samples: 10,
  seed: 0,
  out: 'bench-results/ruler',
});

/**
 * RULER-style accuracy over methods × budgets × lengths × tasks on a target/draft pair (or a remote target with
 * the draft), resumable (a run whose metrics.json was made by the same target/draft files and bench settings is
 * not run again; one made by other models or settings is stale and runs again), with per-run files,
 * outcomes.jsonl, summary.md, accuracy-vs-budget.svg and results.json in `out`. Every option is checked before
 * any model loads: bad ones are `InvalidArgumentError`s naming the option (`tasks`, `lengths`, …).
 */
export async function runRuler(options: RulerOptions): Promise<RulerReport> {
  const remote = options.remoteTarget;
  if (remote && options.target !== undefined) throw new InvalidArgumentError({ argument: 'target', value: options.target, expected: 'either target or remoteTarget, not both' });
  const targetDir = remote ? undefined : resolve(checkFolder('target', options.target));
  const draftDir = resolve(checkFolder('draft', options.draft));
  // A remote target has no folder: the task format (symbolic pairs) comes from the draft's, lengths count draft tokens.
  const format = readTaskFormat(targetDir ?? draftDir);
  const methods = checkNames('methods', options.methods ?? RULER_DEFAULTS.methods);
  const budgets = parseBudgets(options.budgets ?? RULER_DEFAULTS.budgets);
  const lengths = checkIntegers('lengths', options.lengths ?? RULER_DEFAULTS.lengths, MIN_PROMPT_LENGTH);
  const known = availableTasks(format);
  const tasks = options.tasks === undefined ? defaultTasks(format) : checkNames('tasks', options.tasks);
  for (const t of tasks) {
    if (!known.includes(t)) throw new InvalidArgumentError({ argument: 'tasks', value: t, expected: `one of ${known.join(', ')}${format ? ' (task_format.json)' : ''}` });
  }
  const samples = checkInteger('samples', options.samples, 1) ?? RULER_DEFAULTS.samples;
  const seed = checkInteger('seed', options.seed, 0, Number.MAX_SAFE_INTEGER) ?? RULER_DEFAULTS.seed;
  const windowSize = checkInteger('windowSize', options.windowSize, 1);
  const maxNewCap = checkInteger('maxNewTokens', options.maxNewTokens, 1);
  const threads = checkInteger('threads', options.threads, 1);
  const dtypes = { dtype: checkDtype('dtype', options.dtype), draftDtype: checkDtype('draftDtype', options.draftDtype) };
  const out = resolve(options.out ?? RULER_DEFAULTS.out);
  const methodOptions = checkMethodOptions(options.methodOptions, methods);
  const comparePairs = options.compare === undefined ? allPairs(methods) : checkComparePairs(options.compare, methods);
  // Validate every method name and option before loading anything (UnknownMethodError is a usage error).
  const probePlans = methods.map((m) => planMethod(m, { budget: 64, windowSize, options: methodOptions[m] }));

  type Run = { method: string; spec: BudgetSpec | null; budget: number | null; length: number; task: string; dir: string };
  const runs: Run[] = [];
  for (const length of lengths) {
    for (const task of tasks) {
      for (const [i, method] of methods.entries()) {
        const specs: (BudgetSpec | null)[] = probePlans[i].budgetKind === 'none' ? [null] : budgets;
        const seen = new Set<number>();
        for (const spec of specs) {
          const budget = spec ? resolveBudget(spec, length) : null;
          if (budget !== null) {
            if (seen.has(budget)) continue;
            seen.add(budget);
          }
          runs.push({ method, spec, budget, length, task, dir: join(out, 'runs', runName({ method, budget, length, task, options: methodOptions[method] })) });
        }
      }
    }
  }

  mkdirSync(out, { recursive: true });
  const progress = new ProgressReporter(runs.length, options.onProgress);
  const metrics: RulerRunMetrics[] = [];
  // Per-sample outcomes of every run, read back from its predictions.jsonl (also for resumed runs).
  const outcomes: RunOutcomes[] = [];
  let models: RulerModels | undefined;
  const sampleCache = new Map<string, RulerSample[]>();
  const fingerprintOf = modelFingerprinter({ targetDir, draftDir, remote: remote && remoteFingerprint(remote) });
  const resumedRevisions = new ResumedRevisions();
  // What changes a run's results besides its folder name and models (not threads, out); full and draft-only have no window.
  // Keys are the CLI flags that set them, as recorded in metrics.json since the first resumable runs.
  const settingsOf = (plan: MethodPlan): BenchSettings => ({
    samples,
    seed,
    'max-new-tokens': maxNewCap ?? null,
    ...(plan.budgetKind === 'none' ? {} : { window: windowSize ?? null }),
    ...dtypeSettings(dtypes, plan.needsDraft),
  });
  try {
    for (const run of runs) {
      const label = `${run.method} ${run.budget === null ? '' : `b${run.budget} `}L${run.length} ${run.task}`;
      const metricsPath = join(run.dir, 'metrics.json');
      const probe = probePlans[methods.indexOf(run.method)];
      const fingerprint = { models: fingerprintOf({ needsDraft: needsDraft(probe, remote !== undefined) }), settings: settingsOf(probe) };
      const state = resumeState<RulerRunMetrics>(metricsPath, fingerprint);
      if (state.kind === 'resume') {
        metrics.push(state.metrics);
        if (state.metrics.status === 'ok') outcomes.push({ ...run, outcomes: readOutcomes(join(run.dir, 'predictions.jsonl')) });
        resumedRevisions.add(run.dir);
        progress.finish(label, 'done earlier (resumed)');
        continue;
      }
      // A terminal shows at once that stale results are being replaced; a log says so on the run's line.
      const stale = state.kind === 'stale' ? `stale (${state.reason}): rerunning` : undefined;
      if (stale) progress.update(label, stale);
      models ??= remote ? await remoteRulerModels(remote, draftDir, threads) : localRulerModels(await loadBenchModels({ targetDir: targetDir as string, draftDir, plans: probePlans, threads, ...dtypes }));
      const key = `${run.task}|${run.length}`;
      if (!sampleCache.has(key)) {
        sampleCache.clear();
        sampleCache.set(
          key,
          Array.from({ length: samples }, (_, index) => generateSample({ task: run.task, length: run.length, seed, index, tokenizer: models!.tokenizer, format })),
        );
      }
      const taskSamples = sampleCache.get(key)!;
      const base = {
        method: run.method,
        budget: run.budget,
        budgetSpec: run.spec?.text ?? null,
        length: run.length,
        task: run.task,
        ...withMethodOptions(methodOptions[run.method]),
      };
      writeJson(join(run.dir, 'config.json'), {
        ...base,
        methodOptions: methodOptions[run.method] ?? {},
        budgetFraction: run.budget === null ? null : run.budget / run.length,
        budgetUnit: probe.budgetKind,
        windowSize: windowSize ?? null,
        samples,
        seed,
        style: format ? 'symbolic' : 'natural',
        maxNewTokens: taskSamples[0] ? Math.min(taskSamples[0].maxNewTokens, maxNewCap ?? Number.POSITIVE_INFINITY) : null,
        generation: 'greedy',
        target: remote ? remote.url : targetDir,
        ...(remote ? { targetModel: remote.model, targetEndpoint: remote.endpoint } : {}),
        draft: draftDir,
      });
      writeJson(join(run.dir, 'run_meta.json'), {
        ...runMeta({ seeds: { seed, sampleSeeds: taskSamples.map((s) => s.seed) } }, options.recordPackages),
        queryAware: { questionInPrompt: true, methodScoresWithQuery: scoresWithQuery(run.method) },
        raggedCache: models.ragged,
        ...(models.raggedRefused ? { raggedCacheRefused: models.raggedRefused } : {}),
        models: {
          target: remote ? { url: remote.url, model: remote.model, endpoint: remote.endpoint } : { dir: targetDir, ...(models.target as OrtCausalLM).info },
          draft: models.draft ? { dir: draftDir, ...models.draft.info } : null,
        },
      });
      const predictionsPath = join(run.dir, 'predictions.jsonl');
      writeFileSync(predictionsPath, '');
      const result = await runOne(run, taskSamples, models, { windowSize, options: methodOptions[run.method], maxNewCap, signal: options.signal, onSample: (i) => progress.update(label, `${stale ? `${stale}, ` : ''}sample ${i + 1}/${samples}`) }, (line) =>
        appendFileSync(predictionsPath, `${JSON.stringify(line)}\n`),
      );
      const m: RulerRunMetrics = { status: result.skipped ? 'skipped' : 'ok', ...base, samples: 0, ...result.metrics, accuracy: result.metrics.accuracy ?? null, ...(result.skipped ? { reason: result.skipped } : {}) };
      writeJson(metricsPath, withRunFingerprint(m, fingerprint));
      metrics.push(m);
      if (m.status === 'ok') outcomes.push({ ...run, outcomes: readOutcomes(predictionsPath) });
      progress.finish(label, staleOutcome(state, result.skipped ? `skipped (${result.skipped})` : `accuracy ${(m.accuracy ?? 0).toFixed(3)}`));
    }
  } finally {
    progress.end();
    await models?.dispose();
  }
  const note = resumedRevisions.note();
  if (note) options.onProgress?.({ type: 'note', message: note });

  const report = summarize(metrics, outcomes, comparePairs);
  writeText(
    join(out, 'outcomes.jsonl'),
    outcomes
      .flatMap((r) =>
        r.outcomes.map((o) => {
          const line: RulerOutcomeLine = { method: r.method, budget: r.budget, length: r.length, task: r.task, ...o, ...withMethodOptions(methodOptions[r.method]) };
          return `${JSON.stringify(line)}\n`;
        }),
      )
      .join(''),
  );
  writeText(join(out, 'summary.md'), rulerMarkdown(report, metrics, { tasks, style: format ? 'symbolic' : 'natural', samples, seed }));
  writeText(join(out, 'accuracy-vs-budget.svg'), rulerChart(report, lengths));
  writeJson(join(out, 'results.json'), report);
  return report;
}

async function runOne(
  run: { method: string; budget: number | null },
  taskSamples: RulerSample[],
  models: RulerModels,
  options: { windowSize?: number; options?: MethodOptionMap; maxNewCap?: number; signal?: AbortSignal; onSample?: (i: number) => void },
  writeLine: (line: Record<string, unknown>) => void,
): Promise<{ skipped?: string; metrics: Partial<RulerRunMetrics> }> {
  let plan: MethodPlan;
  try {
    plan = planMethod(run.method, { budget: run.budget ?? undefined, windowSize: options.windowSize, options: options.options });
    // KV methods behind an HTTP endpoint: the pipeline's capability error, recorded as skipped.
    if (models.remote) checkPlanForTextTarget(plan, models.target as TextTargetV1);
  } catch (error) {
    const reason = skipReason(error);
    if (reason) return { skipped: reason, metrics: { accuracy: null, samples: 0 } };
    throw error;
  }
  const scores: number[] = [];
  const sums = { prompt: 0, kept: 0, kv: 0, ttft: 0, total: 0 };
  for (const [i, sample] of taskSamples.entries()) {
    options.onSample?.(i);
    let r: Awaited<ReturnType<typeof runPlan>>;
    try {
      r = await runPlan(plan, { target: models.target, draft: needsDraft(plan, models.remote) ? models.draft : undefined }, sample.input, {
        maxNewTokens: Math.min(sample.maxNewTokens, options.maxNewCap ?? Number.POSITIVE_INFINITY),
        stopStrings: sample.stopStrings,
        // Greedy, said explicitly: an HTTP endpoint without a temperature samples at its default (OpenAI: 1).
        temperature: 0,
        signal: options.signal,
      });
    } catch (error) {
      const reason = skipReason(error);
      if (reason) return { skipped: reason, metrics: { accuracy: null, samples: 0 } };
      throw error;
    }
    const prediction = cutPrediction(r.text, sample.stopStrings);
    const score = scorePrediction(sample.metric, prediction, sample.answers, { tokens: sample.style === 'symbolic' });
    scores.push(score);
    const kept = r.usage.keptKvTokens.flat();
    sums.prompt += r.usage.compressedPromptTokens;
    sums.kept += kept.length ? kept.reduce((a, b) => a + b, 0) / kept.length : 0;
    sums.kv += r.kvBytes.afterPrefill;
    sums.ttft += r.timings.ttftMs;
    sums.total += r.timings.totalMs;
    writeLine({
      index: sample.index,
      seed: sample.seed,
      promptTokens: sample.tokens,
      depths: sample.insertions.map((x) => Number(x.depth.toFixed(4))),
      answers: sample.answers,
      expected: sample.expectedOutput,
      prediction,
      score,
      finishReason: r.finishReason,
      targetPromptTokens: r.usage.compressedPromptTokens,
      keptKvTokens: r.usage.keptKvTokens,
      kvBytes: r.kvBytes.afterPrefill,
      ttftMs: Number(r.timings.ttftMs.toFixed(2)),
      totalMs: Number(r.timings.totalMs.toFixed(2)),
    });
  }
  const n = taskSamples.length || 1;
  return {
    metrics: {
      metric: taskSamples[0]?.metric,
      accuracy: scores.reduce((a, b) => a + b, 0) / n,
      samples: scores.length,
      meanPromptTokens: sums.prompt / n,
      meanKeptKvTokens: sums.kept / n,
      meanKvBytes: sums.kv / n,
      meanTtftMs: sums.ttft / n,
      meanTotalMs: sums.total / n,
    },
  };
}

function summarize(metrics: RulerRunMetrics[], outcomes: RunOutcomes[], pairs: ReturnType<typeof allPairs>): RulerReport {
  const scoresOf = (r: { method: string; budget: number | null; length: number; task: string }) =>
    outcomes.find((o) => o.method === r.method && o.budget === r.budget && o.length === r.length && o.task === r.task)?.outcomes.map((o) => o.score) ?? [];
  const results: RulerResultRow[] = metrics.map((m) => {
    const scores = m.status === 'ok' ? scoresOf(m) : [];
    return {
      method: m.method,
      budget: m.budget,
      length: m.length,
      task: m.task,
      accuracy: m.status === 'ok' ? m.accuracy : null,
      samples: m.status === 'ok' ? m.samples : 0,
      ...(scores.length > 0 ? { interval: scoreInterval(scores) } : {}),
      ...(m.status === 'skipped' ? { skipped: m.reason ?? 'skipped' } : {}),
      ...withMethodOptions(m.methodOptions),
    };
  });
  const groups = new Map<string, RulerResultRow[]>();
  for (const r of results) {
    if (r.accuracy === null) continue;
    const k = JSON.stringify([r.method, r.budget, r.length]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const summary = [...groups.values()].map((rows) => {
    const strata = rows.map(scoresOf).filter((s) => s.length > 0);
    return {
      method: rows[0].method,
      budget: rows[0].budget,
      length: rows[0].length,
      accuracy: rows.reduce((a, r) => a + (r.accuracy ?? 0), 0) / rows.length,
      ...(strata.length === rows.length ? { interval: meanInterval(strata) } : {}),
      ...withMethodOptions(rows[0].methodOptions),
    };
  });
  return { results, summary, comparisons: compareRuns(outcomes, pairs) };
}

/** A remote target in the fingerprint: endpoint URL, API flavour and model, in place of a folder hash (never the key). */
function remoteFingerprint(remote: BenchRemoteTarget): string {
  return `openai-${remote.endpoint}:${remote.url}#${remote.model}`;
}

/** The models of a ruler run: loaded ones, or a remote target with the local draft. */
interface RulerModels extends Omit<BenchModels, 'target'> {
  target: OrtCausalLM | TextTargetV1;
  /** Measures sample lengths: the target's tokenizer, or the draft's for a remote target. */
  tokenizer: TokenizerV1;
  remote: boolean;
}

function localRulerModels(models: BenchModels): RulerModels {
  return { ...models, tokenizer: models.target.tokenizer, remote: false, dispose: () => models.dispose() };
}

/** A remote target with the draft, loaded always: its tokenizer measures lengths and it tokenises for compressors. */
async function remoteRulerModels(remote: BenchRemoteTarget, draftDir: string, threads: number | undefined): Promise<RulerModels> {
  const draft = await loadModel(draftDir, { threads });
  return { target: remote.target, draft, tokenizer: draft.tokenizer, remote: true, ragged: false, dispose: () => draft.dispose() };
}
