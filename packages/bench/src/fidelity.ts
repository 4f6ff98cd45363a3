import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPipeline, InvalidArgumentError } from '@draft/core';
import { type MethodOptionMap, type MethodPlan, methodLabel, planMethod, withMethodOptions } from '@draft/methods';
import { type BudgetInput, type BudgetSpec, parseBudgets, resolveBudget } from './budgets.js';
import { markdownTable } from './markdown.js';
import { type BenchModels, dtypeSettings, loadBenchModels } from './models.js';
import { type BenchMethodOptions, type BenchModelOptions, type BenchRunOptions, checkInteger, checkIntegers, checkMethodOptions, checkModelOptions, checkNames, MIN_PROMPT_LENGTH } from './options.js';
import { ProgressReporter } from './progress.js';
import { ResumedRevisions } from './resumed-revisions.js';
import { fillerIds, generateSample } from './ruler-tasks.js';
import { runName, writeJson, writeText } from './run-files.js';
import { type BenchSettings, hashText, modelFingerprinter, resumeState, staleOutcome, withRunFingerprint } from './run-fingerprint.js';
import { runMeta, scoresWithQuery } from './run-meta.js';
import { skipReason } from './skip-reason.js';
import { lineChart } from './svg.js';
import { readTaskFormat } from './task-format.js';
import { agreement, argmax, klDivergence, teacherForcedLogits } from './teacher-forcing.js';

/** A prompt of your own for `runFidelity`: its name (the run folder's task part, e.g. a file name) and text. */
export interface FidelityPrompt {
  name: string;
  text: string;
}

/** `runFidelity` options: the settings of `draft bench fidelity`'s flags, as values. */
export interface FidelityOptions extends BenchModelOptions, BenchMethodOptions, BenchRunOptions {
  /** Budgets: tokens or fractions of each prompt's length (default `1/16, 1/8, 1/4`). */
  budgets?: readonly BudgetInput[];
  /** Lengths of generated prompts (a needle prompt where one fits, else filler), each ≥ 16; default 1024, or none when `prompts` are given. */
  lengths?: readonly number[];
  /** Prompts of your own, run besides the generated ones. */
  prompts?: readonly FidelityPrompt[];
  /** Generated tokens compared with full KV (default 32). */
  steps?: number;
  /** Seed of the generated prompts (default 0). */
  seed?: number;
}

export interface FidelityResultRow {
  method: string;
  /** Tokens; null for full and draft-only. */
  budget: number | null;
  /** The budget as given (`256`, `1/8`); null for full and draft-only. */
  budgetSpec: string | null;
  prompt: string;
  promptTokens: number;
  /** Greedy generation: share of the first `steps` positions before the first divergence from full KV. */
  agreementPrefix: number | null;
  /** Greedy generation: share of positions equal to full KV. */
  agreement: number | null;
  /** Teacher-forced: share of steps whose argmax is the full-KV token. */
  forcedTop1: number | null;
  /** Mean KL(full ‖ method) in nats over the teacher-forced steps. */
  meanKl: number | null;
  steps: number;
  /** Target KV bytes after prefill/compaction (the draft's for draft-only). */
  kvBytes: number | null;
  fullKvBytes: number;
  skipped?: string;
  /** The method options of the method, when it had any. */
  methodOptions?: MethodOptionMap;
}

export interface FidelitySummaryRow {
  method: string;
  budgetSpec: string | null;
  agreementPrefix: number;
  agreement: number;
  meanKl: number;
  kvBytesRatio: number;
  prompts: number;
  methodOptions?: MethodOptionMap;
}

/** What `runFidelity` returns, results.json holds and `draft bench fidelity --json` prints. */
export interface FidelityReport {
  results: FidelityResultRow[];
  summary: FidelitySummaryRow[];
  /** Every method at a budget ≥ the prompt length (and `full` itself) must give agreement 1 and KL 0. */
  selfCheck: { passed: boolean; tolerance: number; rows: FidelityResultRow[]; failures: string[] };
}

