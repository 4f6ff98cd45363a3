// What a ruler run writes for readers (summary.md, the plot) and the comparison lines the CLI prints.
import { methodLabel } from '@draft/methods';
import { markdownTable } from './markdown.js';
import type { RulerReport, RulerRunMetrics, RulerSummaryRow } from './ruler.js';
import type { RulerComparison } from './ruler-comparisons.js';
import { formatDifference, formatP, type ScoreInterval } from './stats.js';
import { flatSeries, lineChart } from './svg.js';

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

/** summary.md of a ruler run: per-task scores with intervals, paired differences, skipped runs. */
export function rulerMarkdown(report: RulerReport, metrics: RulerRunMetrics[], info: { tasks: string[]; style: string; samples: number; seed: number }): string {
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

/** accuracy-vs-budget.svg: one panel per length, full / draft-only as flat references, 95% interval bars. */
export function rulerChart(report: RulerReport, lengths: number[]): string {
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

