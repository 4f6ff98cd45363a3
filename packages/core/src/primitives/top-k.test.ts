import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../spec/errors.js';
import { topK } from './top-k.js';

describe('topK (hand-derived goldens)', () => {
  it('breaks ties toward the lower position', () => {
    expect(Array.from(topK([1, 3, 3, 2, 3], 2))).toEqual([1, 2]);
    expect(Array.from(topK([0, 0, 0, 0], 3))).toEqual([0, 1, 2]);
  });

  it("returns ascending positions by default and descending scores with order 'score'", () => {
    const scores = [1, 3, 5, 3, 2];
    expect(Array.from(topK(scores, 3))).toEqual([1, 2, 3]);
    expect(Array.from(topK(scores, 3, { order: 'score' }))).toEqual([2, 1, 3]);
  });

  it('works on a sub-range and returns positions relative to the offset', () => {
    const scores = new Float32Array([100, 1, 4, 2, 100]);
    expect(Array.from(topK(scores, 2, { offset: 1, length: 3 }))).toEqual([1, 2]);
  });

  it('clips k to the length, accepts k = 0, and orders −inf and NaN last', () => {
    expect(Array.from(topK([2, 1], 5))).toEqual([0, 1]);
    expect(topK([2, 1], 0).length).toBe(0);
    expect(Array.from(topK([Number.NaN, -Infinity, 0, Number.NaN], 3, { order: 'score' }))).toEqual([2, 1, 0]);
    expect(Array.from(topK([Number.NaN, Number.NaN, Number.NaN], 2))).toEqual([0, 1]);
  });

  it('rejects a negative k and out-of-range windows', () => {
    expect(() => topK([1], -1)).toThrow(InvalidArgumentError);
    expect(() => topK([1, 2], 1, { offset: 1, length: 2 })).toThrow(InvalidArgumentError);
  });
});

describe('topK (properties)', () => {
  it('selects the same set as a naive stable sort', () => {
    fc.assert(
      fc.property(
        // Small integer scores so that ties are frequent.
        fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 60 }),
        fc.integer({ min: 0, max: 70 }),
        (values, k) => {
          const naive = values
            .map((s, i) => ({ s, i }))
            .sort((a, b) => b.s - a.s || a.i - b.i)
            .slice(0, k);
          expect(Array.from(topK(new Float32Array(values), k, { order: 'score' }))).toEqual(naive.map((x) => x.i));
          expect(Array.from(topK(values, k))).toEqual(naive.map((x) => x.i).sort((a, b) => a - b));
        },
      ),
      { numRuns: 300 },
    );
  });
});
