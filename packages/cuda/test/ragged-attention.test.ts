import {
  getKernelBackend,
  InvalidArgumentError,
  NativeUnavailableError,
  RaggedKvStore,
  raggedAttention,
  raggedAttentionOf,
} from '@draft/core';
import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../src/f16.js';
import { nativeInfo, registerNativeBackend } from '../src/native-backend.js';
import { nativeRaggedAttention } from '../src/native-ops.js';
import { freshSeed, randomFloats, rng } from './helpers.js';

const info = nativeInfo();
const seed = freshSeed();

/**
 * Plain attention written for this test: float64, per query an explicit max-subtracted softmax over the
 * entries it sees, weights times values. No chunks, no online rescaling.
 */
function plainAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: { hq: number; hkv: number; d: number; w: number; offsets: number[]; lengths: number[]; causal: boolean },
): Float64Array {
  const out = new Float64Array(s.hq * s.w * s.d);
  const g = s.hq / s.hkv;
  for (let h = 0; h < s.hq; h++) {
    const kvh = Math.floor(h / g);
    for (let i = 0; i < s.w; i++) {
      const seen = s.causal ? Math.max(0, s.lengths[kvh] - s.w + i + 1) : s.lengths[kvh];
      const logits: number[] = [];
      for (let j = 0; j < seen; j++) {
        let dot = 0;
        for (let x = 0; x < s.d; x++) dot += q[(h * s.w + i) * s.d + x] * k[(s.offsets[kvh] + j) * s.d + x];
        logits.push(dot / Math.sqrt(s.d));
      }
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < seen; j++) {
        for (let x = 0; x < s.d; x++) out[(h * s.w + i) * s.d + x] += (e[j] / z) * v[(s.offsets[kvh] + j) * s.d + x];
      }
    }
  }
  return out;
}

function maxAbsError(a: Float32Array, b: Float64Array): number {
  let worst = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Number.isNaN(a[i]) ? Number.POSITIVE_INFINITY : Math.abs(a[i] - b[i]));
  return worst;
}

describe.skipIf(info.native)('native ragged attention', () => {
  it.skip(`skipped, native addon unavailable: ${info.reason}`, () => {});
});

