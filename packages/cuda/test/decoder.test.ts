// The native decoder through its public API (createNativeDecoder, mapFile, registerNativeBackend) against a
// plain float64 Llama step written here: RMSNorm, rotate-half RoPE, grouped-query softmax attention over the
// masked cache plus the new token, SwiGLU, residuals, LM head.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  InvalidArgumentError,
  type NativeDecoderConfigV1,
  type NativeDecoderLayerV1,
  type NativeDecoderRowV1,
  type NativeDecoderWeightsV1,
  type NativeKvArray,
  registeredDecodeEngine,
} from '@draft/core';
import { describe, expect, it } from 'vitest';
import { createNativeDecoder, mapFile, nativeInfo, registerNativeBackend } from '../src/index.js';

const native = nativeInfo().native;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const CONFIG: NativeDecoderConfigV1 = { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 48, vocabSize: 29, rmsNormEps: 1e-5, threads: 2 };

/** Weights whose matrices are Float32Arrays (what the reference reads). */
type Float32Weights = NativeDecoderWeightsV1 & { embed: Float32Array; lmHead: Float32Array; layers: Array<NativeDecoderLayerV1 & Record<'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down', Float32Array>> };

function randomWeights(seed: number, bias: boolean): Float32Weights {
  const r = rng(seed);
  const f = (n: number, lo = -0.3, hi = 0.3) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = CONFIG;
  return {
    embed: f(V * D, -1, 1),
    finalNorm: f(D, 0.5, 1.5),
    lmHead: f(V * D),
    layers: Array.from({ length: CONFIG.numLayers }, () => ({
      inputNorm: f(D, 0.5, 1.5),
      postNorm: f(D, 0.5, 1.5),
      q: f(H * d * D),
      k: f(Hkv * d * D),
      v: f(Hkv * d * D),
      o: f(D * H * d),
      ...(bias ? { qBias: f(H * d, -1, 1), kBias: f(Hkv * d, -1, 1), vBias: f(Hkv * d, -1, 1) } : {}),
      gate: f(I * D),
      up: f(I * D),
      down: f(D * I),
    })),
  };
}

const matvec = (W: ArrayLike<number>, x: number[], rows: number, cols: number) =>
  Array.from({ length: rows }, (_, i) => x.reduce((s, xv, c) => s + W[i * cols + c] * xv, 0));
const norm = (x: number[], w: Float32Array, eps: number) => {
  const inv = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => w[i] * v * inv);
};
const rope = (x: number[], cos: Float32Array, sin: Float32Array) => {
  const h = x.length / 2;
  return x.map((v, i) => (i < h ? v * cos[i] - x[i + h] * sin[i] : v * cos[i] + x[i - h] * sin[i]));
};

/** Logits and the new K/V per layer (Hkv·d) of one step, reading the cache before the step writes it. */
function referenceStep(w: Float32Weights, row: NativeDecoderRowV1): { logits: number[]; k: number[][]; v: number[][]; q: number[][] } {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V, rmsNormEps: eps } = CONFIG;
  const G = H / Hkv;
  let x = Array.from(w.embed.subarray(row.token * D, (row.token + 1) * D));
  const ks: number[][] = [];
  const vs: number[][] = [];
  const qs: number[][] = [];
  w.layers.forEach((L, l) => {
    const h = norm(x, L.inputNorm, eps);
    let q = matvec(L.q, h, H * d, D);
    let k = matvec(L.k, h, Hkv * d, D);
    const v = matvec(L.v, h, Hkv * d, D).map((e, i) => e + (L.vBias?.[i] ?? 0));
    q = q.map((e, i) => e + (L.qBias?.[i] ?? 0));
    k = k.map((e, i) => e + (L.kBias?.[i] ?? 0));
    const qr = Array.from({ length: H }, (_, hh) => rope(q.slice(hh * d, (hh + 1) * d), row.cos, row.sin));
    const kr = Array.from({ length: Hkv }, (_, g) => rope(k.slice(g * d, (g + 1) * d), row.cos, row.sin));
    ks.push(kr.flat());
    qs.push(qr.flat());
    vs.push(v);
    const att: number[] = [];
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / G);
      const cols: { key: ArrayLike<number>; value: ArrayLike<number> }[] = [];
      for (let j = 0; j < row.used; j++) {
        if (row.mask && !row.mask[j]) continue;
        if (row.headMasks && !row.headMasks[l][g * row.capacity + j]) continue;
        const at = (g * row.capacity + j) * d;
        cols.push({ key: row.keys[l].subarray(at, at + d), value: row.values[l].subarray(at, at + d) });
      }
      cols.push({ key: kr[g], value: v.slice(g * d, (g + 1) * d) });
      const s = cols.map((c) => qr[hh].reduce((a, e, i) => a + e * c.key[i], 0) / Math.sqrt(d));
      const m = Math.max(...s);
      const p = s.map((e) => Math.exp(e - m));
      const z = p.reduce((a, b) => a + b, 0);
      for (let i = 0; i < d; i++) att.push(cols.reduce((a, c, j) => a + (p[j] / z) * c.value[i], 0));
    }
    x = matvec(L.o, att, D, H * d).map((e, i) => e + x[i]);
    const h2 = norm(x, L.postNorm, eps);
    const gate = matvec(L.gate, h2, I, D);
    const up = matvec(L.up, h2, I, D);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    x = matvec(L.down, act, D, I).map((e, i) => e + x[i]);
  });
  return { logits: matvec(w.lmHead, norm(x, w.finalNorm, eps), V, D), k: ks, v: vs, q: qs };
}

