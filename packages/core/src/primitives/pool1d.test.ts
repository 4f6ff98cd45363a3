import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../spec/errors.js';
import { pool1d } from './pool1d.js';

const f32 = (xs: number[]) => new Float32Array(xs);

describe('pool1d (hand-derived goldens)', () => {
  it("max 'same' pads with −inf, so negative edges stay negative", () => {
    // k = 3: out[0] = max(−1, −5) — a zero pad would give 0; out[3] = max(−3, −2).
    expect(Array.from(pool1d(f32([-1, -5, -3, -2]), { kernel: 3, type: 'max', padding: 'same' }))).toEqual([-1, -1, -2, -2]);
    expect(Array.from(pool1d(f32([1, -5, 3, -2]), { kernel: 3, type: 'max', padding: 'same' }))).toEqual([1, 3, 3, 3]);
  });

  it("avg 'same' counts the padding (always divides by k)", () => {
    // (3+6)/3, (3+6+9)/3, (6+9+12)/3, (9+12)/3
    expect(Array.from(pool1d(f32([3, 6, 9, 12]), { kernel: 3, type: 'avg', padding: 'same' }))).toEqual([3, 6, 9, 7]);
    // k = 5 over 3 values: every window is padded, still / 5.
    expect(Array.from(pool1d(f32([5, 10, 15]), { kernel: 5, type: 'avg', padding: 'same' }))).toEqual([6, 6, 6]);
  });

  it("'centred-zero' with even k pads (k−1)//2 left and the rest right, with zeros", () => {
    // k = 4: window of i is [i−1, i+2]. out[1] has no padding (−1); out[3] touches the right pad (0).
    const neg = pool1d(f32([-1, -2, -3, -4, -5]), { kernel: 4, type: 'max', padding: 'centred-zero' });
    expect(Array.from(neg)).toEqual([0, -1, -2, 0, 0]);
    const pos = pool1d(f32([5, 1, 2, 0.5, 3]), { kernel: 4, type: 'max', padding: 'centred-zero' });
    expect(Array.from(pos)).toEqual([5, 5, 3, 3, 3]);
    const avg = pool1d(f32([4, 8, 12, 16]), { kernel: 2, type: 'avg', padding: 'centred-zero' });
    // k = 2: left 0, right 1 → window [i, i+1].
    expect(Array.from(avg)).toEqual([6, 10, 14, 8]);
  });

  it('pools rows independently and copies for k = 1', () => {
    const two = pool1d(f32([9, 0, 0, 0, 0, 7]), { kernel: 3, type: 'max', padding: 'same', rows: 2 });
    expect(Array.from(two)).toEqual([9, 9, 0, 0, 7, 7]);
    const input = f32([3, 1, 2]);
    const copy = pool1d(input, { kernel: 1, type: 'max', padding: 'same' });
    expect(Array.from(copy)).toEqual([3, 1, 2]);
    expect(copy).not.toBe(input);
  });

  it('rejects even k with same padding, bad k and bad rows', () => {
    expect(() => pool1d(f32([1, 2]), { kernel: 2, type: 'max', padding: 'same' })).toThrow(InvalidArgumentError);
    expect(() => pool1d(f32([1, 2]), { kernel: 0, type: 'max', padding: 'same' })).toThrow(InvalidArgumentError);
    expect(() => pool1d(f32([1, 2, 3]), { kernel: 3, type: 'max', padding: 'same', rows: 2 })).toThrow(/rows/);
  });
});

describe('pool1d (properties)', () => {
  const arb = fc.record({
    values: fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 40 }),
    half: fc.integer({ min: 0, max: 6 }),
    rows: fc.integer({ min: 1, max: 3 }),
    type: fc.constantFrom<'max' | 'avg'>('max', 'avg'),
    padding: fc.constantFrom<'same' | 'centred-zero'>('same', 'centred-zero'),
    even: fc.boolean(),
  });

  it('keeps the length and matches a naive padded window', () => {
    fc.assert(
      fc.property(arb, ({ values, half, rows, type, padding, even }) => {
        const kernel = padding === 'centred-zero' && even ? 2 * half + 2 : 2 * half + 1;
        const scores = new Float32Array(values.length * rows);
        for (let r = 0; r < rows; r++) scores.set(values.map((v) => v + r), r * values.length);
        const out = pool1d(scores, { kernel, type, padding, rows });
        expect(out.length).toBe(scores.length);
        const n = values.length;
        const left = Math.floor((kernel - 1) / 2);
        const pad = kernel === 1 ? undefined : type === 'max' && padding === 'same' ? -Infinity : 0;
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < n; i++) {
            const window: number[] = [];
            for (let j = i - left; j < i - left + kernel; j++) {
              if (j >= 0 && j < n) window.push(scores[r * n + j]);
              else if (pad !== undefined) window.push(pad);
            }
            const expected =
              type === 'max' ? Math.max(...window) : kernel === 1 ? window[0] : window.reduce((a, b) => a + b, 0) / kernel;
            expect(out[r * n + i]).toBeCloseTo(Math.fround(expected), 3);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
