import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyOutputError } from '../spec/errors.js';
import { isUniform, keptCounts, mergeAscending, range, validateKeptIndices } from './kept-indices.js';

describe('kept-index helpers', () => {
  it('range and mergeAscending', () => {
    expect(Array.from(range(2, 5))).toEqual([2, 3, 4]);
    expect(range(5, 2).length).toBe(0);
    expect(Array.from(mergeAscending(Int32Array.of(0, 3, 7), Int32Array.of(1, 3, 8)))).toEqual([0, 1, 3, 7, 8]);
  });

  it('mergeAscending is the sorted union (property)', () => {
    const sortedSet = fc.uniqueArray(fc.integer({ min: 0, max: 50 })).map((xs) => Int32Array.from(xs.sort((a, b) => a - b)));
    fc.assert(
      fc.property(sortedSet, sortedSet, (a, b) => {
        const expected = [...new Set([...a, ...b])].sort((x, y) => x - y);
        expect(Array.from(mergeAscending(a, b))).toEqual(expected);
      }),
    );
  });

  it('validateKeptIndices accepts good output and names the first offence', () => {
    const shape = { numLayers: 1, numKvHeads: 2, limit: 5 };
    validateKeptIndices([[Int32Array.of(0, 4), Int32Array.of()]], shape);
    const bad = (kept: unknown, pattern: RegExp) => {
      expect(() => validateKeptIndices(kept as never, shape)).toThrow(PolicyOutputError);
      expect(() => validateKeptIndices(kept as never, shape)).toThrow(pattern);
    };
    bad([[Int32Array.of(0, 5), Int32Array.of()]], /index 5 at layer 0, head 0/);
    bad([[Int32Array.of(0), Int32Array.of(-1)]], /index -1 at layer 0, head 1/);
    bad([[Int32Array.of(1, 1), Int32Array.of()]], /duplicate/);
    bad([[Int32Array.of(2, 1), Int32Array.of()]], /unsorted/);
    bad([[Int32Array.of(0)]], /1 heads for layer 0/);
    bad([], /0 layers/);
    bad([[Int32Array.of(0), undefined]], /layer 0, head 1/);
    bad([[[0.5], []]], /index 0.5/);
  });

  it('isUniform and keptCounts', () => {
    expect(isUniform([[Int32Array.of(0, 1), Int32Array.of(2, 3)]])).toBe(true);
    expect(isUniform([[Int32Array.of(0, 1), Int32Array.of(2)]])).toBe(false);
    expect(keptCounts([[Int32Array.of(0, 1), Int32Array.of(2)], [Int32Array.of(), Int32Array.of(1)]])).toEqual([[2, 1], [0, 1]]);
  });
});
