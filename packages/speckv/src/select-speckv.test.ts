import { DraftError, InvalidArgumentError } from '@draft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectSpecKV } from './select-speckv.js';

// ---------------------------------------------------------------------------------------------------------
// Independent brute-force reference: explicit loops, a full sort, no code shared with the implementation.
// ---------------------------------------------------------------------------------------------------------
interface NaiveOptions {
  queries: Float32Array[];
  keys: Float32Array[];
  hq: number;
  hkv: number;
  d: number;
  n: number;
  lookahead: number;
  budget: number;
  window: number;
  kernel: number;
  pool: 'max' | 'avg';
  reduce: 'max' | 'mean' | 'sum';
}

function naiveSpecKV(o: NaiveOptions): number[][][] {
  const all = Array.from({ length: o.n - 1 }, (_, i) => i);
  if (o.n <= o.budget) return o.queries.map(() => Array.from({ length: o.hkv }, () => all.slice()));
  const group = o.hq / o.hkv;
  const w = o.window + 1 + o.lookahead;
  const total = o.n + o.lookahead;
  const m = o.n - o.window - 1;
  const out: number[][][] = [];
  for (let layer = 0; layer < o.queries.length; layer++) {
    const q = o.queries[layer];
    const k = o.keys[layer];
    const heads: number[][] = [];
    for (let kvh = 0; kvh < o.hkv; kvh++) {
      const score: number[] = new Array(m).fill(o.reduce === 'max' ? -Infinity : 0);
      for (let g = 0; g < group; g++) {
        const h = kvh * group + g;
        for (let i = 0; i < w; i++) {
          const position = o.n - o.window - 1 + i; // the query's own position: it sees keys 0..position
          const logits: number[] = [];
          for (let j = 0; j <= position; j++) {
            let dot = 0;
            for (let x = 0; x < o.d; x++) dot += q[(h * w + i) * o.d + x] * k[(kvh * total + j) * o.d + x];
            logits.push(dot * (1 / Math.sqrt(o.d)));
          }
          const top = Math.max(...logits);
          const exps = logits.map((v) => Math.exp(v - top));
          const sum = exps.reduce((a, b) => a + b, 0);
          for (let j = 0; j < m; j++) {
            const p = Math.fround(exps[j] / sum);
            if (o.reduce === 'max') score[j] = Math.max(score[j], p);
            else score[j] += p;
          }
        }
      }
      const reduced = score.map((s) => Math.fround(o.reduce === 'mean' ? s / (group * w) : s));
      const half = (o.kernel - 1) / 2;
      const pooled = reduced.map((_, j) => {
        const inside: number[] = [];
        for (let t = j - half; t <= j + half; t++) if (t >= 0 && t < m) inside.push(reduced[t]);
        return o.pool === 'max' ? Math.max(...inside) : Math.fround(inside.reduce((a, b) => a + b, 0) / o.kernel);
      });
      const order = pooled.map((_, j) => j).sort((a, b) => (pooled[b] !== pooled[a] ? pooled[b] - pooled[a] : a - b));
      const kept = order.slice(0, o.budget - o.window).sort((a, b) => a - b);
      for (let p = m; p < o.n - 1; p++) kept.push(p);
      heads.push(kept);
    }
    out.push(heads);
  }
  return out;
}

const asArrays = (kept: Int32Array[][]) => kept.map((heads) => heads.map((h) => Array.from(h)));

/** One-layer, one-head, headDim-1 input: every query is +1, so candidate scores are monotone in the key value. */
function scalarCase(candidateKeys: number[], window: number, lookahead: number) {
  const n = candidateKeys.length + window + 1;
  const keys = new Float32Array(n + lookahead); // window, last token and lookahead keys are 0
  keys.set(candidateKeys);
  const queries = new Float32Array(window + 1 + lookahead).fill(1);
  return { queries: [queries], keys: [keys], numHeads: 1, numKvHeads: 1, headDim: 1, promptLength: n, lookaheadLength: lookahead, windowSize: window };
}

