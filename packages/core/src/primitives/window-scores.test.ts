import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../spec/errors.js';
import { type ReduceOp, reduceScores, windowAttentionScores, windowScores } from './window-scores.js';

const LN2 = Math.log(2);
const LN3 = Math.log(3);

function expectClose(actual: ArrayLike<number>, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `index ${i}`).toBeCloseTo(expected[i], digits);
}

describe('windowScores (hand-derived goldens)', () => {
  // 1 head, d = 2, 3 keys. q = [√2, 0] and scale 1/√2 make logit_j = K[j][0]: (0, ln2, ln3) → exp (1, 2, 3).
  const q = new Float32Array([Math.SQRT2, 0]);
  const keys = new Float32Array([0, 5, LN2, -7, LN3, 1]);

  it('softmaxes over all keys with the default 1/√d scale', () => {
    const p = windowScores(q, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 1, keyCount: 3 });
    expectClose(p, [1 / 6, 2 / 6, 3 / 6]);
  });

  it('masks the causal tail: query i sees tail keys ≤ i only', () => {
    const q2 = new Float32Array([Math.SQRT2, 0, Math.SQRT2, 0]);
    const p = windowScores(q2, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 2, keyCount: 3 });
    // Query 0 stands at position 1: keys 0, 1 visible → (1, 2)/3; key 2 masked to exactly 0.
    expectClose(p, [1 / 3, 2 / 3, 0, 1 / 6, 2 / 6, 3 / 6]);
    expect(p[2]).toBe(0);
    const open = windowScores(q2, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 2, keyCount: 3, causalTail: false });
    expectClose(open, [1 / 6, 2 / 6, 3 / 6, 1 / 6, 2 / 6, 3 / 6]);
  });

  it('honours an explicit scale', () => {
    // scale 2/√2·… : logits doubled → exp (1, 4, 9) / 14.
    const p = windowScores(q, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 1, keyCount: 3, scale: Math.SQRT2 });
    expectClose(p, [1 / 14, 4 / 14, 9 / 14]);
  });

  it('rejects bad shapes with InvalidArgumentError', () => {
    expect(() => windowScores(q, keys, { numHeads: 3, numKvHeads: 2, headDim: 2, queryCount: 1, keyCount: 3 })).toThrow(InvalidArgumentError);
    expect(() => windowScores(q, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 4, keyCount: 3 })).toThrow(/queryCount/);
    expect(() => windowScores(q, keys, { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 1, keyCount: 4 })).toThrow(/keys.length/);
  });
});

describe('GQA grouping and reduce (Hq = 4, Hkv = 2, d = 1, scale 1)', () => {
  // Heads 0, 1 read KV head 0 (keys ln 1, ln 2, ln 3); heads 2, 3 read KV head 1 (keys ln 3, ln 2, ln 1).
  // Query values q make probabilities ∝ (key value)^q:
  //   h0 q=1 → (1, 2, 3)/6       h1 q=−1 → (6, 3, 2)/11
  //   h2 q=1 → (3, 2, 1)/6       h3 q=2  → (9, 4, 1)/14
  const queries = new Float32Array([1, -1, 1, 2]);
  const keys = new Float32Array([0, LN2, LN3, LN3, LN2, 0]);
  const shape = { numHeads: 4, numKvHeads: 2, headDim: 1, queryCount: 1, keyCount: 3, causalTail: false, scale: 1 };
  const probsExpected = [1 / 6, 2 / 6, 3 / 6, 6 / 11, 3 / 11, 2 / 11, 3 / 6, 2 / 6, 1 / 6, 9 / 14, 4 / 14, 1 / 14];

  it('maps query head h to KV head ⌊h / G⌋', () => {
    expectClose(windowScores(queries, keys, shape), probsExpected);
  });

  const reduced: Record<ReduceOp, number[]> = {
    max: [6 / 11, 1 / 3, 1 / 2, 9 / 14, 1 / 3, 1 / 6],
    sum: [1 / 6 + 6 / 11, 2 / 6 + 3 / 11, 3 / 6 + 2 / 11, 3 / 6 + 9 / 14, 2 / 6 + 4 / 14, 1 / 6 + 1 / 14],
    mean: [(1 / 6 + 6 / 11) / 2, (2 / 6 + 3 / 11) / 2, (3 / 6 + 2 / 11) / 2, (3 / 6 + 9 / 14) / 2, (2 / 6 + 4 / 14) / 2, (1 / 6 + 1 / 14) / 2],
  };
  for (const op of ['max', 'sum', 'mean'] as const) {
    it(`reduces by ${op} over the group`, () => {
      const probs = windowScores(queries, keys, shape);
      expectClose(reduceScores(probs, { ...shape, op }), reduced[op]);
      expectClose(windowAttentionScores(queries, keys, { ...shape, op, chunkSize: 2 }), reduced[op]);
    });
  }

  it("'mean' divides by G·w and query weights scale rows before reducing", () => {
    // Two queries per head (w = 2): q and 0 (0 → uniform 1/3). Weights (0, 1) zero out the first query.
    const q2 = new Float32Array([1, 0, -1, 0, 1, 0, 2, 0]);
    const s = { ...shape, queryCount: 2 };
    const probs = windowScores(q2, keys, s);
    const mean = reduceScores(probs, { ...s, op: 'mean' });
    expect(mean[0]).toBeCloseTo((1 / 6 + 1 / 3 + 6 / 11 + 1 / 3) / 4, 6);
    const weighted = reduceScores(probs, { ...s, op: 'max', queryWeights: new Float32Array([0, 1]) });
    expectClose(weighted, [1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3]);
    const fused = windowAttentionScores(q2, keys, { ...s, op: 'max', queryWeights: new Float32Array([0, 1]), chunkSize: 1 });
    expectClose(fused, [1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3]);
  });
});

