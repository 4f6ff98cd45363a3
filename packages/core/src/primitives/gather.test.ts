import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../spec/errors.js';
import { gatherRows } from './gather.js';

describe('gatherRows', () => {
  // (numKvHeads 2, length 3, headDim 2): value = 100·head + 10·row + column.
  const shape = { numKvHeads: 2, length: 3, headDim: 2 };
  const tensor = new Float32Array([0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121]);

  it('gathers per head and concatenates head after head (ragged counts allowed)', () => {
    const out = gatherRows(tensor, shape, [Int32Array.of(0, 2), Int32Array.of(1)]);
    expect(Array.from(out)).toEqual([0, 1, 20, 21, 110, 111]);
    expect(gatherRows(tensor, shape, [Int32Array.of(), Int32Array.of()]).length).toBe(0);
  });

  it('rejects out-of-range indices and mismatched shapes', () => {
    expect(() => gatherRows(tensor, shape, [Int32Array.of(3), Int32Array.of(0)])).toThrow(InvalidArgumentError);
    expect(() => gatherRows(tensor, shape, [Int32Array.of(-1), Int32Array.of(0)])).toThrow(InvalidArgumentError);
    expect(() => gatherRows(tensor, shape, [Int32Array.of(0)])).toThrow(/kept.length/);
    expect(() => gatherRows(tensor.subarray(1), shape, [Int32Array.of(0), Int32Array.of(0)])).toThrow(/tensor.length/);
  });
});
