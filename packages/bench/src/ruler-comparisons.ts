import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@draft/core';
import { type PairedDifference, pairedDifference } from './stats.js';

/** One sample's outcome in a run (a line of predictions.jsonl, the part comparisons need). */
export interface SampleOutcome {
  index: number;
  /** `deriveSeed(seed, task, length, index)`: equal seeds = the same prompt, so two methods pair on it. */
  seed: number;
  score: number;
}

/** The outcomes of a run folder's predictions.jsonl, in sample order (empty when it has none). */
export function readOutcomes(predictionsPath: string): SampleOutcome[] {
  if (!existsSync(predictionsPath)) return [];
  return readFileSync(predictionsPath, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      const { index, seed, score } = JSON.parse(line) as SampleOutcome;
      return { index, seed, score };
    });
}

/** A pair of methods to compare: A − B. */
export interface ComparePair {
  a: string;
  b: string;
}

/** Pairs of two different methods of the run; anything else is an InvalidArgumentError naming `compare`. */
export function checkComparePairs(pairs: readonly ComparePair[], methods: readonly string[]): ComparePair[] {
  return pairs.map((pair) => {
    const { a, b } = pair ?? {};
    if (!methods.includes(a) || !methods.includes(b) || a === b) {
      throw new InvalidArgumentError({ argument: 'compare', value: `${a}:${b}`, expected: `A:B with two different methods of the run (${methods.join(', ')})` });
    }
    return { a, b };
  });
}

/** Reads `a:b,c:d` (the CLI's `--compare`) into checked pairs; undefined stays undefined. */
export function parseComparePairs(raw: string | undefined, methods: readonly string[]): ComparePair[] | undefined {
  if (raw === undefined) return undefined;
  const texts = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return texts.map((text) => {
    const parts = text.split(':');
    if (parts.length !== 2) throw new InvalidArgumentError({ argument: 'compare', value: text, expected: `A:B with two different methods of the run (${methods.join(', ')})` });
    return checkComparePairs([{ a: parts[0], b: parts[1] }], methods)[0];
  });
}

/** Every pair of the methods in their order (A before B): the default comparisons. */
export function allPairs(methods: readonly string[]): ComparePair[] {
  return methods.flatMap((a, i) => methods.slice(i + 1).map((b) => ({ a, b })));
}

/** A run's outcomes, keyed the way comparisons look them up. */
export interface RunOutcomes {
  method: string;
  budget: number | null;
  length: number;
  task: string;
  outcomes: SampleOutcome[];
}

/** `A − B` on the samples both ran, per task (`task` set) and over the tasks both ran (`task: null`). */
export interface RulerComparison extends PairedDifference {
  a: string;
  b: string;
  /** Budget of A and of B (null: full / draft-only, compared at every budget of the other). */
  budgetA: number | null;
  budgetB: number | null;
  length: number;
  /** null = mean over `tasks`. */
  task: string | null;
  tasks: string[];
}

/**
 * Paired comparisons of the pairs at each length and budget: a budgeted method against another at the same
 * budget, or against full / draft-only (no budget) at each of its budgets. Samples pair by their seed, so
 * two runs with other sample counts compare on the samples they share.
 */
export function compareRuns(runs: readonly RunOutcomes[], pairs: readonly ComparePair[]): RulerComparison[] {
  const out: RulerComparison[] = [];
  const lengths = [...new Set(runs.map((r) => r.length))];
  for (const { a, b } of pairs) {
    for (const length of lengths) {
      const ofA = runs.filter((r) => r.method === a && r.length === length && r.outcomes.length > 0);
      const ofB = runs.filter((r) => r.method === b && r.length === length && r.outcomes.length > 0);
      const budgetPairs = new Map<string, [number | null, number | null]>();
      for (const x of ofA) {
        for (const y of ofB) {
          if (x.budget === y.budget || x.budget === null || y.budget === null) budgetPairs.set(JSON.stringify([x.budget, y.budget]), [x.budget, y.budget]);
        }
      }
      for (const [budgetA, budgetB] of budgetPairs.values()) {
        const strata: { task: string; a: number[]; b: number[] }[] = [];
        for (const x of ofA.filter((r) => r.budget === budgetA)) {
          const y = ofB.find((r) => r.budget === budgetB && r.task === x.task);
          if (!y) continue;
          const bySeed = new Map(y.outcomes.map((o) => [o.seed, o.score]));
          const shared = x.outcomes.filter((o) => bySeed.has(o.seed));
          if (shared.length === 0) continue;
          strata.push({ task: x.task, a: shared.map((o) => o.score), b: shared.map((o) => bySeed.get(o.seed) as number) });
        }
        if (strata.length === 0) continue;
        const base = { a, b, budgetA, budgetB, length };
        for (const s of strata) out.push({ ...base, task: s.task, tasks: [s.task], ...pairedDifference([s]) });
        if (strata.length > 1) out.push({ ...base, task: null, tasks: strata.map((s) => s.task), ...pairedDifference(strata) });
      }
    }
  }
  return out;
}
