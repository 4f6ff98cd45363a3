import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type TextTargetV1, type TokenizerV1 } from '@draft/core';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import {
  type BudgetSpec,
  markdownTable,
  parseBudgets,
  parseIntList,
  parseList,
  resolveBudget,
  runMeta,
  runName,
  scoresWithQuery,
  skipReason,
  writeJson,
  writeText,
} from '../bench/common.js';
import { cutPrediction, scorePrediction } from '../bench/metrics.js';
import { allPairs, compareRuns, parseComparePairs, type RulerComparison, type RunOutcomes, readOutcomes } from '../bench/ruler-comparisons.js';
import { formatDifference, formatP, meanInterval, type ScoreInterval, scoreInterval } from '../bench/stats.js';
import { type BenchModels, benchDtypes, dtypeSettings, loadBenchModels } from '../bench/models.js';
import { Progress } from '../bench/progress.js';
import { ResumedRevisions } from '../bench/resumed-revisions.js';
import { availableTasks, defaultTasks, generateSample, type RulerSample } from '../bench/ruler-tasks.js';
import { type BenchSettings, modelFingerprinter, resumeState, staleOutcome, withRunFingerprint } from '../bench/run-fingerprint.js';
import { flatSeries, lineChart } from '../bench/svg.js';
import { readTaskFormat } from '../bench/task-format.js';
import { type MethodOptionMap, type MethodOptions, methodLabel, parseMethodOptions, withMethodOptions } from '../method-options.js';
import { type MethodPlan, planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';
import { intOption } from '../options.js';
import { checkPlanForTextTarget, needsDraft, type RemoteTarget, type RemoteTargetFlags, remoteTargetFromFlags } from '../remote-target.js';
import { runPlan } from './generate.js';

export interface BenchRulerFlags extends RemoteTargetFlags {
  target?: string;
  draft?: string;
  /** Weight files (`--dtype`, `--draft-dtype`; transformers.js dtype names). */
  dtype?: string;
  'draft-dtype'?: string;
  methods?: string;
  budgets?: string;
  lengths?: string;
  tasks?: string;
  samples?: string;
  seed?: string;
  window?: string;
  /** Repeated `<method>.<name>=<value>` (`--method-option`). */
  'method-option'?: string[];
  'max-new-tokens'?: string;
  threads?: string;
  out?: string;
  json?: boolean;
  /** Method pairs to compare on the same samples, `a:b,c:d` (default: every pair of --methods). */
  compare?: string;
}

export interface BenchIo {
  /** Progress and log lines. */
  stderr: (text: string) => void;
  /** Redraw a progress bar (stderr is a terminal) instead of one line per run. */
  tty?: boolean;
  signal?: AbortSignal;
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
  /** The `--method-option`s of the method, when it had any. */
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

/** `draft bench ruler --json`: exactly this object. */
export interface RulerBenchJson {
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

interface RunMetrics {
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
  methods: 'full,draft-only,speckv,laq,snapkv,pyramidkv,h2o,streamingllm',
  budgets: '1/16,1/8,1/4',
  lengths: '1024,2048',
  samples: 10,
  seed: 0,
  out: 'bench-results/ruler',
});

/**
 * `draft bench ruler`: RULER-style accuracy over methods × budgets × lengths × tasks on a target/draft pair,
 * resumable (a run whose metrics.json was made by the same target/draft files and bench settings is not run
 * again; one made by other models or settings is stale and runs again), with per-run files, summary.md and an SVG plot.
 */
export async function runBenchRuler(flags: BenchRulerFlags, io: BenchIo): Promise<RulerBenchJson> {
  const remote = await remoteTargetFromFlags(flags, io.signal);
  const targetDir = remote ? undefined : resolveModelDir('target', flags.target);
  const draftDir = resolveModelDir('draft', flags.draft);
  // A remote target has no folder: the task format (symbolic pairs) comes from the draft's, lengths count draft tokens.
  const format = readTaskFormat(targetDir ?? draftDir);
  const methods = parseList(flags.methods ?? RULER_DEFAULTS.methods);
  const budgets = parseBudgets(flags.budgets, RULER_DEFAULTS.budgets);
  const lengths = parseIntList('lengths', flags.lengths ?? RULER_DEFAULTS.lengths, 16);
  const known = availableTasks(format);
  const tasks = flags.tasks ? parseList(flags.tasks) : defaultTasks(format);
  for (const t of tasks) {
    if (!known.includes(t)) throw new InvalidArgumentError({ argument: '--tasks', value: t, expected: `one of ${known.join(', ')}${format ? ' (task_format.json)' : ''}` });
  }
  const samples = intOption('samples', flags.samples, 1) ?? RULER_DEFAULTS.samples;
  const seed = intOption('seed', flags.seed, 0) ?? RULER_DEFAULTS.seed;
  const windowSize = intOption('window', flags.window, 1);
  const maxNewCap = intOption('max-new-tokens', flags['max-new-tokens'], 1);
  const threads = intOption('threads', flags.threads, 1);
  const dtypes = benchDtypes(flags);
  const out = resolve(flags.out ?? RULER_DEFAULTS.out);
  const methodOptions: MethodOptions = parseMethodOptions(flags['method-option'], methods);
  const comparePairs = parseComparePairs(flags.compare, methods) ?? allPairs(methods);
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
  const progress = new Progress(runs.length, io.stderr, io.tty ?? false);
  const metrics: RunMetrics[] = [];
  // Per-sample outcomes of every run, read back from its predictions.jsonl (also for resumed runs).
  const outcomes: RunOutcomes[] = [];
  let models: RulerModels | undefined;
  const sampleCache = new Map<string, RulerSample[]>();
  const fingerprintOf = modelFingerprinter({ targetDir, draftDir, remote: remote && remoteFingerprint(remote) });
  const resumedRevisions = new ResumedRevisions();
  // What changes a run's results besides its folder name and models (not --threads, --out); full and draft-only have no window.
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
      const state = resumeState<RunMetrics>(metricsPath, fingerprint);
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
        ...runMeta({ seeds: { seed, sampleSeeds: taskSamples.map((s) => s.seed) } }),
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
      const result = await runOne(run, taskSamples, models, { windowSize, options: methodOptions[run.method], maxNewCap, signal: io.signal, onSample: (i) => progress.update(label, `${stale ? `${stale}, ` : ''}sample ${i + 1}/${samples}`) }, (line) =>
        appendFileSync(predictionsPath, `${JSON.stringify(line)}\n`),
      );
      const m: RunMetrics = { status: result.skipped ? 'skipped' : 'ok', ...base, samples: 0, ...result.metrics, accuracy: result.metrics.accuracy ?? null, ...(result.skipped ? { reason: result.skipped } : {}) };
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
  if (note) io.stderr(note);

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
): Promise<{ skipped?: string; metrics: Partial<RunMetrics> }> {
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

function summarize(metrics: RunMetrics[], outcomes: RunOutcomes[], pairs: ReturnType<typeof allPairs>): RulerBenchJson {
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

/** A score with its interval, in %: `87.1 (79.0–93.2)`. */
function withInterval(accuracy: number, interval: ScoreInterval | undefined): string {
  const pct = (x: number) => (100 * x).toFixed(1);
  return interval ? `${pct(accuracy)} (${pct(interval.low)}–${pct(interval.high)})` : pct(accuracy);
}

/** The comparisons a reader looks at: over tasks, or the one task when a pair shares only one. */
export function headlineComparisons(comparisons: readonly RulerComparison[]): RulerComparison[] {
  return comparisons.filter((c) => c.task === null || !comparisons.some((d) => d.task === null && d.a === c.a && d.b === c.b && d.budgetA === c.budgetA && d.budgetB === c.budgetB && d.length === c.length));
}

/** "speckv − snapkv = -5.0 ± 4.1 points (p = 0.02)", with budgets and length. */
export function comparisonLine(c: RulerComparison): string {
  const budget = c.budgetA === c.budgetB ? `budget ${c.budgetA ?? '–'}` : `budgets ${c.budgetA ?? '–'}/${c.budgetB ?? '–'}`;
  return `${formatDifference(c.a, c.b, c)} [${budget}, length ${c.length}, ${c.task ?? `${c.tasks.length} tasks`}, ${c.pairs} pairs]`;
}

function rulerMarkdown(report: RulerBenchJson, metrics: RunMetrics[], info: { tasks: string[]; style: string; samples: number; seed: number }): string {
  const tasks = info.tasks.filter((t) => report.results.some((r) => r.task === t));
  const rows = report.summary.map((s) => {
    const spec = metrics.find((m) => m.method === s.method && m.budget === s.budget && m.length === s.length)?.budgetSpec;
    const per = tasks.map((t) => {
      const r = report.results.find((x) => x.method === s.method && x.budget === s.budget && x.length === s.length && x.task === t);
      return r?.accuracy === null || r === undefined ? '–' : withInterval(r.accuracy, r.interval);
    });
    return [methodLabel(s.method, s.methodOptions), s.budget === null ? '–' : `${s.budget}${spec && spec !== String(s.budget) ? ` (${spec})` : ''}`, s.length, ...per, withInterval(s.accuracy, s.interval)];
  });
  const sampleCounts = [...new Set(report.results.filter((r) => r.accuracy !== null).map((r) => r.samples))].sort((a, b) => a - b);
  const skipped = report.results.filter((r) => r.skipped);
  const lines = [
    '# RULER-style accuracy',
    '',
    `Style ${info.style}; ${sampleCounts.length > 1 ? `${sampleCounts.join('/')} samples per task (runs of other sizes resumed)` : `${sampleCounts[0] ?? info.samples} samples per task`}, seed ${info.seed}; scores in %, mean = mean over tasks (string_match_all; qa: string_match_part).`,
    'In brackets the 95% interval: Wilson for 0/1 outcomes, percentile bootstrap (4000 resamples, fixed seed) for fractional scores and for the mean over tasks (stratified by task).',
    '',
    markdownTable(['method', 'budget', 'length', ...tasks, 'mean'], rows),
  ];
  const headline = headlineComparisons(report.comparisons);
  if (headline.length > 0) {
    lines.push(
      '',
      '## Paired differences',
      '',
      'A − B on the same samples, in points; ± is the half-width of the 95% paired-bootstrap interval (4000 resamples, stratified by task); p two-sided (exact McNemar for one task of 0/1 outcomes, else the paired bootstrap). Per-sample outcomes: outcomes.jsonl.',
      '',
      markdownTable(
        ['A − B', 'budget', 'length', 'tasks', 'pairs', 'difference', '95% interval', 'p'],
        headline.map((c) => [
          `${c.a} − ${c.b}`,
          c.budgetA === c.budgetB ? (c.budgetA ?? '–') : `${c.budgetA ?? '–'} / ${c.budgetB ?? '–'}`,
          c.length,
          c.task ?? c.tasks.length,
          c.pairs,
          formatDifference(c.a, c.b, c).replace(/^.*? = /, '').replace(/ \(p [<=] .*$/, ''),
          `${(100 * c.low).toFixed(1)} to ${(100 * c.high).toFixed(1)}`,
          formatP(c.p),
        ]),
      ),
    );
  }
  if (skipped.length > 0) {
    lines.push('', '## Skipped', '', markdownTable(['method', 'budget', 'length', 'task', 'reason'], skipped.map((r) => [methodLabel(r.method, r.methodOptions), r.budget ?? '–', r.length, r.task, r.skipped ?? ''])));
  }
  return `${lines.join('\n')}\n`;
}

function rulerChart(report: RulerBenchJson, lengths: number[]): string {
  const panels = lengths.map((length) => {
    const rows = report.summary.filter((s) => s.length === length);
    const budgets = [...new Set(rows.filter((r) => r.budget !== null).map((r) => r.budget as number))];
    const methods = [...new Set(rows.map((r) => r.method))];
    return {
      title: `length ${length}`,
      series: methods.map((m) => {
        const mine = rows.filter((r) => r.method === m);
        const name = methodLabel(m, mine[0].methodOptions);
        const bar = (r: RulerSummaryRow) => (r.interval ? ([r.interval.low, r.interval.high] as [number, number]) : null);
        if (mine.length === 1 && mine[0].budget === null) return flatSeries(name, mine[0].accuracy, budgets.length ? budgets : [1], bar(mine[0]) ?? undefined);
        return { name, points: mine.map((r) => [r.budget ?? 0, r.accuracy] as [number, number]), intervals: mine.map(bar) };
      }),
    };
  });
  return lineChart({ title: 'RULER-style accuracy vs KV / prompt budget (bars: 95% interval of the mean over tasks)', xLabel: 'budget (tokens, log scale)', yLabel: 'accuracy', panels, xLog: true, yRange: [0, 1] });
}

/** A remote target in the fingerprint: endpoint URL, API flavour and model, in place of a folder hash (never the key). */
function remoteFingerprint(remote: RemoteTarget): string {
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
async function remoteRulerModels(remote: RemoteTarget, draftDir: string, threads: number | undefined): Promise<RulerModels> {
  const draft = await loadModel(draftDir, { threads });
  return { target: remote.target, draft, tokenizer: draft.tokenizer, remote: true, ragged: false, dispose: () => draft.dispose() };
}
