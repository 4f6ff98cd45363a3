import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchProgressEvent, type RulerOptions, type RulerReport, runRuler } from '../src/index.js';

// `runRuler` used as a library user would: the bundled trained pair (models/target, models/draft, symbolic task
// format), a small sweep into a temporary folder. Expectations are recomputed here from the per-sample files with
// hand-written formulas (whole-token containment, Wilson's interval, the exact binomial McNemar test), not taken
// from the harness's own helpers.
const models = fileURLToPath(new URL('../../../models', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-bench-api-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const base: RulerOptions = {
  target: join(models, 'target'),
  draft: join(models, 'draft'),
  // full keeps every entry; StreamingLLM at C = 16 keeps the first tokens and the last window: the needle is gone.
  methods: ['full', 'streamingllm'],
  budgets: [16],
  windowSize: 8,
  lengths: [512],
  tasks: ['niah_single_2', 'vt'],
  samples: 6,
  threads: 1,
};

interface Prediction {
  index: number;
  seed: number;
  answers: string[];
  prediction: string;
  score: number;
}

const predictionsOf = (out: string, run: string): Prediction[] =>
  readFileSync(join(out, 'runs', run, 'predictions.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Prediction);

/** string_match_all on whole tokens: the share of answers that appear as a word of the prediction. */
function matchAll(prediction: string, answers: readonly string[]): number {
  const words = new Set(prediction.trim().split(/\s+/));
  return answers.filter((a) => words.has(a)).length / answers.length;
}

/** Wilson's 95% interval for k of n, from its formula (z = 1.959964). */
function wilson(k: number, n: number): [number, number] {
  const z = 1.959964;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Two-sided exact McNemar: 2 · P(X ≤ min(b, c)), X ~ Binomial(b + c, 1/2), capped at 1. */
function mcnemar(b: number, c: number): number {
  const n = b + c;
  if (n === 0) return 1;
  let choose = 1;
  let tail = 0;
  for (let i = 0; i <= Math.min(b, c); i++) {
    if (i > 0) choose = (choose * (n - i + 1)) / i;
    tail += choose / 2 ** n;
  }
  return Math.min(1, 2 * tail);
}

describe('runRuler (programmatic API)', () => {
  const out = join(work, 'ruler');
  let report: RulerReport;
  const events: BenchProgressEvent[] = [];

  it('returns typed rows whose accuracies, intervals and comparisons follow from the per-sample outcomes', async () => {
    report = await runRuler({ ...base, out, onProgress: (e) => events.push(e) });

    // 2 tasks × (full once, streamingllm at 16): every run reported, in length × task × method order
    expect(report.results.map((r) => `${r.method}/${r.budget}/${r.task}`)).toEqual(['full/null/niah_single_2', 'streamingllm/16/niah_single_2', 'full/null/vt', 'streamingllm/16/vt']);
    for (const row of report.results) {
      const run = `${row.method}__${row.budget === null ? 'bnone' : `b${row.budget}`}__L512__${row.task}`;
      const lines = predictionsOf(out, run);
      expect(lines).toHaveLength(6);
      const scores = lines.map((l) => matchAll(l.prediction, l.answers));
      // the stored score of each sample is the metric of its stored prediction
      expect(lines.map((l) => l.score)).toEqual(scores);
      expect(row.samples).toBe(6);
      expect(row.accuracy).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / 6, 12);
      if (scores.every((s) => s === 0 || s === 1)) {
        const [low, high] = wilson(scores.filter((s) => s === 1).length, 6);
        expect(row.interval?.method).toBe('wilson');
        expect(row.interval?.low).toBeCloseTo(low, 5);
        expect(row.interval?.high).toBeCloseTo(high, 5);
      } else {
        expect(row.interval?.method).toBe('bootstrap');
        expect(row.interval!.low).toBeLessThanOrEqual(row.accuracy!);
        expect(row.interval!.high).toBeGreaterThanOrEqual(row.accuracy!);
      }
    }
    // needle samples have one answer: Wilson intervals there
    expect(report.results.filter((r) => r.task === 'niah_single_2').map((r) => r.interval?.method)).toEqual(['wilson', 'wilson']);
    // the trained target finds the needle with its whole cache; the harness is not scoring a stub
    const full = report.results.find((r) => r.method === 'full' && r.task === 'niah_single_2')!;
    expect(full.accuracy).toBeGreaterThanOrEqual(0.75);

    // summary: the mean over the two tasks, per method
    for (const method of ['full', 'streamingllm']) {
      const rows = report.results.filter((r) => r.method === method);
      const summary = report.summary.find((s) => s.method === method)!;
      expect(summary.accuracy).toBeCloseTo((rows[0].accuracy! + rows[1].accuracy!) / 2, 12);
      expect(summary.interval!.low).toBeLessThanOrEqual(summary.accuracy);
      expect(summary.interval!.high).toBeGreaterThanOrEqual(summary.accuracy);
    }

    // full − streamingllm on the needle task, paired by sample seed
    const a = predictionsOf(out, 'full__bnone__L512__niah_single_2');
    const b = predictionsOf(out, 'streamingllm__b16__L512__niah_single_2');
    expect(a.map((l) => l.seed)).toEqual(b.map((l) => l.seed));
    const diffs = a.map((l, i) => l.score - b[i].score);
    const niah = report.comparisons.find((c) => c.a === 'full' && c.b === 'streamingllm' && c.task === 'niah_single_2')!;
    expect(niah).toMatchObject({ budgetA: null, budgetB: 16, length: 512, pairs: 6 });
    expect(niah.difference).toBeCloseTo(diffs.reduce((x, y) => x + y, 0) / 6, 12);
    // one answer per needle sample: 0/1 outcomes, so the exact McNemar test on the discordant pairs
    const aOnly = diffs.filter((d) => d === 1).length;
    const bOnly = diffs.filter((d) => d === -1).length;
    expect(aOnly + bOnly).toBeGreaterThan(0);
    expect(niah).toMatchObject({ test: 'mcnemar-exact', discordant: { aOnly, bOnly } });
    expect(niah.p).toBeCloseTo(mcnemar(aOnly, bOnly), 12);
    // and over both tasks
    const overall = report.comparisons.find((c) => c.a === 'full' && c.b === 'streamingllm' && c.task === null)!;
    expect(overall).toMatchObject({ tasks: ['niah_single_2', 'vt'], pairs: 12, test: 'paired-bootstrap' });

    // progress: planned, one finish per run, ended
    expect(events[0]).toEqual({ type: 'start', total: 4 });
    expect(events.filter((e) => e.type === 'finish').map((e) => (e.type === 'finish' ? e.completed : 0))).toEqual([1, 2, 3, 4]);
    expect(events.at(-1)).toEqual({ type: 'end', completed: 4, total: 4 });

    // the files of a run folder: results.json is the returned report
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))).toEqual(report);
    for (const f of ['summary.md', 'accuracy-vs-budget.svg', 'outcomes.jsonl']) expect(existsSync(join(out, f)), f).toBe(true);
    const meta = JSON.parse(readFileSync(join(out, 'runs', 'full__bnone__L512__vt', 'run_meta.json'), 'utf8'));
    expect(meta.packages['@draft/bench']).toMatch(/^\d+\.\d+\.\d+/);
  }, 180_000);

  it('a second call resumes every run and returns the same report', async () => {
    const again: BenchProgressEvent[] = [];
    expect(await runRuler({ ...base, out, onProgress: (e) => again.push(e) })).toEqual(report);
    const outcomes = again.flatMap((e) => (e.type === 'finish' ? [e.outcome] : []));
    expect(outcomes).toEqual(Array(4).fill('done earlier (resumed)'));
  }, 60_000);

  it('an AbortSignal stops the sweep between runs; finished runs resume next time', async () => {
    const aborted = join(work, 'aborted');
    const controller = new AbortController();
    const stopAfterFirst = (e: BenchProgressEvent) => {
      if (e.type === 'finish') controller.abort(new Error('stop'));
    };
    await expect(runRuler({ ...base, out: aborted, signal: controller.signal, onProgress: stopAfterFirst })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(readdirSync(join(aborted, 'runs')).filter((run) => existsSync(join(aborted, 'runs', run, 'metrics.json')))).toEqual(['full__bnone__L512__niah_single_2']);
    const outcomes: string[] = [];
    await runRuler({ ...base, out: aborted, onProgress: (e) => e.type === 'finish' && outcomes.push(e.outcome) });
    expect(outcomes[0]).toBe('done earlier (resumed)');
    expect(outcomes.slice(1).every((o) => o !== 'done earlier (resumed)')).toBe(true);
  }, 180_000);
});
