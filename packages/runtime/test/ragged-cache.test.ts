import { UnsupportedCapabilityError } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { argmax, maxAbsDiff, TINY_QWEN2_GQA, TORCH_LLAMA, torchGolden } from './helpers.js';

const softmax = (l: number) => `/layers.${l}/self_attn/Softmax_output_0`;
const golden = torchGolden();
const prompt = golden.cases[1].prompt; // 30 tokens
const D = 16;
const HQ = 4;
const G = 2;

const range = (from: number, to: number) => Int32Array.from({ length: to - from }, (_, i) => from + i);
// AdaKV/PyramidKV-like selection: different counts per layer and per KV head.
const KEPT = [
  [Int32Array.from([0, 1, 4, 9, 13, 17, 20, 25, 28, 29]), Int32Array.from([0, 2, 3, 26, 27, 29])],
  [Int32Array.from([1, 5, 28, 29]), range(18, 30)],
];

describe('ragged caches (raggedCache: true, decomposed attention)', () => {
  let model: OrtCausalLM;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1, raggedCache: true, debugOutputs: [softmax(0), softmax(1)] });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('declares the capabilities; GroupQueryAttention graphs refuse the option', async () => {
    expect(model.capabilities).toMatchObject({ raggedKvHeads: true, raggedLayers: true });
    const plain = await loadModel(TORCH_LLAMA, { threads: 1 });
    expect(plain.capabilities).toMatchObject({ raggedKvHeads: false, raggedLayers: false });
    await plain.dispose();
    const gqa = await loadModel(TINY_QWEN2_GQA, { raggedCache: true }).catch((e: unknown) => e);
    expect(gqa).toBeInstanceOf(UnsupportedCapabilityError);
    expect((gqa as UnsupportedCapabilityError).capability).toBe('raggedKvHeads');
  });

  it('a uniform selection still matches the torch golden compacted step', async () => {
    for (const c of golden.cases) {
      const pre = await model.forward({ inputIds: c.prompt });
      const k = Int32Array.from(c.compacted.kept_past_indices);
      const compact = await pre.cache.gather([
        [k, k],
        [k, k],
      ]);
      expect(compact.uniform).toBe(true);
      const step = await model.forward({ inputIds: [c.compacted.next_token], cache: compact });
      expect(maxAbsDiff(step.logits, c.compacted.logits_first16, 16)).toBeLessThanOrEqual(golden.tolerance.logits_abs);
      expect(argmax(step.logits)).toBe(c.compacted.argmax);
      for (const x of [pre.cache, compact, step.cache]) x.dispose();
    }
  });

  it('gathers different counts per layer and head, padding the shorter heads', async () => {
    const pre = await model.forward({ inputIds: prompt });
    const ragged = await pre.cache.gather(KEPT);
    expect(ragged.uniform).toBe(false);
    expect(ragged.lengths).toEqual([
      [10, 6],
      [4, 12],
    ]);
    expect(ragged.length).toBe(12);
    expect(ragged.byteSize()).toBe(2 * 2 * 2 * 12 * D * 4);
    expect(Array.from(ragged.positions(0, 1))).toEqual(Array.from(KEPT[0][1]));
    expect(ragged.nextPosition).toBe(30);
    await expect(ragged.readKeys(0)).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    // Slots: kept rows first, zero padding after, validity marks them.
    const full = await pre.cache.readKeys(1);
    const slots = await ragged.readSlots(1, 'key');
    expect(slots.slots).toBe(12);
    expect(Array.from(slots.valid.subarray(0, 12))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(slots.valid.subarray(12))).toEqual(new Array(12).fill(1));
    for (const [j, i] of Array.from(KEPT[1][0]).entries()) expect(maxAbsDiff(slots.data.subarray(j * D, (j + 1) * D), full.subarray(i * D, (i + 1) * D))).toBe(0);
    // A second gather indexes real entries only (never padding) and composes positions.
    const again = await ragged.gather([
      [Int32Array.from([0, 9]), Int32Array.from([5])],
      [Int32Array.from([3]), Int32Array.from([0, 11])],
    ]);
    expect(Array.from(again.positions(0, 0))).toEqual([0, 29]);
    expect(Array.from(again.positions(0, 1))).toEqual([29]);
    expect(Array.from(again.positions(1, 1))).toEqual([18, 29]);
    const cropped = await ragged.crop(3);
    expect(cropped.uniform).toBe(true);
    expect(Array.from(cropped.positions(1, 0))).toEqual([1, 5, 28]);
    expect(cropped.nextPosition).toBe(29);
    for (const x of [pre.cache, ragged, again, cropped]) x.dispose();
  });

  it('each head attends exactly to its own kept entries (softmax recomputed from captured Q and raw slots)', async () => {
    const pre = await model.forward({ inputIds: prompt });
    const ragged = await pre.cache.gather(KEPT);
    const step = await model.forward({ inputIds: [161, 156], cache: ragged, captureQueries: 'all', debugOutputs: [softmax(0), softmax(1)] });
    expect(Array.from(step.cache.positions(1, 0))).toEqual([1, 5, 28, 29, 30, 31]);
    expect(step.cache.lengths).toEqual([
      [12, 8],
      [6, 14],
    ]);
    for (let l = 0; l < 2; l++) {
      const { data: keys, valid, slots } = await step.cache.readSlots(l, 'key');
      expect(slots).toBe(14);
      const q = step.queries![l];
      const probs = step.debug![softmax(l)];
      expect(probs.dims).toEqual([1, HQ, 2, 14]);
      let worst = 0;
      for (let h = 0; h < HQ; h++) {
        const kv = Math.floor(h / G);
        for (let i = 0; i < 2; i++) {
          const allowed = (t: number) => (t < 12 ? valid[kv * 14 + t] === 1 : t - 12 <= i);
          const logits: number[] = [];
          for (let t = 0; t < 14; t++) {
            let dot = 0;
            for (let x = 0; x < D; x++) dot += q[(h * 2 + i) * D + x] * keys[(kv * 14 + t) * D + x];
            logits.push(allowed(t) ? dot / Math.sqrt(D) : Number.NEGATIVE_INFINITY);
          }
          const max = Math.max(...logits);
          const sum = logits.reduce((a, v) => a + Math.exp(v - max), 0);
          for (let t = 0; t < 14; t++) {
            const expected = Math.exp(logits[t] - max) / sum;
            const got = probs.data[(h * 2 + i) * 14 + t];
            if (!allowed(t)) expect(got).toBe(0);
            worst = Math.max(worst, Math.abs(expected - got));
          }
        }
      }
      expect(worst).toBeLessThan(1e-5);
    }
    // PyramidKV-style (layers differ, heads equal within a layer): per-layer reads return the real entries.
    const pyramid = await pre.cache.gather([
      [range(0, 10), range(0, 10)],
      [range(24, 30), range(24, 30)],
    ]);
    const layer1 = await pyramid.readKeys(1);
    const full1 = await pre.cache.readKeys(1);
    expect(layer1.length).toBe(2 * 6 * D);
    expect(maxAbsDiff(layer1.subarray(0, 6 * D), full1.subarray(24 * D, 30 * D))).toBe(0);
    expect(maxAbsDiff(layer1.subarray(6 * D), full1.subarray((30 + 24) * D, 60 * D))).toBe(0);
    for (const x of [pre.cache, ragged, step.cache, pyramid]) x.dispose();
  });

  it('generation continues on a ragged cache', async () => {
    const pre = await model.forward({ inputIds: prompt });
    const ragged = await pre.cache.gather(KEPT);
    let cache = ragged;
    let logits = pre.logits;
    for (let i = 0; i < 4; i++) {
      const r = await model.forward({ inputIds: [argmax(logits)], cache });
      if (cache !== ragged) cache.dispose();
      cache = r.cache;
      logits = r.logits;
      expect(Number.isFinite(logits[0])).toBe(true);
    }
    expect(Array.from(cache.positions(0, 1))).toEqual([...KEPT[0][1], 30, 31, 32, 33]);
    for (const x of [pre.cache, ragged, cache]) x.dispose();
  });
});