describe('windowAttentionScores equals reduceScores(windowScores) (property)', () => {
  const value = fc.float({ min: Math.fround(-3), max: Math.fround(3), noNaN: true, noDefaultInfinity: true });
  const caseArb = fc
    .record({
      numKvHeads: fc.integer({ min: 1, max: 3 }),
      group: fc.constantFrom(1, 2, 7),
      headDim: fc.integer({ min: 1, max: 5 }),
      keyCount: fc.integer({ min: 1, max: 37 }),
      op: fc.constantFrom<ReduceOp>('max', 'mean', 'sum'),
      causalTail: fc.boolean(),
      weighted: fc.boolean(),
      seed: fc.integer(),
    })
    .chain((c) =>
      fc.record({
        c: fc.constant(c),
        queryCount: fc.integer({ min: 1, max: c.keyCount }),
        chunkSize: fc.integer({ min: 1, max: c.keyCount + 3 }),
      }),
    )
    .chain(({ c, queryCount, chunkSize }) => {
      const numHeads = c.numKvHeads * c.group;
      return fc.record({
        c: fc.constant({ ...c, numHeads, queryCount, chunkSize }),
        q: fc.array(value, { minLength: numHeads * queryCount * c.headDim, maxLength: numHeads * queryCount * c.headDim }),
        k: fc.array(value, { minLength: c.numKvHeads * c.keyCount * c.headDim, maxLength: c.numKvHeads * c.keyCount * c.headDim }),
        w: fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: queryCount, maxLength: queryCount }),
      });
    });

  it('agrees within 1e-6 relative for odd shapes, GQA groups 1/2/7 and chunk sizes not dividing N', () => {
    fc.assert(
      fc.property(caseArb, ({ c, q, k, w }) => {
        const queries = new Float32Array(q);
        const keys = new Float32Array(k);
        const queryWeights = c.weighted ? new Float32Array(w) : undefined;
        const shape = {
          numHeads: c.numHeads,
          numKvHeads: c.numKvHeads,
          headDim: c.headDim,
          queryCount: c.queryCount,
          keyCount: c.keyCount,
          causalTail: c.causalTail,
        };
        const expected = reduceScores(windowScores(queries, keys, shape), { ...shape, op: c.op, queryWeights });
        const actual = windowAttentionScores(queries, keys, { ...shape, op: c.op, queryWeights, chunkSize: c.chunkSize });
        expect(actual.length).toBe(c.numKvHeads * c.keyCount);
        for (let i = 0; i < expected.length; i++) {
          const tol = 1e-6 * Math.max(Math.abs(expected[i]), Math.abs(actual[i])) + 1e-30;
          if (!(Math.abs(expected[i] - actual[i]) <= tol)) throw new Error(`index ${i}: ${actual[i]} vs ${expected[i]}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('windowScores rows are distributions with exact zeros past the causal tail', () => {
    fc.assert(
      fc.property(caseArb, ({ c, q, k }) => {
        const shape = { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, queryCount: c.queryCount, keyCount: c.keyCount };
        const p = windowScores(new Float32Array(q), new Float32Array(k), shape);
        const n = c.keyCount;
        for (let h = 0; h < c.numHeads; h++) {
          for (let i = 0; i < c.queryCount; i++) {
            let sum = 0;
            for (let j = 0; j < n; j++) {
              const v = p[(h * c.queryCount + i) * n + j];
              if (j > n - c.queryCount + i) expect(v).toBe(0);
              sum += v;
            }
            expect(sum).toBeCloseTo(1, 5);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('windowAttentionScores robustness', () => {
  it('stays finite and exact for large logits (online max rescaling)', () => {
    // d = 1, scale 1: logits 0, 500, 1000 — exp overflows in fp64 without the max shift.
    const keys = new Float32Array([0, 500, 1000, 999]);
    const q = new Float32Array([1]);
    const shape = { numHeads: 1, numKvHeads: 1, headDim: 1, queryCount: 1, keyCount: 4, scale: 1, causalTail: false };
    const expected = [0, 0, 1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))];
    for (const chunkSize of [1, 2, 3, 4, 1024]) {
      const s = windowAttentionScores(q, keys, { ...shape, op: 'sum', chunkSize });
      for (let i = 0; i < 4; i++) expect(s[i]).toBeCloseTo(expected[i], 6);
    }
  });

  it('rejects fractional chunk sizes and mismatched weights', () => {
    const shape = { numHeads: 1, numKvHeads: 1, headDim: 1, queryCount: 1, keyCount: 2 };
    const q = new Float32Array([1]);
    const k = new Float32Array([1, 2]);
    expect(() => windowAttentionScores(q, k, { ...shape, op: 'max', chunkSize: 1.5 })).toThrow(/chunkSize/);
    expect(() => windowAttentionScores(q, k, { ...shape, op: 'max', queryWeights: new Float32Array(2) })).toThrow(/queryWeights/);
    expect(() => reduceScores(new Float32Array(3), { ...shape, op: 'max' })).toThrow(/probs.length/);
  });
});
