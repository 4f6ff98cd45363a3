import {
  gatherRows,
  getKernelBackend,
  InvalidArgumentError,
  KernelError,
  listKernelBackends,
  pool1d,
  topKPerRow,
  windowAttentionScores,
  type ReduceOp,
} from '@draft/core';
import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../src/f16.js';
import { loadBinding } from '../src/binding.js';
import { nativeInfo, registerNativeBackend } from '../src/native-backend.js';
import { kernelErrorFrom, nativeGatherRows, nativePool1d, nativeSpecPCAggregate, nativeTopK, nativeWindowScores } from '../src/native-ops.js';
import { boundaryGap, freshSeed, maxRelError, randomFloats, rng } from './helpers.js';

const info = nativeInfo();
const nativeAvailable = info.native;
const seed = freshSeed();
const TOL = 1e-5;

describe.skipIf(nativeAvailable)('native parity', () => {
  it.skip(`skipped, native addon unavailable: ${info.reason}`, () => {});
});

describe.runIf(nativeAvailable)(`native CPU vs TS reference (seed ${seed})`, () => {
  const next = rng(seed);
  const ops: ReduceOp[] = ['max', 'mean', 'sum'];
  let c = 0;
  for (const group of [1, 2, 7]) {
    for (const window of [1, 33, 97]) {
      const op = ops[c % 3];
      const hkv = 1 + (c % 2);
      const keyCount = window + 150 + 211 * (c % 4); // odd lengths, not multiples of the chunk
      const headDim = c % 3 === 0 ? 64 : c % 3 === 1 ? 17 : 5;
      const chunkSize = c % 2 === 0 ? 64 : undefined;
      const weighted = c % 3 === 2;
      const f16 = c % 4 === 1;
      const causalTail = c % 5 !== 4;
      const label = `G=${group} w=${window} N=${keyCount} d=${headDim} op=${op}${weighted ? ' weighted' : ''}${f16 ? ' f16' : ''}${causalTail ? '' : ' non-causal'}`;
      c++;
      it(`window scores + pool + top-k + gather: ${label}`, async () => {
        const hq = group * hkv;
        const q = randomFloats(next, hq * window * headDim, -2, 2);
        let k = randomFloats(next, hkv * keyCount * headDim, -2, 2);
        const kh = f16 ? float32ToFloat16(k) : null;
        if (kh) k = float16ToFloat32(kh); // the reference sees the rounded keys
        const queryWeights = weighted ? Float32Array.from({ length: window }, (_, i) => (window > 1 ? i / (window - 1) : 1)) : undefined;
        const opts = { numHeads: hq, numKvHeads: hkv, headDim, queryCount: window, keyCount, op, queryWeights, chunkSize, causalTail };
        const ref = windowAttentionScores(q, k, opts);
        const got = await nativeWindowScores(q, kh ?? k, { ...opts, numThreads: 2 });
        expect(maxRelError(got, ref, 1e-20)).toBeLessThan(TOL);
        // pooling, then identical top-k sets on the same input, then end to end when the boundary is not a near-tie
        const poolOpts = { kernel: 7, type: 'max' as const, padding: 'same' as const, rows: hkv };
        const pooledRef = pool1d(ref, poolOpts);
        expect(maxRelError(await nativePool1d(ref, poolOpts), pooledRef)).toBe(0);
        const budget = Math.min(keyCount, 5 + (c % 3) * 60);
        const sel = { rows: hkv, length: keyCount, k: budget };
        const keptRef = topKPerRow(pooledRef, sel);
        const kept = await nativeTopK(pooledRef, sel);
        expect(kept.map((r) => Array.from(r))).toEqual(keptRef.map((r) => Array.from(r)));
        const pooledGot = pool1d(got, poolOpts);
        const safe = keptRef.every((_, h) => boundaryGap(pooledRef.subarray(h * keyCount, (h + 1) * keyCount), budget) > 1e-4);
        if (safe) expect((await nativeTopK(pooledGot, sel)).map((r) => Array.from(r))).toEqual(keptRef.map((r) => Array.from(r)));
        const shape = { numKvHeads: hkv, length: keyCount, headDim };
        expect(Array.from(await nativeGatherRows(k, shape, kept))).toEqual(Array.from(gatherRows(k, shape, keptRef)));
      });
    }
  }

  it('pool1d: every type × padding × odd/even kernel, several rows', async () => {
    for (const kernel of [1, 3, 7, 32, 64, 65]) {
      for (const type of ['max', 'avg'] as const) {
        for (const padding of ['same', 'centred-zero'] as const) {
          if (padding === 'same' && kernel % 2 === 0) continue;
          const s = randomFloats(next, 3 * 1001);
          const o = { kernel, type, padding, rows: 3 };
          expect(maxRelError(await nativePool1d(s, o), pool1d(s, o), 1e-6)).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('top-k: ties, NaN, ±inf, ragged k and score order match the reference exactly', async () => {
    const rows = 3;
    const length = 4099;
    const s = new Float32Array(rows * length);
    for (let i = 0; i < s.length; i++) {
      const v = Math.floor(next() * 8);
      s[i] = v === 7 ? [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0][Math.floor(next() * 4)] : v;
    }
    for (const k of [0, 1, 97, 4099, 5000]) {
      const sel = { rows, length, k };
      expect((await nativeTopK(s, sel)).map((r) => Array.from(r))).toEqual(topKPerRow(s, sel).map((r) => Array.from(r)));
    }
    const ragged = { rows, length, k: [3, 0, 1000] };
    expect((await nativeTopK(s, ragged)).map((r) => Array.from(r))).toEqual(topKPerRow(s, ragged).map((r) => Array.from(r)));
    const byScore = await nativeTopK(s.slice(0, length), { rows: 1, length, k: 50, order: 'score' });
    const { topK } = await import('@draft/core');
    expect(Array.from(byScore[0])).toEqual(Array.from(topK(s.subarray(0, length), 50, { order: 'score' })));
  });

  it('gather: ragged counts and f16 rows', async () => {
    const shape = { numKvHeads: 3, length: 257, headDim: 19 };
    const t = randomFloats(next, 3 * 257 * 19);
    const kept = [Int32Array.of(0, 5, 256), Int32Array.of(), Int32Array.from({ length: 100 }, (_, i) => i * 2)];
    expect(Array.from(await nativeGatherRows(t, shape, kept))).toEqual(Array.from(gatherRows(t, shape, kept)));
    const th = float32ToFloat16(t);
    expect(Array.from(float16ToFloat32(await nativeGatherRows(th, shape, kept)))).toEqual(Array.from(gatherRows(float16ToFloat32(th), shape, kept)));
  });

  it('SpecPC aggregation: max over layers and rows, truncated, streamable', () => {
    const layers = 4;
    const rows = 2;
    const n = 333;
    const s = randomFloats(next, layers * rows * n, 0, 1);
    const expected = new Float32Array(n - 7).fill(Number.NEGATIVE_INFINITY);
    for (let r = 0; r < layers * rows; r++) for (let j = 0; j < n - 7; j++) expected[j] = Math.max(expected[j], s[r * n + j]);
    expect(Array.from(nativeSpecPCAggregate(s, { numLayers: layers, rowsPerLayer: rows, keyCount: n, outLength: n - 7 }))).toEqual(Array.from(expected));
    const into = new Float32Array(n - 7).fill(Number.NEGATIVE_INFINITY);
    for (let l = 0; l < layers; l++) {
      nativeSpecPCAggregate(s.subarray(l * rows * n, (l + 1) * rows * n), { numLayers: 1, rowsPerLayer: rows, keyCount: n, outLength: n - 7, into });
    }
    expect(Array.from(into)).toEqual(Array.from(expected));
  });

  it('rejects bad input with InvalidArgumentError and maps kernel statuses to KernelError', async () => {
    const q = new Float32Array(8);
    const k = new Float32Array(8);
    const base = { numHeads: 2, numKvHeads: 1, headDim: 2, queryCount: 2, keyCount: 4, op: 'max' as const };
    await expect(nativeWindowScores(q, k, { ...base, numHeads: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nativeWindowScores(q, k, { ...base, keyCount: 5 })).rejects.toThrow(/keys.length/);
    await expect(nativeWindowScores(q, k, { ...base, op: 'median' as never })).rejects.toThrow(/op/);
    await expect(nativePool1d(q, { kernel: 2, type: 'max', padding: 'same' })).rejects.toThrow(/odd/);
    await expect(nativeTopK(q, { rows: 3, length: 3, k: 1 })).rejects.toThrow(/scores.length/);
    await expect(nativeGatherRows(k, { numKvHeads: 1, length: 4, headDim: 2 }, [Int32Array.of(4)])).rejects.toBeInstanceOf(InvalidArgumentError);
    // a raw status from the addon (op code 7 bypasses the TS validation) becomes a KernelError with that status
    const binding = loadBinding().binding;
    const raw = await binding?.windowScores(q, k, { ...base, op: 7, causalTail: 1 }).catch((e: unknown) => e);
    const mapped = kernelErrorFrom(raw, 'cpu_window_scores');
    expect(mapped).toBeInstanceOf(KernelError);
    expect((mapped as KernelError).status).toBe(1);
  });

  it("registers as the 'native' kernel backend and computes through getKernelBackend()", async () => {
    const result = registerNativeBackend();
    try {
      expect(result.registered).toContain('native');
      expect(getKernelBackend().name).toBe('native');
      expect(listKernelBackends().map((b) => b.name)).toContain('reference');
      const q = randomFloats(next, 2 * 3 * 8);
      const k = randomFloats(next, 1 * 50 * 8);
      const opts = { numHeads: 2, numKvHeads: 1, headDim: 8, queryCount: 3, keyCount: 50, op: 'mean' as const };
      const got = await getKernelBackend().windowAttentionScores(q, k, opts);
      expect(maxRelError(got, windowAttentionScores(q, k, opts), 1e-20)).toBeLessThan(TOL);
    } finally {
      result.unregister();
    }
    expect(getKernelBackend().name).toBe('reference');
  });
});

describe.runIf(info.cuda.devices > 0)(`CUDA vs TS reference (seed ${seed})`, () => {
  const next = rng(seed + 1);
  for (const group of [1, 2, 7]) {
    for (const window of [1, 33, 97]) {
      it(`window scores + top-k on CUDA: G=${group} w=${window}`, async () => {
        const hkv = 2;
        const keyCount = 3001;
        const q = randomFloats(next, group * hkv * window * 64);
        const k = randomFloats(next, hkv * keyCount * 64);
        const opts = { numHeads: group * hkv, numKvHeads: hkv, headDim: 64, queryCount: window, keyCount, op: 'max' as const };
        const ref = windowAttentionScores(q, k, opts);
        expect(maxRelError(await nativeWindowScores(q, k, { ...opts, device: 'cuda' }), ref, 1e-20)).toBeLessThan(TOL);
        const sel = { rows: hkv, length: keyCount, k: 224 };
        expect((await nativeTopK(ref, { ...sel, device: 'cuda' })).map((r) => Array.from(r))).toEqual(topKPerRow(ref, sel).map((r) => Array.from(r)));
        const poolOpts = { kernel: 7, type: 'max' as const, padding: 'same' as const, rows: hkv };
        expect(maxRelError(await nativePool1d(ref, { ...poolOpts, device: 'cuda' }), pool1d(ref, poolOpts))).toBe(0);
      });
    }
  }
});

describe.skipIf(info.cuda.devices > 0)('CUDA parity', () => {
  it.skip(`skipped: ${info.cuda.built ? 'no CUDA device' : 'addon built without CUDA'}`, () => {});
});