/** IEEE half bits nearest to x (round to nearest even), written here from the format's definition. */
function toHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  // Spacing of halves near a: 2^-24 below 2^-14 (subnormals), else 2^(e − 10).
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
  const ulp = 2 ** (e - 10);
  let q = a / ulp;
  const f = Math.floor(q);
  q = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  const v = q * ulp;
  return sign | halfOf(v);
}

/** Bits of a non-negative value that is exactly a half. */
function halfOf(v: number): number {
  if (v < 2 ** -14) return Math.round(v / 2 ** -24);
  const e = Math.floor(Math.log2(v));
  return ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024);
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

const halfBits = (a: NativeKvArray): Uint16Array => Uint16Array.from(a, toHalf);
const roundToHalf = (a: NativeKvArray): Float32Array => Float32Array.from(a, (x) => halfToNumber(toHalf(x)));

function randomRow(seed: number, used: number, withMask: boolean, withHeadMasks = false): NativeDecoderRowV1 {
  const r = rng(seed);
  const { numLayers, numKvHeads: Hkv, headDim: d, vocabSize } = CONFIG;
  const capacity = used + 1 + Math.floor(r() * 4);
  const position = used + Math.floor(r() * 3000);
  const cos = new Float32Array(d);
  const sin = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    const angle = position * 10000 ** (-(2 * (i % (d / 2))) / d);
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
  const cache = () => Float32Array.from({ length: Hkv * capacity * d }, () => 2 * r() - 1);
  return {
    token: Math.floor(r() * vocabSize),
    cos,
    sin,
    keys: Array.from({ length: numLayers }, cache),
    values: Array.from({ length: numLayers }, cache),
    capacity,
    used,
    ...(withMask ? { mask: Uint8Array.from({ length: used }, () => (r() < 0.7 ? 1 : 0)) } : {}),
    // Ragged caches padded per KV head: each head masks its own columns.
    ...(withHeadMasks ? { headMasks: Array.from({ length: numLayers }, () => Uint8Array.from({ length: Hkv * capacity }, () => (r() < 0.6 ? 1 : 0))) } : {}),
    logits: new Float32Array(vocabSize),
  };
}

