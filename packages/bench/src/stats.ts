import { InvalidArgumentError } from '@draft/core';
import { Rng } from './rng.js';

/** A 95% (by default) interval for a score in 0..1, and how it was made. */
export interface ScoreInterval {
  low: number;
  high: number;
  /** `wilson`: every outcome was 0 or 1; `bootstrap`: percentile bootstrap of the mean (fractional scores). */
  method: 'wilson' | 'bootstrap';
}

/** A paired difference A − B in 0..1 units over the same samples. */
export interface PairedDifference {
  /** Mean of A − B (over tasks: mean of the per-task mean differences). */
  difference: number;
  /** Percentile interval of the paired bootstrap. */
  low: number;
  high: number;
  /**
   * Two-sided p: exact McNemar when every outcome is 0 or 1 (one task), else the paired bootstrap's,
   * (2·min(#resamples ≤ 0, #resamples ≥ 0) + 1) / (resamples + 1), so never below 1/(resamples + 1).
   */
  p: number;
  test: 'mcnemar-exact' | 'paired-bootstrap';
  /** Pairs compared. */
  pairs: number;
  /** Binary outcomes only: samples A got right and B wrong (b), and the reverse (c). */
  discordant?: { aOnly: number; bOnly: number };
}

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;
/** Resamples of every bootstrap here; a fixed seed makes reports reproducible (and resumed reports identical). */
export const BOOTSTRAP_RESAMPLES = 4000;
export const BOOTSTRAP_SEED = 16;

/**
 * Wilson score interval for k successes in n trials (Wilson 1927): unlike the normal interval it stays inside
 * [0, 1] and does not collapse to a point at 0/n or n/n, which is where these benchmarks sit.
 */