describe.runIf(info.native)(`native ragged attention vs plain float64 attention (seed ${seed})`, () => {
  const next = rng(seed);
  for (let c = 0; c < 24; c++) {
    const group = [1, 2, 7][c % 3];
    const hkv = 1 + (c % 4);
    const d = [64, 17, 128, 1][c % 4];
    const w = c % 4 === 3 ? 6 : 1;
    const causal = c % 5 !== 4;
    const f16 = c % 2 === 1;
    const chunkSize = [undefined, 64, 100][c % 3];
    // a fresh draw of per-head lengths: empty and length-1 heads are common, long ones cross many chunks
    const lengths = Array.from({ length: hkv }, () => {
      const pick = Math.floor(next() * 6);
      return pick === 0 ? 0 : pick === 1 ? 1 : Math.floor(next() * (c < 12 ? 300 : 2500));
    });
    const label = `G=${group} Hkv=${hkv} d=${d} q=${w} lengths=[${lengths}]${causal ? '' : ' non-causal'}${f16 ? ' f16' : ''}${chunkSize ? ` chunk=${chunkSize}` : ''}`;
    it(label, async () => {
      // blocks in reverse head order with gaps (spare capacity) between them
      const offsets: number[] = new Array(hkv);
      let rows = 0;
      for (let h = hkv - 1; h >= 0; h--) {
        rows += Math.floor(next() * 5);
        offsets[h] = rows;
        rows += lengths[h];
      }
      const hq = group * hkv;
      const q = randomFloats(next, hq * w * d, -2, 2);
      let k = randomFloats(next, rows * d, -2, 2);
      let v = randomFloats(next, rows * d, -1, 1);
      const kh = f16 ? float32ToFloat16(k) : null;
      const vh = f16 ? float32ToFloat16(v) : null;
      if (kh && vh) {
        k = float16ToFloat32(kh); // the plain reference sees the rounded storage
        v = float16ToFloat32(vh);
      }
      const opts = { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, offsets, lengths, causal };
      const want = plainAttention(q, k, v, { hq, hkv, d, w, offsets, lengths, causal });
      const got = await nativeRaggedAttention(q, kh ?? k, vh ?? v, { ...opts, chunkSize, numThreads: 2 });
      expect(maxAbsError(got, want)).toBeLessThan(2e-5);
      // the TS reference (same contract) agrees too
      expect(maxAbsError(raggedAttention(q, kh ?? k, vh ?? v, opts), want)).toBeLessThan(1e-6);
    });
  }

  it('reads a RaggedKvStore layer in place, before and after decode appends (through the registered backend)', async () => {
    const reg = registerNativeBackend({ numThreads: 2 });
    try {
      const backend = getKernelBackend();
      expect(backend.name).toBe('native');
      const d = 8;
      const n = 40;
      const keys = randomFloats(next, 2 * n * d);
      const values = randomFloats(next, 2 * n * d);
      const kept = [Int32Array.from({ length: 25 }, (_, i) => i), Int32Array.of(3, 39)];
      const store = RaggedKvStore.fromSelection({ numKvHeads: 2, headDim: d, dtype: 'float16', layers: [{ keys, values, length: n, kept }] });
      for (let t = 0; t < 20; t++) {
        store.append(0, randomFloats(next, 2 * d), randomFloats(next, 2 * d), Int32Array.of(n + t));
        const view = store.layer(0);
        const q = randomFloats(next, 6 * d);
        const opts = { numHeads: 6, numKvHeads: 2, headDim: d, offsets: view.offsets, lengths: view.lengths };
        const got = await raggedAttentionOf(backend)(q, view.keys, view.values, opts);
        const k32 = float16ToFloat32(view.keys as Uint16Array);
        const v32 = float16ToFloat32(view.values as Uint16Array);
        const want = plainAttention(q, k32, v32, { hq: 6, hkv: 2, d, w: 1, offsets: [...view.offsets], lengths: [...view.lengths], causal: true });
        expect(maxAbsError(got, want)).toBeLessThan(2e-5);
      }
      expect(Array.from(store.lengths(0))).toEqual([45, 22]);
    } finally {
      reg.unregister();
    }
  });

  it('rejects bad shapes and offsets with InvalidArgumentError and stays usable', async () => {
    const q = new Float32Array(4);
    const kv = new Float32Array(8);
    const ok = { numHeads: 2, numKvHeads: 2, headDim: 2, offsets: [0, 2], lengths: [2, 2] };
    const bad: Array<[Record<string, unknown>, string, unknown]> = [
      [{ offsets: [0, 3] }, 'offsets[1] + lengths[1]', 5],
      [{ lengths: [-1, 2] }, 'lengths[0]', -1],
      [{ numHeads: 3 }, 'numHeads', 3],
      [{ offsets: Int32Array.of(0) }, 'offsets.length', 1],
      [{ chunkSize: 0 }, 'chunkSize', 0],
      [{ numThreads: -1 }, 'numThreads', -1],
    ];
    for (const [patch, argument, value] of bad) {
      const error = await nativeRaggedAttention(q, kv, kv, { ...ok, ...patch } as never).catch((e) => e);
      expect(error, argument).toBeInstanceOf(InvalidArgumentError);
      expect(error.argument).toBe(argument);
      expect(error.value).toEqual(value);
    }
    const mixed = await nativeRaggedAttention(q, kv, new Uint16Array(8), ok).catch((e) => e);
    expect(mixed).toBeInstanceOf(InvalidArgumentError);
    expect(mixed.argument).toBe('values');
    // still usable: zero queries → uniform weights → the mean of each head's values
    const values = Float32Array.of(1, 2, 3, 4, 10, 20, 30, 40);
    expect(Array.from(await nativeRaggedAttention(q, kv, values, ok))).toEqual([2, 3, 20, 30]);
  });

  it.runIf(info.cuda.devices === 0)("device 'cuda' without a device is NativeUnavailableError", async () => {
    const kv = new Float32Array(2);
    const error = await nativeRaggedAttention(new Float32Array(2), kv, kv, { numHeads: 1, numKvHeads: 1, headDim: 2, offsets: [0], lengths: [1], device: 'cuda' }).catch((e) => e);
    expect(error).toBeInstanceOf(NativeUnavailableError);
    expect(error.code).toBe('NATIVE_UNAVAILABLE');
  });
});

describe.runIf(info.cuda.devices > 0)(`CUDA ragged attention vs CPU kernel (seed ${seed})`, () => {
  const next = rng(seed ^ 0x5bd1e995);
  for (const [group, d, w, f16] of [
    [1, 64, 1, false],
    [2, 128, 1, true],
    [7, 37, 4, false],
    [7, 128, 1, true],
  ] as const) {
    it(`G=${group} d=${d} q=${w}${f16 ? ' f16' : ''}`, async () => {
      const hkv = 3;
      const lengths = [0, 1, 1 + Math.floor(next() * 4000)];
      const offsets = [0, 0, 1];
      const rows = 1 + lengths[2];
      const q = randomFloats(next, group * hkv * w * d);
      const k32 = randomFloats(next, rows * d);
      const v32 = randomFloats(next, rows * d);
      const k = f16 ? float32ToFloat16(k32) : k32;
      const v = f16 ? float32ToFloat16(v32) : v32;
      const opts = { numHeads: group * hkv, numKvHeads: hkv, headDim: d, queryCount: w, offsets, lengths };
      const cpu = await nativeRaggedAttention(q, k, v, opts);
      const gpu = await nativeRaggedAttention(q, k, v, { ...opts, device: 'cuda' });
      expect(maxAbsError(gpu, Float64Array.from(cpu))).toBeLessThan(2e-5);
    });
  }
});

describe.skipIf(info.cuda.devices > 0)('CUDA ragged attention parity', () => {
  it.skip(`skipped: ${info.cuda.built ? 'no CUDA device' : 'addon built without CUDA'}`, () => {});
});