export const FIDELITY_DEFAULTS = Object.freeze({
  methods: Object.freeze(['full', 'speckv', 'laq', 'snapkv', 'pyramidkv', 'h2o', 'streamingllm', 'specpc']),
  budgets: Object.freeze(['1/16', '1/8', '1/4']),
  lengths: Object.freeze([1024]),
  steps: 32,
  seed: 0,
  out: 'bench-results/fidelity',
});

/** KL below this counts as 0 in the self-check (identical code paths give exactly 0). */
export const SELF_CHECK_KL_TOLERANCE = 1e-6;

interface Prompt {
  name: string;
  ids: number[];
  /** What decides the prompt besides its name, length and the target: the seed, or the prompt file's content. */
  settings: BenchSettings;
}

interface Reference {
  tokens: number[];
  logits: Float32Array;
  kvBytes: number;
}

/**
 * How close each method stays to full KV on any model, without labels: greedy agreement, teacher-forced KL over
 * the first `steps` steps, kept KV bytes; plus the self-check (a budget ≥ the prompt must reproduce full KV:
 * agreement 1, KL 0). `full` is added when absent (it is the reference). Resumable like `runRuler`; writes per-run
 * files, summary.md, kl-vs-budget.svg and results.json in `out`.
 */
export async function runFidelity(options: FidelityOptions): Promise<FidelityReport> {
  const { target: targetDir, draft: draftDir, threads, ...dtypes } = checkModelOptions(options);
  const methods = checkNames('methods', options.methods ?? FIDELITY_DEFAULTS.methods);
  if (!methods.includes('full')) methods.unshift('full');
  const budgets = parseBudgets(options.budgets ?? FIDELITY_DEFAULTS.budgets);
  const steps = checkInteger('steps', options.steps, 1) ?? FIDELITY_DEFAULTS.steps;
  const seed = checkInteger('seed', options.seed, 0, Number.MAX_SAFE_INTEGER) ?? FIDELITY_DEFAULTS.seed;
  const windowSize = checkInteger('windowSize', options.windowSize, 1);
  const out = resolve(options.out ?? FIDELITY_DEFAULTS.out);
  const methodOptions = checkMethodOptions(options.methodOptions, methods);
  const probePlans = methods.map((m) => planMethod(m, { budget: 64, windowSize, options: methodOptions[m] }));
  const given = options.prompts ?? [];
  for (const p of given) {
    if (typeof p?.name !== 'string' || p.name.length === 0 || typeof p.text !== 'string') throw new InvalidArgumentError({ argument: 'prompts', value: p?.name, expected: 'prompts as { name, text }' });
  }
  const lengths = options.lengths === undefined ? (given.length > 0 ? [] : [...FIDELITY_DEFAULTS.lengths]) : options.lengths.length === 0 ? [] : checkIntegers('lengths', options.lengths, MIN_PROMPT_LENGTH);
  if (given.length === 0 && lengths.length === 0) throw new InvalidArgumentError({ argument: 'lengths', value: options.lengths, expected: 'at least one length or prompt' });

  mkdirSync(out, { recursive: true });
  const models = await loadBenchModels({ targetDir, draftDir, plans: probePlans, threads, ...dtypes });
  const rows: FidelityResultRow[] = [];
  const selfRows: FidelityResultRow[] = [];
  try {
    const { tokenizer } = models.target;
    const format = readTaskFormat(targetDir);
    const prompts: Prompt[] = [];
    // A given prompt is identified by its content (keyed as the CLI's --prompt-file, as recorded since).
    for (const { name, text } of given) prompts.push({ name, ids: tokenizer.encode(text), settings: { 'prompt-file': hashText(text) } });
    for (const length of lengths) {
      // A needle-in-a-haystack prompt (question at the end) where one fits, else plain filler of that length.
      let ids: number[];
      try {
        ids = tokenizer.encode(generateSample({ task: 'niah_single_2', length, seed, index: 0, tokenizer, format }).input);
      } catch {
        ids = fillerIds({ length, seed, tokenizer, format });
      }
      prompts.push({ name: `generated-${length}`, ids, settings: { seed } });
    }

    type Run = {
      method: string;
      plan: (budget: number | undefined) => MethodPlan;
      needsDraft: boolean;
      /** What changes the run's results besides its folder name and models (not threads, out). */
      settings: BenchSettings;
      spec: BudgetSpec | null;
      budget: number | null;
      prompt: Prompt;
      selfCheck: boolean;
    };
    const runs: Run[] = [];
    for (const prompt of prompts) {
      for (const [i, method] of methods.entries()) {
        const plan = (budget: number | undefined) => planMethod(method, { budget, windowSize, options: methodOptions[method] });
        const { needsDraft, budgetKind } = probePlans[i];
        // full and draft-only have no window.
        const settings = { steps, ...prompt.settings, ...(budgetKind === 'none' ? {} : { window: windowSize ?? null }), ...dtypeSettings(dtypes, needsDraft) };
        if (budgetKind === 'none') {
          runs.push({ method, plan, needsDraft, settings, spec: null, budget: null, prompt, selfCheck: method === 'full' });
          continue;
        }
        const seen = new Set<number>();
        for (const spec of budgets) {
          const budget = resolveBudget(spec, prompt.ids.length);
          if (seen.has(budget)) continue;
          seen.add(budget);
          runs.push({ method, plan, needsDraft, settings, spec, budget, prompt, selfCheck: false });
        }
        // The built-in self-check: a budget of the whole prompt must reproduce full KV exactly.
        const n = prompt.ids.length;
        runs.push({ method, plan, needsDraft, settings, spec: { kind: 'tokens', tokens: n, text: `${n} (= prompt)` }, budget: n, prompt, selfCheck: true });
      }
    }

    const progress = new ProgressReporter(runs.length, options.onProgress);
    const fingerprintOf = modelFingerprinter({ targetDir, draftDir });
    const resumedRevisions = new ResumedRevisions();
    const references = new Map<string, Reference>();
    const reference = async (prompt: Prompt): Promise<Reference> => {
      let ref = references.get(prompt.name);
      if (!ref) {
        const full = planMethod('full', {});
        const greedy = await runPlanIds(full, models, prompt.ids, steps, options.signal);
        const logits = await teacherForcedLogits(full, models, prompt.ids, greedy.tokens, options.signal);
        ref = { tokens: greedy.tokens, logits, kvBytes: greedy.kvBytes.afterPrefill };
        references.set(prompt.name, ref);
      }
      return ref;
    };
    try {
      for (const run of runs) {
        const label = `${run.method} ${run.budget === null ? '' : `b${run.budget} `}${run.prompt.name}${run.selfCheck ? ' [self-check]' : ''}`;
        const runOptions = methodOptions[run.method];
        const dir = join(out, 'runs', runName({ method: run.method, budget: run.budget, length: run.prompt.ids.length, task: run.prompt.name, options: runOptions }) + (run.selfCheck && run.budget !== null ? '__selfcheck' : ''));
        const metricsPath = join(dir, 'metrics.json');
        const fingerprint = { models: fingerprintOf({ needsDraft: run.needsDraft }), settings: run.settings };
        const state = resumeState<FidelityResultRow>(metricsPath, fingerprint);
        let row: FidelityResultRow;
        if (state.kind === 'resume') {
          row = state.metrics;
          resumedRevisions.add(dir);
          progress.finish(label, 'done earlier (resumed)');
        } else {
          progress.update(label, state.kind === 'stale' ? `stale (${state.reason}): rerunning` : 'running');
          const ref = await reference(run.prompt);
          const done = await fidelityRun(run.method, run.plan(run.budget ?? undefined), run.spec, run.budget, run.prompt, ref, models, options.signal);
          row = { ...done.row, ...withMethodOptions(runOptions) };
          writeJson(join(dir, 'config.json'), {
            method: run.method,
            budget: run.budget,
            budgetSpec: run.spec?.text ?? null,
            budgetFraction: run.budget === null ? null : run.budget / run.prompt.ids.length,
            windowSize: windowSize ?? null,
            methodOptions: runOptions ?? {},
            prompt: run.prompt.name,
            promptTokens: run.prompt.ids.length,
            steps,
            selfCheck: run.selfCheck,
            generation: 'greedy',
            target: targetDir,
            draft: draftDir,
          });
          writeJson(join(dir, 'run_meta.json'), {
            ...runMeta({ seeds: { seed } }, options.recordPackages),
            queryAware: { methodScoresWithQuery: scoresWithQuery(run.method) },
            raggedCache: models.ragged,
            models: { target: { dir: targetDir, ...models.target.info }, draft: models.draft ? { dir: draftDir, ...models.draft.info } : null },
          });
          writeText(join(dir, 'predictions.jsonl'), `${JSON.stringify({ prompt: run.prompt.name, reference: ref.tokens, ...done.detail })}\n`);
          writeJson(metricsPath, withRunFingerprint(row, fingerprint));
          progress.finish(label, staleOutcome(state, row.skipped ? `skipped (${row.skipped})` : `agreement ${row.agreement?.toFixed(3)}, KL ${row.meanKl?.toExponential(2)}`));
        }
        // full is both the sweep's reference row and part of the self-check.
        if (run.selfCheck) selfRows.push(row);
        if (!run.selfCheck || run.method === 'full') rows.push(row);
      }
    } finally {
      progress.end();
    }
    const note = resumedRevisions.note();
    if (note) options.onProgress?.({ type: 'note', message: note });
  } finally {
    await models.dispose();
  }

  const failures: string[] = [];
  for (const r of selfRows) {
    if (r.skipped) continue;
    if (r.agreement !== 1 || r.agreementPrefix !== 1 || (r.meanKl ?? 1) > SELF_CHECK_KL_TOLERANCE) {
      failures.push(`${methodLabel(r.method, r.methodOptions)}${r.budget === null ? '' : ` at budget ${r.budget}`} on ${r.prompt}: agreement ${r.agreement}, KL ${r.meanKl}`);
    }
  }
  // The full row of the sweep is the reference itself.
  const report: FidelityReport = {
    results: rows,
    summary: summarize(rows),
    selfCheck: { passed: failures.length === 0, tolerance: SELF_CHECK_KL_TOLERANCE, rows: selfRows, failures },
  };
  writeText(join(out, 'summary.md'), fidelityMarkdown(report, steps));
  writeText(join(out, 'kl-vs-budget.svg'), fidelityChart(rows));
  writeJson(join(out, 'results.json'), report);
  return report;
}