export function wilsonInterval(successes: number, trials: number, z = Z95): { low: number; high: number } {
  if (!Number.isInteger(trials) || trials < 1) throw new InvalidArgumentError({ argument: 'trials', value: trials, expected: 'an integer ≥ 1' });
  if (!Number.isInteger(successes) || successes < 0 || successes > trials) {
    throw new InvalidArgumentError({ argument: 'successes', value: successes, expected: `an integer in 0..${trials}` });
  }
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Exact (binomial) McNemar test, two-sided: under H0 the b + c discordant pairs split 50/50, so
 * p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Binomial(b + c, 1/2); p = 1 when there are no discordant pairs.
 */
export function mcnemarExact(aOnly: number, bOnly: number): number {
  for (const [name, v] of [['aOnly', aOnly], ['bOnly', bOnly]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError({ argument: name, value: v, expected: 'an integer ≥ 0' });
  }
  const n = aOnly + bOnly;
  if (n === 0) return 1;
  const k = Math.min(aOnly, bOnly);
  // Sum in log space: C(n, i) / 2^n underflows for n above ~1000.
  let logC = 0;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logC - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

const isBinary = (xs: readonly number[]) => xs.every((x) => x === 0 || x === 1);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Percentile of sorted values, linear between order statistics (type 7, as numpy's default). */
function percentile(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function checkStrata(strata: readonly (readonly number[])[], argument: string): void {
  if (strata.length === 0 || strata.some((s) => s.length === 0)) throw new InvalidArgumentError({ argument, value: strata.map((s) => s.length).join(','), expected: 'at least one group, each with at least one score' });
}

/**
 * Stratified percentile bootstrap of a mean of group means (a task mean, or the mean over tasks): each
 * resample redraws every group's samples with replacement, so each task keeps its own sample count.
 */
export function bootstrapMean(strata: readonly (readonly number[])[], options: { resamples?: number; seed?: number; level?: number } = {}): { mean: number; low: number; high: number } {
  checkStrata(strata, 'scores');
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const rng = new Rng(options.seed ?? BOOTSTRAP_SEED);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (const s of strata) {
      let sum = 0;
      for (let i = 0; i < s.length; i++) sum += s[rng.int(s.length)];
      total += sum / s.length;
    }
    stats[r] = total / strata.length;
  }
  const sorted = Array.from(stats).sort((a, b) => a - b);
  const alpha = 1 - (options.level ?? 0.95);
  return { mean: mean(strata.map(mean)), low: percentile(sorted, alpha / 2), high: percentile(sorted, 1 - alpha / 2) };
}

/** The interval of one task's scores: Wilson for 0/1 outcomes, bootstrap for fractional ones (vt, multivalue). */
export function scoreInterval(scores: readonly number[]): ScoreInterval {
  if (isBinary(scores)) {
    return { ...wilsonInterval(scores.filter((x) => x === 1).length, scores.length), method: 'wilson' };
  }
  const { low, high } = bootstrapMean([scores]);
  return { low, high, method: 'bootstrap' };
}

/** The interval of a mean over tasks (stratified bootstrap; one binary task: Wilson). */
export function meanInterval(strata: readonly (readonly number[])[]): ScoreInterval {
  if (strata.length === 1) return scoreInterval(strata[0]);
  const { low, high } = bootstrapMean(strata);
  return { low, high, method: 'bootstrap' };
}

/**
 * Paired comparison A − B on the same samples, grouped by task: the difference of means (mean over groups),
 * a stratified paired-bootstrap interval (each resample redraws sample indices, keeping A and B of a sample
 * together, so the shared difficulty of a sample cancels), and a two-sided p: exact McNemar for one group of
 * 0/1 outcomes, else the bootstrap's (twice the smaller share of resampled differences on either side of 0).
 */
export function pairedDifference(strata: readonly { a: readonly number[]; b: readonly number[] }[], options: { resamples?: number; seed?: number } = {}): PairedDifference {
  for (const s of strata) {
    if (s.a.length !== s.b.length) throw new InvalidArgumentError({ argument: 'pairs', value: `${s.a.length} vs ${s.b.length} scores`, expected: 'as many scores for A as for B (the same samples)' });
  }
  const diffs = strata.map((s) => s.a.map((x, i) => x - s.b[i]));
  checkStrata(diffs, 'pairs');
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const rng = new Rng(options.seed ?? BOOTSTRAP_SEED);
  const stats: number[] = [];
  let below = 0;
  let above = 0;
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (const d of diffs) {
      let sum = 0;
      for (let i = 0; i < d.length; i++) sum += d[rng.int(d.length)];
      total += sum / d.length;
    }
    const x = total / diffs.length;
    stats.push(x);
    if (x <= 0) below++;
    if (x >= 0) above++;
  }
  stats.sort((a, b) => a - b);
  const difference = mean(diffs.map(mean));
  const pairs = diffs.reduce((a, d) => a + d.length, 0);
  const out = { difference, low: percentile(stats, 0.025), high: percentile(stats, 0.975), pairs };
  if (strata.length === 1 && isBinary(strata[0].a) && isBinary(strata[0].b)) {
    const aOnly = strata[0].a.filter((x, i) => x === 1 && strata[0].b[i] === 0).length;
    const bOnly = strata[0].a.filter((x, i) => x === 0 && strata[0].b[i] === 1).length;
    return { ...out, p: mcnemarExact(aOnly, bOnly), test: 'mcnemar-exact', discordant: { aOnly, bOnly } };
  }
  // Every pair equal: no evidence of a difference at all. Otherwise (k + 1)/(R + 1) with k = twice the resamples
  // on the far side of 0: never 0, since R resamples cannot resolve a p below about 1/R (Davison & Hinkley 1997, §4.2).
  const p = diffs.every((d) => d.every((x) => x === 0)) ? 1 : Math.min(1, (2 * Math.min(below, above) + 1) / (resamples + 1));
  return { ...out, p, test: 'paired-bootstrap' };
}

/** "A − B = x ± y points (p = …)": y is the half-width of the interval (its ends are in the JSON). */
export function formatDifference(a: string, b: string, d: PairedDifference): string {
  const half = (d.high - d.low) / 2;
  const p = formatP(d.p);
  return `${a} − ${b} = ${signed(100 * d.difference)} ± ${(100 * half).toFixed(1)} points (p ${p.startsWith('<') ? p : `= ${p}`})`;
}

function signed(x: number): string {
  const s = x.toFixed(1);
  return s === '-0.0' ? '0.0' : x > 0 ? `+${s}` : s;
}

export function formatP(p: number): string {
  if (p >= 0.995) return '1';
  if (p >= 0.01) return p.toFixed(2);
  return p < 1e-3 ? '< 0.001' : p.toFixed(3);
}
