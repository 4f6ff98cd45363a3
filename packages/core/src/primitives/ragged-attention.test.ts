import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { raggedAttentionOf, referenceKernelBackend } from '../kernels/reference-backend.js';
import type { KernelBackendV1 } from '../kernels/kernel-backend.js';
import { InvalidArgumentError } from '../spec/errors.js';
import { float16ToFloat32, float32ToFloat16 } from './float16.js';
import { raggedAttention } from './ragged-attention.js';

const LN3 = Math.log(3);

function expectClose(actual: ArrayLike<number>, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `index ${i}`).toBeCloseTo(expected[i], digits);
}

describe('raggedAttention (hand-derived goldens)', () => {
  it('softmax-weights the values of the head it reads', () => {
    // scale 1, q = [ln3, 0], keys e0, e1: logits (ln3, 0) → p = (3/4, 1/4); out = ¾·[1, 2] + ¼·[3, 4].
    const out = raggedAttention(new Float32Array([LN3, 0]), new Float32Array([1, 0, 0, 1]), new Float32Array([1, 2, 3, 4]), {
      numHeads: 1,
      numKvHeads: 1,
      headDim: 2,
      offsets: [0],
      lengths: [2],
      scale: 1,
    });
    expectClose(out, [1.5, 2.5]);
  });

  it('causal chunk: query i sees the entries up to its own (the last queryCount entries are the queries)', () => {
    // Zero keys → uniform attention. Query 0 sees entries 0, 1 → mean(1, 3) = 2; query 1 sees 0..2 → mean(1, 3, 8) = 4.
    const keys = new Float32Array(6);
    const values = new Float32Array([1, 0, 3, 0, 8, 0]);
    const base = { numHeads: 1, numKvHeads: 1, headDim: 2, queryCount: 2, offsets: [0], lengths: [3] };
    expectClose(raggedAttention(new Float32Array(4), keys, values, base), [2, 0, 4, 0]);
    expectClose(raggedAttention(new Float32Array(4), keys, values, { ...base, causal: false }), [4, 0, 4, 0]);
  });

  it('GQA: query heads 0..G−1 read KV head 0, the next G read KV head 1; blocks may sit anywhere in the buffer', () => {
    // KV head 1's single entry is row 0, KV head 0's two entries are rows 2, 3 (row 1 is spare capacity).
    const keys = new Float32Array([0, 0, 9, 9, LN3, 0, 0, 0]);
    const values = new Float32Array([7, -7, 100, 100, 1, 2, 3, 4]);
    const q = new Float32Array([1, 0, 1, 0, 5, 5, 5, 5]);
    const out = raggedAttention(q, keys, values, { numHeads: 4, numKvHeads: 2, headDim: 2, offsets: [2, 0], lengths: [2, 1], scale: 1 });
    // heads 0, 1: logits (ln3, 0) → ¾·[1, 2] + ¼·[3, 4]; heads 2, 3: one entry → its value.
    expectClose(out, [1.5, 2.5, 1.5, 2.5, 7, -7, 7, -7]);
  });

  it('empty heads give zero rows; large logits stay finite (max subtraction)', () => {
    const out = raggedAttention(new Float32Array([100, 100, 1, 1]), new Float32Array([100, 100, 99, 99]), new Float32Array([1, 0, 0, 1]), {
      numHeads: 2,
      numKvHeads: 2,
      headDim: 2,
      offsets: [0, 2],
      lengths: [2, 0],
      scale: 1,
    });
    // logits 20000 vs 19800: p ≈ (1, e^-200)
    expectClose(out, [1, 0, 0, 0]);
  });

  it('reads f16 storage exactly like the decoded f32 values', () => {
    const k32 = new Float32Array([0.1, -0.7, 0.33, 1.5, -2, 0.25]);
    const v32 = new Float32Array([1, 2, 3, 4, 5, 6]);
    const kh = float32ToFloat16(k32);
    const vh = float32ToFloat16(v32);
    const opts = { numHeads: 1, numKvHeads: 1, headDim: 2, offsets: [0], lengths: [3] };
    const q = new Float32Array([0.5, -1]);
    expect(Array.from(raggedAttention(q, kh, vh, opts))).toEqual(Array.from(raggedAttention(q, float16ToFloat32(kh), float16ToFloat32(vh), opts)));
  });
});