describe('selectSpecKV — hand-derived goldens', () => {
  // n = 12, W = 2, L = 1: w = 4 queries (positions 9, 10, 11, 12), m = 9 candidates [0, 9), window [9, 11).
  // All queries are +1 and d = 1, so p(j) = exp(k_j)/Z_i and the ranking of candidates is the ranking of k_j;
  // max-pooling a monotone transform is the transform of the max-pooled keys.
  //   k_j           = .1 .5 .2 .3 .9 .4 .6 .7 .8
  //   maxpool3(k_j) = .5 .5 .5 .9 .9 .9 .7 .8 .8
  const base = scalarCase([0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.6, 0.7, 0.8], 2, 1);

  it('keeps the top C − W pooled candidates plus the window, never the last prompt token', () => {
    // C = 7 -> top 5: the three .9 (3, 4, 5) and the two .8 (7, 8).
    expect(asArrays(selectSpecKV({ ...base, budget: 7, kernelSize: 3 }))).toEqual([[[3, 4, 5, 7, 8, 9, 10]]]);
  });

  it('breaks equal pooled scores toward the lower position', () => {
    // C = 6 -> top 4: 3, 4, 5, then .8 at 7 and 8 tie -> 7.
    expect(asArrays(selectSpecKV({ ...base, budget: 6, kernelSize: 3 }))).toEqual([[[3, 4, 5, 7, 9, 10]]]);
  });

  it('without pooling (k = 1) ranks raw scores', () => {
    // top 3 of k_j: .9 (4), .8 (8), .7 (7).
    expect(asArrays(selectSpecKV({ ...base, budget: 5, kernelSize: 1 }))).toEqual([[[4, 7, 8, 9, 10]]]);
  });

  it('budget = window + 1 keeps exactly one candidate', () => {
    expect(asArrays(selectSpecKV({ ...base, budget: 3, kernelSize: 3 }))).toEqual([[[3, 9, 10]]]); // .9 ties at 3,4,5
    expect(asArrays(selectSpecKV({ ...base, budget: 3, kernelSize: 1 }))).toEqual([[[4, 9, 10]]]);
  });

  it('pools with −inf padding at both edges and never across into the window (k = 7)', () => {
    // n = 20, W = 3, m = 16. Candidate 0 = .9, candidate 15 = 1, all others 0.
    // maxpool7 (radius 3): positions 12..15 -> 1, positions 0..3 -> .9, the rest -> the zero-key score.
    const keys = new Array(16).fill(0);
    keys[0] = 0.9;
    keys[15] = 1;
    const input = scalarCase(keys, 3, 0);
    expect(asArrays(selectSpecKV({ ...input, budget: 11, kernelSize: 7 }))).toEqual([[[0, 1, 2, 3, 12, 13, 14, 15, 16, 17, 18]]]);
    // Budget 7 -> top 4: only the 1-valued block 12..15.
    expect(asArrays(selectSpecKV({ ...input, budget: 7, kernelSize: 7 }))).toEqual([[[12, 13, 14, 15, 16, 17, 18]]]);
  });

  it('no compression when n ≤ C; n = C + 1 keeps every candidate', () => {
    expect(asArrays(selectSpecKV({ ...base, budget: 12, kernelSize: 3 }))).toEqual([[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]]);
    expect(asArrays(selectSpecKV({ ...base, budget: 64, kernelSize: 3 }))[0][0]).toHaveLength(11);
    // n = 12 = C + 1: m = 9 = C − W, so all of [0, 11) survives.
    expect(asArrays(selectSpecKV({ ...base, budget: 11, kernelSize: 3 }))).toEqual([[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]]);
  });

  it('lookahead queries change the selection (the point of SpecKV)', () => {
    // d = 2, scale 1/√2. Prompt-window queries look along x (10, 0); the single lookahead query along y (0, 10).
    // Candidate 2 = (3, 0) is the only x-key and candidate 6 = (0, 3) the only y-key; every other key is 0.
    // Each query puts ≈ all its mass (e^21.2 vs 1) on its key, so with max-reduce the scores are
    // ≈1 at 2 and at 6, and a shared tiny value elsewhere. Without the lookahead, 6 ties with the zeros.
    const n = 12;
    const window = 2;
    const make = (lookahead: number) => {
      const keys = new Float32Array(2 * (n + lookahead));
      keys[2 * 2] = 3;
      keys[6 * 2 + 1] = 3;
      const w = window + 1 + lookahead;
      const queries = new Float32Array(2 * w);
      for (let i = 0; i < window + 1; i++) queries[2 * i] = 10;
      for (let i = window + 1; i < w; i++) queries[2 * i + 1] = 10;
      return { queries: [queries], keys: [keys], numHeads: 1, numKvHeads: 1, headDim: 2, promptLength: n, lookaheadLength: lookahead };
    };
    const opts = { windowSize: window, budget: 4, kernelSize: 1 };
    expect(asArrays(selectSpecKV({ ...make(1), ...opts }))).toEqual([[[2, 6, 9, 10]]]);
    expect(asArrays(selectSpecKV({ ...make(0), ...opts }))).toEqual([[[0, 2, 9, 10]]]);
  });

  it('GQA (Hq = 4, Hkv = 2): one selection per KV head, max over its own contiguous group of query heads', () => {
    // n = 10, W = 2, L = 0: w = 3 queries, m = 7 candidates, window [7, 9). d = 2.
    // Query heads 0 and 2 look along x (1, 0); heads 1 and 3 along y (0, 1). Groups: {0, 1} -> KV 0, {2, 3} -> KV 1.
    // For each KV head the x-values and y-values of its candidates are the same multiset and every other key
    // is 0, so both heads of a group have the same softmax denominators; a key (a, 0) then scores
    // exp(max(a, 0)/√2)/Z under max-reduce: the ranking is by each key's largest coordinate.
    //   KV 0: (1,0) (0,3) (0,0) (2,0) (0,1) (3,0) (0,2) -> 1 3 0 2 1 3 2 -> top 3: 1, 5 (3s), 3 (2s tie 3/6 -> 3)
    //   KV 1: (0,2) (2,0) (0,0) (0,0) (3,0) (0,3) (0,0) -> 2 2 0 0 3 3 0 -> top 3: 4, 5, 0 (2s tie 0/1 -> 0)
    // Using only head 0 of KV 0 (x only) would give 0 3 5; interleaved grouping (h % Hkv) gives the same wrong answer.
    const n = 10;
    const kv0 = [[1, 0], [0, 3], [0, 0], [2, 0], [0, 1], [3, 0], [0, 2]];
    const kv1 = [[0, 2], [2, 0], [0, 0], [0, 0], [3, 0], [0, 3], [0, 0]];
    const keys = new Float32Array(2 * n * 2);
    for (const [j, [x, y]] of kv0.entries()) keys.set([x, y], (0 * n + j) * 2);
    for (const [j, [x, y]] of kv1.entries()) keys.set([x, y], (1 * n + j) * 2);
    const queries = new Float32Array(4 * 3 * 2);
    for (let h = 0; h < 4; h++) for (let i = 0; i < 3; i++) queries[(h * 3 + i) * 2 + (h % 2)] = 1;
    const kept = selectSpecKV({
      queries: [queries],
      keys: [keys],
      numHeads: 4,
      numKvHeads: 2,
      headDim: 2,
      promptLength: n,
      lookaheadLength: 0,
      budget: 5,
      windowSize: 2,
      kernelSize: 1,
    });
    expect(asArrays(kept)).toEqual([[[1, 3, 5, 7, 8], [0, 4, 5, 7, 8]]]);
  });
});