describe.runIf(native)('native decoder', () => {
  it.each([
    { bias: false, useds: [0] },
    { bias: true, useds: [9] },
    { bias: false, useds: [300, 2, 0] },
  ])('matches a float64 reference step (bias $bias, used $useds), writing the new K/V at column used', ({ bias, useds }) => {
    const weights = randomWeights(11 + useds.length, bias);
    const decoder = createNativeDecoder(CONFIG, weights);
    try {
      const rows = useds.map((used, i) => randomRow(100 + i, used, i % 2 === 0, i % 3 !== 1));
      const expected = rows.map((row) => referenceStep(weights, row));
      decoder.step(rows);
      rows.forEach((row, b) => {
        const scale = Math.max(1, ...expected[b].logits.map(Math.abs));
        for (const [i, e] of expected[b].logits.entries()) expect(Math.abs(row.logits[i] - e)).toBeLessThan(1e-4 * scale);
        const { numKvHeads: Hkv, headDim: d } = CONFIG;
        for (let l = 0; l < CONFIG.numLayers; l++) {
          for (let g = 0; g < Hkv; g++) {
            const at = (g * row.capacity + row.used) * d;
            for (let i = 0; i < d; i++) {
              expect(row.keys[l][at + i]).toBeCloseTo(expected[b].k[l][g * d + i], 4);
              expect(row.values[l][at + i]).toBeCloseTo(expected[b].v[l][g * d + i], 4);
            }
          }
        }
      });
    } finally {
      decoder.close();
    }
  });

  it("with kvDtype 'float16' reads caches of half bits and writes the new K/V rounded to nearest even: the reference's logits over the same values", () => {
    const weights = randomWeights(41, true);
    const decoder = createNativeDecoder({ ...CONFIG, kvDtype: 'float16' }, weights);
    try {
      expect(decoder.kvDtype).toBe('float16');
      const { numLayers, numKvHeads: Hkv, headDim: d } = CONFIG;
      // The reference reads the halves' values as floats; the decoder reads their bits.
      const refRows = [300, 4, 0].map((used, i) => {
        const row = randomRow(700 + i, used, i === 1, i === 0);
        return { ...row, keys: row.keys.map(roundToHalf), values: row.values.map(roundToHalf) };
      });
      const rows = refRows.map((row) => ({ ...row, keys: row.keys.map(halfBits), values: row.values.map(halfBits), logits: new Float32Array(CONFIG.vocabSize) }));
      decoder.step(rows);
      rows.forEach((row, b) => {
        const expected = referenceStep(weights, refRows[b]);
        const scale = Math.max(1, ...expected.logits.map(Math.abs));
        // 1e-3: the reference keeps the new token's K/V in float64, the decoder its half-rounded copy.
        for (const [i, e] of expected.logits.entries()) expect(Math.abs(row.logits[i] - e)).toBeLessThan(1e-3 * scale);
        for (let l = 0; l < numLayers; l++) {
          for (let g = 0; g < Hkv; g++) {
            const at = (g * row.capacity + row.used) * d;
            for (let i = 0; i < d; i++) {
              // The stored bits are the half nearest the value (two ulps allowed where f32 and f64 round apart).
              for (const [stored, exact] of [
                [row.keys[l][at + i], expected.k[l][g * d + i]],
                [row.values[l][at + i], expected.v[l][g * d + i]],
              ]) {
                expect(Math.abs(halfToNumber(stored) - exact)).toBeLessThanOrEqual(2 ** -9 * Math.max(1, Math.abs(exact)));
              }
            }
          }
        }
      });
      // A float32 array where half bits are due is a typed refusal, and the decoder stays usable.
      expect(() => decoder.step([refRows[0]])).toThrow(/Uint16Array/);
      expect(() => decoder.step([rows[1]])).not.toThrow();
    } finally {
      decoder.close();
    }
    expect(() => createNativeDecoder({ ...CONFIG, kvDtype: 'bfloat16' as never }, weights)).toThrow(InvalidArgumentError);
    const plain = createNativeDecoder(CONFIG, weights);
    expect(plain.kvDtype).toBe('float32');
    plain.close();
  });

  it("with weightDtype 'float16' reads matrices of half bits, widened exactly: the reference's logits with the halves' values", () => {
    const weights = randomWeights(53, true);
    // The reference computes with the halves' values; the decoder gets their bits (norms and biases stay float32).
    const rounded: Float32Weights = {
      ...weights,
      embed: roundToHalf(weights.embed),
      lmHead: roundToHalf(weights.lmHead),
      layers: weights.layers.map((L) => ({ ...L, q: roundToHalf(L.q), k: roundToHalf(L.k), v: roundToHalf(L.v), o: roundToHalf(L.o), gate: roundToHalf(L.gate), up: roundToHalf(L.up), down: roundToHalf(L.down) })),
    };
    const halves: NativeDecoderWeightsV1 = {
      ...rounded,
      embed: halfBits(rounded.embed),
      lmHead: halfBits(rounded.lmHead),
      layers: rounded.layers.map((L) => ({ ...L, q: halfBits(L.q), k: halfBits(L.k), v: halfBits(L.v), o: halfBits(L.o), gate: halfBits(L.gate), up: halfBits(L.up), down: halfBits(L.down) })),
    };
    const decoder = createNativeDecoder({ ...CONFIG, weightDtype: 'float16' }, halves);
    try {
      expect(decoder.weightDtype).toBe('float16');
      const rows = [0, 300, 7].map((used, i) => randomRow(900 + i, used, i === 2, i === 1));
      const expected = rows.map((row) => referenceStep(rounded, row));
      decoder.step(rows);
      rows.forEach((row, b) => {
        const scale = Math.max(1, ...expected[b].logits.map(Math.abs));
        for (const [i, e] of expected[b].logits.entries()) expect(Math.abs(row.logits[i] - e)).toBeLessThan(1e-4 * scale);
      });
    } finally {
      decoder.close();
    }
    // Float32 matrices where half bits are due (and the reverse) are typed refusals.
    expect(() => createNativeDecoder({ ...CONFIG, weightDtype: 'float16' }, weights)).toThrow(/Uint16Array/);
    expect(() => createNativeDecoder(CONFIG, halves)).toThrow(InvalidArgumentError);
    expect(() => createNativeDecoder({ ...CONFIG, weightDtype: 'int8' as never }, weights)).toThrow(InvalidArgumentError);
    const plain = createNativeDecoder(CONFIG, weights);
    expect(plain.weightDtype).toBe('float32');
    plain.close();
  });

  it('refuses bad configs, weights and rows with InvalidArgumentError, and stays usable', () => {
    const weights = randomWeights(3, false);
    expect(() => createNativeDecoder({ ...CONFIG, numKvHeads: 3 }, weights)).toThrow(InvalidArgumentError);
    expect(() => createNativeDecoder({ ...CONFIG, hiddenSize: 0 }, weights)).toThrow(/config\.hiddenSize/);
    const short = { ...weights, layers: weights.layers.map((L) => ({ ...L, q: L.q.subarray(1) })) };
    expect(() => createNativeDecoder(CONFIG, short)).toThrow(/layers\[0\]\.q has/);
    const decoder = createNativeDecoder(CONFIG, weights);
    try {
      const row = randomRow(5, 4, false);
      try {
        decoder.step([{ ...row, token: CONFIG.vocabSize }]);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as InvalidArgumentError).code).toBe('INVALID_ARGUMENT');
        expect((error as InvalidArgumentError).value).toBe(CONFIG.vocabSize);
      }
      expect(() => decoder.step([{ ...row, used: row.capacity }])).toThrow(InvalidArgumentError);
      expect(() => decoder.step([{ ...row, keys: row.keys.slice(1) }])).toThrow(/keys must hold one array per layer/);
      expect(() => decoder.step([])).toThrow(InvalidArgumentError);
      // More sequences than the kernel takes per call run in groups, each row still its own step.
      const many = Array.from({ length: 70 }, (_, i) => randomRow(500 + i, i % 5, false));
      const expectedMany = many.map((r) => referenceStep(weights, r).logits);
      decoder.step(many);
      for (const [b, r] of many.entries()) for (const [i, e] of expectedMany[b].entries()) expect(r.logits[i]).toBeCloseTo(e, 3);
      // Nothing was written by the refused calls; a good step still matches the reference.
      const expected = referenceStep(weights, row);
      decoder.step([row]);
      for (const [i, e] of expected.logits.entries()) expect(row.logits[i]).toBeCloseTo(e, 3);
    } finally {
      decoder.close();
    }
    expect(() => decoder.step([randomRow(5, 4, false)])).toThrow(/closed/);
  });

  it('prefills layer by layer as the reference steps token by token: every logit row, the written K/V, the window queries', () => {
    const weights = randomWeights(21, true);
    const decoder = createNativeDecoder(CONFIG, weights);
    const prefill = decoder.prefill;
    if (!prefill) throw new Error('the engine has no prefill');
    const { numLayers, numHeads: H, numKvHeads: Hkv, headDim: d, hiddenSize: D, vocabSize: V } = CONFIG;
    try {
      // A past of 7 columns (head masks on them), then 70 tokens (more than one 64-token pass).
      const used = 7;
      const N = 70;
      const base = randomRow(77, used, false, true);
      const capacity = used + N;
      const pad = (a: NativeKvArray) => {
        const out = new Float32Array(Hkv * capacity * d);
        for (let g = 0; g < Hkv; g++) out.set(a.subarray(g * base.capacity * d, (g * base.capacity + used) * d), g * capacity * d);
        return out;
      };
      const headMasks = (base.headMasks as Uint8Array[]).map((m) => {
        const out = new Uint8Array(Hkv * capacity).fill(1);
        for (let g = 0; g < Hkv; g++) out.set(m.subarray(g * base.capacity, g * base.capacity + used), g * capacity);
        return out;
      });
      const ref = { keys: base.keys.map(pad), values: base.values.map(pad) };
      const r = rng(5);
      const tokens = Int32Array.from({ length: N }, () => Math.floor(r() * V));
      const cos = new Float32Array(N * d);
      const sin = new Float32Array(N * d);
      const expected: number[][] = [];
      const expectedQueries: number[][][] = [];
      for (let t = 0; t < N; t++) {
        const row = randomRow(1, 0, false);
        for (let i = 0; i < d; i++) {
          const angle = (used + t) * 10000 ** (-(2 * (i % (d / 2))) / d);
          cos[t * d + i] = row.cos[i] = Math.cos(angle);
          sin[t * d + i] = row.sin[i] = Math.sin(angle);
        }
        const step = referenceStep(weights, { ...row, token: tokens[t], keys: ref.keys, values: ref.values, capacity, used: used + t, headMasks });
        expected.push(step.logits);
        expectedQueries.push(step.q);
        for (let l = 0; l < numLayers; l++) {
          for (let g = 0; g < Hkv; g++) {
            ref.keys[l].set(step.k[l].slice(g * d, (g + 1) * d), (g * capacity + used + t) * d);
            ref.values[l].set(step.v[l].slice(g * d, (g + 1) * d), (g * capacity + used + t) * d);
          }
        }
      }
      const keys = base.keys.map(pad);
      const values = base.values.map(pad);
      const hidden = new Float32Array(N * D);
      const queryRows = 3;
      const queries = Array.from({ length: numLayers }, () => new Float32Array(H * queryRows * d));
      prefill.embed(tokens, hidden);
      for (let l = 0; l < numLayers; l++) {
        prefill.layer({ layer: l, hidden, count: N, cos, sin, keys: keys[l], values: values[l], capacity, used, headMask: headMasks[l], queries: queries[l], queryRows });
      }
      const logits = new Float32Array(N * V);
      prefill.head(hidden, N, logits);
      for (let t = 0; t < N; t++) {
        const scale = Math.max(1, ...expected[t].map(Math.abs));
        for (let i = 0; i < V; i++) expect(Math.abs(logits[t * V + i] - expected[t][i])).toBeLessThan(1e-4 * scale);
      }
      for (let l = 0; l < numLayers; l++) {
        for (let i = 0; i < keys[l].length; i++) {
          expect(keys[l][i]).toBeCloseTo(ref.keys[l][i], 4);
          expect(values[l][i]).toBeCloseTo(ref.values[l][i], 4);
        }
      }
      // Window queries (numHeads, queryRows, headDim): the reference's post-RoPE queries of the last tokens.
      for (let l = 0; l < numLayers; l++) {
        for (let h = 0; h < H; h++) {
          for (let w = 0; w < queryRows; w++) {
            const want = expectedQueries[N - queryRows + w][l].slice(h * d, (h + 1) * d);
            for (const [i, e] of want.entries()) expect(queries[l][(h * queryRows + w) * d + i]).toBeCloseTo(e, 4);
          }
        }
      }
      // Bad calls: typed errors, nothing lost.
      expect(() => prefill.embed(Int32Array.of(V), hidden)).toThrow(InvalidArgumentError);
      expect(() => prefill.layer({ layer: numLayers, hidden, count: N, cos, sin, keys: keys[0], values: values[0], capacity, used })).toThrow(/call\.layer/);
      expect(() => prefill.layer({ layer: 0, hidden, count: N, cos, sin, keys: keys[0], values: values[0], capacity: N, used })).toThrow(InvalidArgumentError);
      expect(() => prefill.layer({ layer: 0, hidden, count: N, cos: cos.subarray(1), sin, keys: keys[0], values: values[0], capacity, used })).toThrow(/cos has/);
      prefill.head(hidden, 1, logits);
      for (let i = 0; i < V; i++) expect(Math.abs(logits[i] - expected[0][i])).toBeLessThan(1e-4 * Math.max(1, ...expected[0].map(Math.abs)));
    } finally {
      decoder.close();
    }
    expect(() => prefill.embed(Int32Array.of(1), new Float32Array(D))).toThrow(/closed/);
  });

  it('maps a file read-only with the same bytes', () => {
    const path = fileURLToPath(import.meta.url);
    expect(Buffer.from(mapFile(path)).equals(readFileSync(path))).toBe(true);
    expect(() => mapFile('/nonexistent/file')).toThrow(/cannot open/);
  });

  it('registerNativeBackend registers the decode engine by the path of its built module', () => {
    const before = registeredDecodeEngine();
    const registration = registerNativeBackend();
    try {
      expect(registration.decodeEngine).toBe(true);
      expect(registeredDecodeEngine()?.module).toMatch(/decode-engine\.js$/);
    } finally {
      registration.unregister();
    }
    expect(registeredDecodeEngine()).toEqual(before);
    const without = registerNativeBackend({ decodeEngine: false });
    expect(without.decodeEngine).toBe(false);
    without.unregister();
  });
});
