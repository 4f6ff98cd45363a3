import { describe, expect, it } from 'vitest';
import { bootstrapMean, compareRuns, formatDifference, mcnemarExact, pairedDifference, scoreInterval, wilsonInterval } from '../src/index.js';

describe('wilsonInterval (hand-computed, z = 1.96)', () => {
  it('8 of 10', () => {
    // p = 0.8, z² = 3.8416, d = 1 + z²/n = 1.38416
    // centre = (0.8 + z²/2n) / d = (0.8 + 0.19208) / 1.38416 = 0.716738
    // half = z·sqrt(p(1-p)/n + z²/4n²) / d = 1.96·sqrt(0.016 + 0.009604) / 1.38416 = 1.96·0.160012 / 1.38416 = 0.226580
    // → [0.490158, 0.943318]
    const { low, high } = wilsonInterval(8, 10, 1.96);
    expect(low).toBeCloseTo(0.490158, 5);
    expect(high).toBeCloseTo(0.943318, 5);
  });

  it('10 of 10 and 0 of 10: the interval keeps width at the edges', () => {
    // centre = (1 + 0.19208) / 1.38416 = 0.861230; half = 1.96·sqrt(0.009604) / 1.38416 = 1.96·0.098 / 1.38416 = 0.138770
    // → [0.722460, 1]; 0 of 10 mirrors it: [0, 0.277540]
    const all = wilsonInterval(10, 10, 1.96);
    expect(all.low).toBeCloseTo(0.72246, 5);
    expect(all.high).toBe(1);
    const none = wilsonInterval(0, 10, 1.96);
    expect(none.low).toBe(0);
    expect(none.high).toBeCloseTo(0.27754, 5);
  });

  it('rejects impossible counts with a typed error', () => {
    expect(() => wilsonInterval(11, 10)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => wilsonInterval(0, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('mcnemarExact (binomial, two-sided)', () => {
  it('matches hand-computed binomial tails', () => {
    // b = 1, c = 6: n = 7, P(X ≤ 1) = (C(7,0) + C(7,1)) / 2^7 = 8/128 → p = 2·0.0625 = 0.125
    expect(mcnemarExact(1, 6)).toBeCloseTo(0.125, 12);
    expect(mcnemarExact(6, 1)).toBeCloseTo(0.125, 12);
    // b = 0, c = 5: P(X ≤ 0) = 1/32 → p = 0.0625
    expect(mcnemarExact(0, 5)).toBeCloseTo(0.0625, 12);
    // b = 2, c = 8: (1 + 10 + 45)/1024 = 56/1024 → p = 0.109375
    expect(mcnemarExact(2, 8)).toBeCloseTo(0.109375, 12);
    // b = 0, c = 10: 2/1024 = 0.001953125
    expect(mcnemarExact(0, 10)).toBeCloseTo(0.001953125, 12);
  });

  it('balanced or no discordant pairs: p = 1', () => {
    // b = c = 3: 2·(1 + 6 + 15 + 20)/64 = 84/64 → capped at 1
    expect(mcnemarExact(3, 3)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
  });

  it('stays finite for large counts (log-space sum)', () => {
    // 600 vs 400 discordant pairs: z ≈ (600 − 500)/sqrt(250) = 6.3 → p ≈ 3e-10, never NaN
    const p = mcnemarExact(600, 400);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-8);
  });
});

describe('bootstrap (known answers)', () => {
  it('two samples {0, 1}: resampled means are 0, ½, 1 with chances ¼, ½, ¼, so the 95% interval is [0, 1]', () => {
    const { mean, low, high } = bootstrapMean([[0, 1]]);
    expect(mean).toBe(0.5);
    expect(low).toBe(0);
    expect(high).toBe(1);
  });

  it('a constant sample has a zero-width interval', () => {
    const { mean, low, high } = bootstrapMean([[0.4, 0.4, 0.4]]);
    for (const x of [mean, low, high]) expect(x).toBeCloseTo(0.4, 12);
  });

  it('400 fair coin flips: the interval is the normal one, 0.5 ± 1.96·0.025 = [0.451, 0.549] (± bootstrap noise)', () => {
    const flips = Array.from({ length: 400 }, (_, i) => i % 2);
    const { low, high } = bootstrapMean([flips]);
    expect(low).toBeCloseTo(0.451, 2);
    expect(high).toBeCloseTo(0.549, 2);
  });

  it('stratified: the mean over groups, each group resampled on its own', () => {
    // group means 1 and 0: every resample keeps both groups whole-constant → exactly 0.5
    expect(bootstrapMean([[1, 1, 1], [0, 0]])).toEqual({ mean: 0.5, low: 0.5, high: 0.5 });
  });

  it('is reproducible (fixed seed)', () => {
    const xs = [0.2, 0.4, 1, 0, 0.6, 0.8];
    expect(bootstrapMean([xs])).toEqual(bootstrapMean([xs]));
  });
});

describe('scoreInterval', () => {
  it('Wilson for 0/1 outcomes, bootstrap for fractional', () => {
    const binary = scoreInterval([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(binary.method).toBe('wilson');
    expect(binary.low).toBeCloseTo(0.4902, 3);
    expect(scoreInterval([0.2, 0.4, 0.6]).method).toBe('bootstrap');
  });
});

describe('pairedDifference', () => {
  it('0/1 outcomes of one task: exact McNemar p and the discordant counts', () => {
    // 10 pairs: A right & B wrong on 6, B right & A wrong on 1, both right on 3 → b = 6, c = 1, p = 0.125 (above)
    const a = [1, 1, 1, 1, 1, 1, 0, 1, 1, 1];
    const b = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1];
    const d = pairedDifference([{ a, b }]);
    expect(d.test).toBe('mcnemar-exact');
    expect(d.discordant).toEqual({ aOnly: 6, bOnly: 1 });
    expect(d.p).toBeCloseTo(0.125, 12);
    expect(d.difference).toBeCloseTo(0.5, 12);
    expect(d.low).toBeLessThan(0.5);
    expect(d.high).toBeGreaterThan(0.5);
  });

  it('a constant paired difference: interval collapses onto it, and p (bootstrap) is its floor 1/(R + 1)', () => {
    const a = [0.6, 0.8, 1.0, 0.4];
    const b = a.map((x) => x - 0.2);
    const d = pairedDifference([{ a, b }]);
    expect(d.test).toBe('paired-bootstrap');
    expect(d.difference).toBeCloseTo(0.2, 12);
    expect(d.low).toBeCloseTo(0.2, 12);
    expect(d.high).toBeCloseTo(0.2, 12);
    // no resample reaches 0: k = 0 → p = 1/4001
    expect(d.p).toBeCloseTo(1 / 4001, 12);
    expect(formatDifference('a', 'b', d)).toBe('a − b = +20.0 ± 0.0 points (p < 0.001)');
  });

  it('pairing removes what the samples share: the unpaired spread is large, the paired one zero', () => {
    // Scores vary a lot across samples, but A beats B by exactly 0.1 on every sample.
    const a = [0.1, 0.9, 0.3, 1.0, 0.5, 0.7];
    const b = a.map((x) => x - 0.1);
    const unpaired = bootstrapMean([a]);
    expect(unpaired.high - unpaired.low).toBeGreaterThan(0.3);
    const d = pairedDifference([{ a, b }]);
    expect(d.high - d.low).toBeCloseTo(0, 12);
  });

  it('1000 pairs, A − B ∈ {0, 0.5} half each: 0.25 ± 1.96·0.25/sqrt(1000) = ±0.0155', () => {
    const a = Array.from({ length: 1000 }, () => 1);
    const b = Array.from({ length: 1000 }, (_, i) => i % 2);
    const d = pairedDifference([{ a: a.map((x) => x * 0.5), b: b.map((x) => x * 0.5) }]);
    // fractional scores (0.5 steps) → bootstrap; the differences are 0.5·{0,1}: mean 0.25, sd 0.25 → ± 1.96·0.25/sqrt(1000) = 0.0155
    expect(d.test).toBe('paired-bootstrap');
    expect(d.difference).toBeCloseTo(0.25, 12);
    expect(d.low).toBeCloseTo(0.25 - 0.0155, 2);
    expect(d.high).toBeCloseTo(0.25 + 0.0155, 2);
  });

  it('identical methods: difference 0, p = 1', () => {
    const a = [0.2, 0.4, 1];
    expect(pairedDifference([{ a, b: a }])).toMatchObject({ difference: 0, low: 0, high: 0, p: 1 });
  });

  it('rejects unequal sample sets with a typed error', () => {
    expect(() => pairedDifference([{ a: [1, 0], b: [1] }])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('prints "A − B = x ± y points (p = …)"', () => {
    const d = { difference: -0.05, low: -0.09, high: -0.01, p: 0.0123, test: 'paired-bootstrap' as const, pairs: 450 };
    expect(formatDifference('speckv', 'snapkv', d)).toBe('speckv − snapkv = -5.0 ± 4.0 points (p = 0.01)');
  });
});

describe('compareRuns', () => {
  const run = (method: string, budget: number | null, task: string, scores: number[], seeds = scores.map((_, i) => 100 + i)) => ({
    method,
    budget,
    length: 1024,
    task,
    outcomes: scores.map((score, index) => ({ index, seed: seeds[index], score })),
  });

  it('pairs samples by seed, per task and over tasks; full pairs with every budget', () => {
    const runs = [
      run('speckv', 16, 'vt', [1, 1, 0, 1]),
      run('snapkv', 16, 'vt', [0, 1, 0, 0]),
      run('speckv', 16, 'niah', [1, 1]),
      // snapkv ran samples with seeds 101 and 102 only: the pair is on seed 101
      run('snapkv', 16, 'niah', [0, 1], [101, 102]),
      run('full', null, 'vt', [1, 1, 1, 1]),
    ];
    const out = compareRuns(runs, [
      { a: 'speckv', b: 'snapkv' },
      { a: 'full', b: 'speckv' },
    ]);
    const vt = out.find((c) => c.a === 'speckv' && c.task === 'vt');
    expect(vt).toMatchObject({ budgetA: 16, budgetB: 16, pairs: 4, discordant: { aOnly: 2, bOnly: 0 } });
    expect(vt?.difference).toBeCloseTo(0.5, 12);
    expect(out.find((c) => c.a === 'speckv' && c.task === 'niah')).toMatchObject({ pairs: 1, difference: 1 });
    // over tasks: mean of the per-task differences (0.5 and 1), not of the 5 pooled pairs (0.6)
    const overall = out.find((c) => c.a === 'speckv' && c.task === null);
    expect(overall?.tasks).toEqual(['vt', 'niah']);
    expect(overall?.difference).toBeCloseTo(0.75, 12);
    expect(out.find((c) => c.a === 'full')).toMatchObject({ budgetA: null, budgetB: 16, task: 'vt', difference: 0.25 });
  });
});

describe('--compare', () => {
  it('parses A:B pairs of --methods; anything else is a typed usage error naming what is valid', async () => {
    const { parseComparePairs, allPairs } = await import('../src/index.js');
    expect(parseComparePairs('speckv:snapkv, laq:snapkv', ['speckv', 'laq', 'snapkv'])).toEqual([
      { a: 'speckv', b: 'snapkv' },
      { a: 'laq', b: 'snapkv' },
    ]);
    expect(parseComparePairs(undefined, ['speckv'])).toBeUndefined();
    for (const bad of ['speckv-snapkv', 'speckv:h2o', 'speckv:speckv']) {
      expect(() => parseComparePairs(bad, ['speckv', 'snapkv'])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: expect.objectContaining({ value: bad }) }));
    }
    expect(allPairs(['a', 'b', 'c'])).toEqual([
      { a: 'a', b: 'b' },
      { a: 'a', b: 'c' },
      { a: 'b', b: 'c' },
    ]);
  });
});