async function fidelityRun(
  method: string,
  plan: MethodPlan,
  spec: BudgetSpec | null,
  budget: number | null,
  prompt: Prompt,
  ref: Reference,
  models: BenchModels,
  signal?: AbortSignal,
): Promise<{ row: FidelityResultRow; detail: Record<string, unknown> }> {
  const base = { method, budget, budgetSpec: spec?.text ?? null, prompt: prompt.name, promptTokens: prompt.ids.length, steps: ref.tokens.length, fullKvBytes: ref.kvBytes };
  const V = models.target.info.vocabSize;
  const skipped = (reason: string) => ({
    row: { ...base, agreementPrefix: null, agreement: null, forcedTop1: null, meanKl: null, kvBytes: null, skipped: reason },
    detail: { skipped: reason },
  });
  try {
    if (plan.draftOnly && models.draft && models.draft.tokenizer.fingerprint !== models.target.tokenizer.fingerprint) {
      return skipped('draft and target vocabularies differ: no token-level comparison');
    }
    // Greedy generation from token ids (the same ids full KV saw).
    const greedy = plan.draftOnly
      ? await models.draft!.generate({ inputIds: prompt.ids }, { maxNewTokens: ref.tokens.length, signal })
      : await runPlanIds(plan, models, prompt.ids, ref.tokens.length, signal);
    const logits = await teacherForcedLogits(plan, models, prompt.ids, ref.tokens, signal);
    const kls: number[] = [];
    let top1 = 0;
    for (let i = 0; i < ref.tokens.length; i++) {
      const p = ref.logits.subarray(i * V, (i + 1) * V);
      const q = logits.subarray(i * V, (i + 1) * V);
      kls.push(klDivergence(p, q));
      if (argmax(q) === ref.tokens[i]) top1++;
    }
    const agree = agreement(ref.tokens, greedy.tokens);
    return {
      row: {
        ...base,
        agreementPrefix: agree.prefix,
        agreement: agree.overall,
        forcedTop1: ref.tokens.length ? top1 / ref.tokens.length : 1,
        meanKl: kls.length ? kls.reduce((a, b) => a + b, 0) / kls.length : 0,
        kvBytes: greedy.kvBytes.afterPrefill,
      },
      detail: { tokens: greedy.tokens, klPerStep: kls.map((k) => Number(k.toPrecision(6))), keptKvTokens: greedy.usage.keptKvTokens },
    };
  } catch (error) {
    const reason = skipReason(error);
    if (!reason) throw error;
    return skipped(reason);
  }
}

