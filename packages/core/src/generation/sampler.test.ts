import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../spec/errors.js';
import { argmax, createSampler, mulberry32, presenceFrequencyProcessor, repetitionPenaltyProcessor, softmax, topKProcessor, topPProcessor } from './sampler.js';

const NEG = Number.NEGATIVE_INFINITY;

describe('mulberry32', () => {
  it('is deterministic per seed and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
    expect(mulberry32(43)()).not.toBe(xs[0]);
  });
});

describe('processors', () => {
  it('top-k keeps the k largest and ties with the k-th', () => {
    const row = Float32Array.from([1, 3, 2, 3, 0]);
    topKProcessor(2)(row, { tokens: [] });
    expect(Array.from(row)).toEqual([NEG, 3, NEG, 3, NEG]);
    const row3 = Float32Array.from([1, 3, 2, 3, 0]);
    topKProcessor(3)(row3, { tokens: [] });
    expect(Array.from(row3)).toEqual([NEG, 3, 2, 3, NEG]);
  });

  it('top-p keeps the shortest most-likely prefix reaching p', () => {
    // probabilities 0.5, 0.3, 0.15, 0.05 (in a shuffled order)
    const logits = [0.15, 0.5, 0.05, 0.3].map(Math.log);
    const a = Float32Array.from(logits);
    topPProcessor(0.7)(a, { tokens: [] }); // 0.5 < 0.7, 0.5 + 0.3 ≥ 0.7 → keep tokens 1 and 3
    expect(Array.from(a).map((x) => x === NEG)).toEqual([true, false, true, false]);
    const b = Float32Array.from(logits);
    topPProcessor(0.85)(b, { tokens: [] }); // needs 0.5 + 0.3 + 0.15
    expect(Array.from(b).map((x) => x === NEG)).toEqual([false, false, true, false]);
    const c = Float32Array.from(logits);
    topPProcessor(0.1)(c, { tokens: [] }); // always at least one
    expect(Array.from(c).map((x) => x === NEG)).toEqual([true, false, true, true]);
  });

  it('presence and frequency penalties subtract presence + frequency · count from each generated token', () => {
    const row = Float32Array.from([1, 2, 3, 4]);
    // token 1 once: 2 − 0.5 − 0.25·1 = 1.25; token 3 twice: 4 − 0.5 − 0.25·2 = 3; tokens 0 and 2 untouched
    presenceFrequencyProcessor(0.5, 0.25)(row, { tokens: [1, 3, 3] });
    expect(Array.from(row)).toEqual([1, 1.25, 3, 3]);
    const negative = Float32Array.from([1, 1]);
    presenceFrequencyProcessor(-1, 0)(negative, { tokens: [0, 0] }); // a negative presence penalty encourages
    expect(Array.from(negative)).toEqual([2, 1]);
  });

  it('the repetition penalty divides positive and multiplies negative logits of seen tokens, once per token', () => {
    const row = Float32Array.from([2, -1, 0.5, 3]);
    // token 0: 2 / 2 = 1; token 1 (seen twice, penalised once): −1 · 2 = −2; tokens 2, 3 unseen
    repetitionPenaltyProcessor(2)(row, { tokens: [0, 1, 1] });
    expect(Array.from(row)).toEqual([1, -2, 0.5, 3]);
  });

  it('softmax gives −∞ zero mass', () => {
    expect(Array.from(softmax([0, NEG, 0]))).toEqual([0.5, 0, 0.5]);
  });
});

describe('createSampler', () => {
  it('is greedy at temperature 0 (lowest index on ties)', () => {
    const s = createSampler({});
    expect(s.greedy).toBe(true);
    expect(s.sample(Float32Array.from([0, 2, 1, 2]))).toBe(1);
    expect(argmax([5, 5])).toBe(0);
  });

  it('penalties apply before the greedy argmax and are validated', () => {
    const logits = Float32Array.from([3, 2.5]);
    expect(createSampler({ repetitionPenalty: 2 }).sample(logits, { tokens: [] })).toBe(0);
    expect(createSampler({ repetitionPenalty: 2 }).sample(logits, { tokens: [0] })).toBe(1); // 3 / 2 = 1.5 < 2.5
    expect(createSampler({ frequencyPenalty: 0.3 }).sample(logits, { tokens: [0] })).toBe(0); // 2.7 > 2.5
    expect(createSampler({ frequencyPenalty: 0.3 }).sample(logits, { tokens: [0, 0] })).toBe(1); // 2.4 < 2.5
    expect(createSampler({ presencePenalty: 0.6 }).sample(logits, { tokens: [0, 0] })).toBe(1); // 2.4 < 2.5
    expect(Array.from(logits)).toEqual([3, 2.5]); // the input row is not modified
    expect(() => createSampler({ repetitionPenalty: 0 })).toThrow(InvalidArgumentError);
    expect(() => createSampler({ presencePenalty: Number.NaN })).toThrow(InvalidArgumentError);
  });

  it('reproduces a sequence for a seed and differs across seeds', () => {
    const logits = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    const run = (seed: number) => {
      const s = createSampler({ temperature: 1, seed });
      return Array.from({ length: 40 }, () => s.sample(logits));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    expect(new Set(run(7)).size).toBeGreaterThan(3);
  });

  it('draws by inverse CDF of the processed distribution', () => {
    // With seed 3 the first uniform is u; the sampled token is the first index whose CDF exceeds u.
    const u = mulberry32(3)();
    const probs = [0.1, 0.2, 0.3, 0.4];
    const expected = probs.findIndex((_, i) => probs.slice(0, i + 1).reduce((a, b) => a + b, 0) > u);
    const s = createSampler({ temperature: 1, seed: 3 });
    expect(s.sample(Float32Array.from(probs.map(Math.log)))).toBe(expected);
  });

  it('never samples outside top-k / top-p', () => {
    const logits = Float32Array.from([0.15, 0.5, 0.05, 0.3].map(Math.log));
    const k = createSampler({ temperature: 1, topK: 2, seed: 1 });
    const p = createSampler({ temperature: 1, topP: 0.7, seed: 1 });
    for (let i = 0; i < 100; i++) {
      expect([1, 3]).toContain(k.sample(logits));
      expect([1, 3]).toContain(p.sample(logits));
    }
  });

  it('does not modify the caller logits', () => {
    const logits = Float32Array.from([1, 2, 3]);
    createSampler({ temperature: 0.5, topK: 1, seed: 1 }).sample(logits);
    expect(Array.from(logits)).toEqual([1, 2, 3]);
  });

  it('rejects invalid options', () => {
    expect(() => createSampler({ temperature: -1 })).toThrow(InvalidArgumentError);
    expect(() => createSampler({ topK: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => createSampler({ topP: 0 })).toThrow(InvalidArgumentError);
    expect(() => createSampler({ topP: 1.2 })).toThrow(InvalidArgumentError);
  });
});