describe('selectSpecKV — agrees with the brute-force reference', () => {
  it('on random GQA inputs with ties, pooling, lookahead and several layers', () => {
    const shape = fc
      .record({
        hkv: fc.integer({ min: 1, max: 2 }),
        group: fc.integer({ min: 1, max: 2 }),
        d: fc.integer({ min: 1, max: 3 }),
        n: fc.integer({ min: 3, max: 20 }),
        lookahead: fc.integer({ min: 0, max: 3 }),
        layers: fc.integer({ min: 1, max: 2 }),
        kernel: fc.constantFrom(1, 3, 5, 7),
        pool: fc.constantFrom('max' as const, 'avg' as const),
        reduce: fc.constantFrom('max' as const, 'mean' as const, 'sum' as const),
        windowFraction: fc.double({ min: 0, max: 0.999, noNaN: true }),
        extraBudget: fc.integer({ min: 1, max: 22 }),
      })
      .chain((s) => {
        const window = 1 + Math.floor(s.windowFraction * (s.n - 1)); // 1 ≤ W ≤ n − 1
        const hq = s.hkv * s.group;
        const w = window + 1 + s.lookahead;
        // Values on a coarse grid: many exact ties, which both implementations must break the same way.
        const values = (length: number) => fc.array(fc.integer({ min: -3, max: 3 }), { minLength: length, maxLength: length });
        return fc.record({
          s: fc.constant({ ...s, window, hq, budget: window + s.extraBudget }),
          queries: fc.array(values(hq * w * s.d), { minLength: s.layers, maxLength: s.layers }),
          keys: fc.array(values(s.hkv * (s.n + s.lookahead) * s.d), { minLength: s.layers, maxLength: s.layers }),
        });
      });
    fc.assert(
      fc.property(shape, ({ s, queries, keys }) => {
        const q = queries.map((a) => new Float32Array(a.map((v) => v / 2)));
        const k = keys.map((a) => new Float32Array(a.map((v) => v / 2)));
        const got = selectSpecKV({
          queries: q,
          keys: k,
          numHeads: s.hq,
          numKvHeads: s.hkv,
          headDim: s.d,
          promptLength: s.n,
          lookaheadLength: s.lookahead,
          budget: s.budget,
          windowSize: s.window,
          kernelSize: s.kernel,
          poolType: s.pool,
          reduce: s.reduce,
        });
        const want = naiveSpecKV({
          queries: q,
          keys: k,
          hq: s.hq,
          hkv: s.hkv,
          d: s.d,
          n: s.n,
          lookahead: s.lookahead,
          budget: s.budget,
          window: s.window,
          kernel: s.kernel,
          pool: s.pool,
          reduce: s.reduce,
        });
        expect(asArrays(got)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});

describe('selectSpecKV — validation', () => {
  const valid = scalarCase([0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.6, 0.7, 0.8], 2, 1);
  const expectInvalid = (run: () => unknown, argument: string, value: unknown) => {
    try {
      run();
    } catch (error) {
      expect(DraftError.isInstance(error)).toBe(true);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
      expect((error as InvalidArgumentError).argument).toBe(argument);
      expect((error as InvalidArgumentError).value).toEqual(value);
      expect((error as InvalidArgumentError).message).toContain('expected');
      return;
    }
    throw new Error(`expected an InvalidArgumentError for ${argument}`);
  };

  it('rejects a window that is not in (0, budget)', () => {
    expectInvalid(() => selectSpecKV({ ...valid, budget: 2, windowSize: 2 }), 'windowSize', 2);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 2, windowSize: 3 }), 'windowSize', 3);
    expectInvalid(() => selectSpecKV({ ...valid, windowSize: 0 }), 'windowSize', 0);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 0 }), 'budget', 0);
  });

  it('a window that does not fit the prompt is no error when n ≤ C (nothing is compressed)', () => {
    // W < C, so W ≥ n only happens with n ≤ C: the prompt passes through.
    const kept = selectSpecKV({ ...valid, promptLength: 2, windowSize: 2, budget: 8 });
    expect(kept.map((heads) => heads.map((h) => Array.from(h)))).toEqual([[[0]]]);
  });

  it('rejects an even kernel and unknown pool / reduce ops', () => {
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, kernelSize: 4 }), 'kernelSize', 4);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, kernelSize: 0 }), 'kernelSize', 0);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, poolType: 'min' as never }), 'poolType', 'min');
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, reduce: 'median' as never }), 'reduce', 'median');
  });

  it('rejects Hq not a multiple of Hkv', () => {
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, numHeads: 3, numKvHeads: 2 }), 'numHeads', 3);
  });

  it('rejects arrays whose lengths do not match the shapes', () => {
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, lookaheadLength: 2 }), 'queries[0].length', 4);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, keys: [new Float32Array(5)] }), 'keys[0].length', 5);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, keys: [] }), 'keys.length', 0);
    expectInvalid(() => selectSpecKV({ ...valid, budget: 6, headDim: 2 }), 'queries[0].length', 4);
  });
});

describe('selectSpecKV: n ≤ W < C', () => {
  it('passes the prompt through (all of [0, n − 1) kept) instead of rejecting W ≥ n', () => {
    // Defaults W = 32, C = 256; n = 10 needs no compression.
    const n = 10;
    const kept = selectSpecKV({
      queries: [new Float32Array(2 * (n + 3) * 4)],
      keys: [new Float32Array(1 * (n + 3) * 4)],
      numHeads: 2,
      numKvHeads: 1,
      headDim: 4,
      promptLength: n,
      lookaheadLength: 3,
    });
    expect(kept.map((heads) => heads.map((h) => Array.from(h)))).toEqual([[Array.from({ length: n - 1 }, (_, i) => i)]]);
  });
});