/** Naive attention in float64 written independently: explicit probabilities exp(l)/Σexp(l) (inputs keep |l| small). */
function naive(q: Float32Array, k: Float32Array, v: Float32Array, hq: number, hkv: number, d: number, w: number, offsets: number[], lengths: number[], causal: boolean) {
  const out = new Float64Array(hq * w * d);
  for (let h = 0; h < hq; h++) {
    const kvh = Math.floor(h / (hq / hkv));
    for (let i = 0; i < w; i++) {
      const seen = causal ? lengths[kvh] - w + i + 1 : lengths[kvh];
      const e: number[] = [];
      for (let j = 0; j < seen; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += q[(h * w + i) * d + x] * k[(offsets[kvh] + j) * d + x];
        e.push(Math.exp(dot / Math.sqrt(d)));
      }
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < seen; j++) for (let x = 0; x < d; x++) out[(h * w + i) * d + x] += (e[j] / z) * v[(offsets[kvh] + j) * d + x];
    }
  }
  return out;
}

describe('raggedAttention vs a naive float64 attention (property)', () => {
  it('matches on random ragged caches (GQA 1/2/7, empty and length-1 heads, gaps, chunks)', () => {
    fc.assert(
      fc.property(
        fc.record({
          group: fc.constantFrom(1, 2, 7),
          hkv: fc.integer({ min: 1, max: 3 }),
          d: fc.constantFrom(1, 3, 8),
          w: fc.integer({ min: 1, max: 3 }),
          causal: fc.boolean(),
          lengths: fc.array(fc.constantFrom(0, 1, 2, 5, 13), { minLength: 3, maxLength: 3 }),
          gaps: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }),
          seed: fc.integer(),
        }),
        ({ group, hkv, d, w, causal, lengths: all, gaps, seed }) => {
          const lengths = all.slice(0, hkv);
          const offsets: number[] = [];
          let rows = 0;
          for (let h = hkv - 1; h >= 0; h--) {
            rows += gaps[h];
            offsets[h] = rows;
            rows += lengths[h];
          }
          let s = seed >>> 0;
          const rand = () => {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            return (s / 2 ** 32) * 2 - 1;
          };
          const hq = group * hkv;
          const q = Float32Array.from({ length: hq * w * d }, rand);
          const k = Float32Array.from({ length: rows * d }, rand);
          const v = Float32Array.from({ length: rows * d }, rand);
          const got = raggedAttention(q, k, v, { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, offsets, lengths, causal });
          const want = naive(q, k, v, hq, hkv, d, w, offsets, lengths, causal);
          for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-6);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('raggedAttention argument errors', () => {
  const q = new Float32Array(4);
  const kv = new Float32Array(8);
  const ok = { numHeads: 2, numKvHeads: 2, headDim: 2, offsets: [0, 2], lengths: [2, 2] };
  const cases: Array<[string, Record<string, unknown>, string, unknown]> = [
    ['heads not a multiple', { numHeads: 3 }, 'numHeads', 3],
    ['block past the buffer', { lengths: [2, 3] }, 'offsets[1] + lengths[1]', 5],
    ['negative offset', { offsets: [-1, 2] }, 'offsets[0]', -1],
    ['fractional length', { lengths: [1.5, 2] }, 'lengths[0]', 1.5],
    ['wrong count of lengths', { lengths: [2] }, 'lengths.length', 1],
    ['queries of another shape', { queryCount: 2 }, 'queries.length', 4],
    ['zero scale', { scale: 0 }, 'scale', 0],
  ];
  for (const [label, patch, argument, value] of cases) {
    it(`${label} → InvalidArgumentError(${argument})`, () => {
      const e = (() => {
        try {
          raggedAttention(q, kv, kv, { ...ok, ...patch } as never);
        } catch (error) {
          return error;
        }
      })();
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
      expect((e as InvalidArgumentError).argument).toBe(argument);
      expect((e as InvalidArgumentError).value).toEqual(value);
    });
  }
  it('rejects mixed f32 keys and f16 values, and rows that are not whole', () => {
    expect(() => raggedAttention(q, kv, new Uint16Array(8), ok)).toThrow(InvalidArgumentError);
    expect(() => raggedAttention(q, new Float32Array(7), new Float32Array(7), ok)).toThrow(/keys.length/);
  });
});

describe('raggedAttentionOf', () => {
  it("uses the backend's own kernel, or the reference for a backend without one", async () => {
    const { raggedAttention: _own, ...legacy } = referenceKernelBackend;
    expect(raggedAttentionOf(legacy as KernelBackendV1)).toBe(raggedAttention);
    const marker = new Float32Array([42]);
    const custom = { ...legacy, raggedAttention: () => marker } as KernelBackendV1;
    expect(await raggedAttentionOf(custom)(new Float32Array(2), new Float32Array(2), new Float32Array(2), { numHeads: 1, numKvHeads: 1, headDim: 2, offsets: [0], lengths: [1] })).toBe(marker);
  });
});