async function runPlanIds(plan: MethodPlan, models: BenchModels, ids: number[], maxNewTokens: number, signal?: AbortSignal) {
  const pipeline = createPipeline({ target: models.target, draft: plan.needsDraft ? models.draft : undefined, ...plan.stages });
  return pipeline.generate({ inputIds: ids }, { maxNewTokens, signal });
}

function summarize(rows: FidelityResultRow[]): FidelitySummaryRow[] {
  const groups = new Map<string, FidelityResultRow[]>();
  for (const r of rows) {
    if (r.skipped) continue;
    const k = JSON.stringify([r.method, r.budgetSpec]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  return [...groups.values()].map((g) => ({
    method: g[0].method,
    budgetSpec: g[0].budgetSpec,
    agreementPrefix: mean(g.map((r) => r.agreementPrefix ?? 0)),
    agreement: mean(g.map((r) => r.agreement ?? 0)),
    meanKl: mean(g.map((r) => r.meanKl ?? 0)),
    kvBytesRatio: mean(g.map((r) => (r.kvBytes ?? 0) / r.fullKvBytes)),
    prompts: g.length,
    ...withMethodOptions(g[0].methodOptions),
  }));
}

function fidelityMarkdown(report: FidelityReport, steps: number): string {
  const fmtRow = (r: FidelityResultRow) => [
    methodLabel(r.method, r.methodOptions),
    r.budgetSpec ?? '–',
    r.budget ?? '–',
    r.prompt,
    r.promptTokens,
    r.skipped ? 'skipped' : (r.agreementPrefix ?? 0).toFixed(3),
    r.skipped ? '' : (r.agreement ?? 0).toFixed(3),
    r.skipped ? '' : (r.forcedTop1 ?? 0).toFixed(3),
    r.skipped ? '' : (r.meanKl ?? 0).toExponential(3),
    r.skipped ? r.skipped : `${r.kvBytes} (${((100 * (r.kvBytes ?? 0)) / r.fullKvBytes).toFixed(1)}%)`,
  ];
  const header = ['method', 'budget', 'tokens', 'prompt', 'prompt tokens', 'agree (prefix)', 'agree (all)', 'forced top-1', 'mean KL', 'KV bytes'];
  const lines = [
    '# Fidelity to full KV',
    '',
    `Greedy agreement over the first ${steps} generated tokens; KL(full ‖ method) in nats, mean over the first ${steps} steps, teacher-forced on the full-KV continuation.`,
    '',
    markdownTable(header, report.results.map(fmtRow)),
    '',
    `## Self-check (budget ≥ prompt length ⇒ agreement 1, KL 0): ${report.selfCheck.passed ? 'PASSED' : 'FAILED'}`,
    '',
    markdownTable(header, report.selfCheck.rows.map(fmtRow)),
  ];
  if (report.selfCheck.failures.length) lines.push('', ...report.selfCheck.failures.map((f) => `- ${f}`));
  return `${lines.join('\n')}\n`;
}

function fidelityChart(rows: FidelityResultRow[]): string {
  const prompts = [...new Set(rows.map((r) => r.prompt))];
  const panels = prompts.map((prompt) => {
    const mine = rows.filter((r) => r.prompt === prompt && !r.skipped && r.budget !== null);
    const methods = [...new Set(mine.map((r) => r.method))];
    return { title: prompt, series: methods.map((m) => ({ name: methodLabel(m, mine.find((r) => r.method === m)?.methodOptions), points: mine.filter((r) => r.method === m).map((r) => [r.budget as number, r.meanKl ?? 0] as [number, number]) })) };
  });
  return lineChart({ title: 'Mean KL(full ‖ method) vs budget (teacher-forced)', xLabel: 'budget (tokens, log scale)', yLabel: 'mean KL (nats)', panels, xLog: true });
}
