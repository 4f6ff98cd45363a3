// The native decoder through its public API (createNativeDecoder, mapFile, registerNativeBackend) against a
// plain float64 Llama step written here: RMSNorm, rotate-half RoPE, grouped-query softmax attention over the
// masked cache plus the new token, SwiGLU, residuals, LM head.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type NativeDecoderConfigV1, type NativeDecoderRowV1, type NativeDecoderWeightsV1, registeredDecodeEngine } from '@draft/core';
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

function randomWeights(seed: number, bias: boolean): NativeDecoderWeightsV1 {
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

const matvec = (W: Float32Array, x: number[], rows: number, cols: number) =>
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
function referenceStep(w: NativeDecoderWeightsV1, row: NativeDecoderRowV1): { logits: number[]; k: number[][]; v: number[][] } {
  const { hiddenSize: D, numHeads: H, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V, rmsNormEps: eps } = CONFIG;
  const G = H / Hkv;
  let x = Array.from(w.embed.subarray(row.token * D, (row.token + 1) * D));
  const ks: number[][] = [];
  const vs: number[][] = [];
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
  return { logits: matvec(w.lmHead, norm(x, w.finalNorm, eps), V, D), k: ks, v: vs };
}

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
      expect(() => decoder.step([{ ...row, keys: row.keys.slice(1) }])).toThrow(/keys must hold one Float32Array per layer/);
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
