import { UnsupportedCapabilityError, InvalidArgumentError } from '@draft/core';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '../src/index.js';
import { maxAbsDiff, TORCH_LLAMA, torchGolden } from './helpers.js';

const prompt = torchGolden().cases[0].prompt; // 12 tokens
const HKV = 2;
const D = 16;

/** Rows `idx` of head `h` of a (Hkv, T, d) tensor. */
function rows(t: Float32Array, total: number, h: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * D);
  for (const [j, i] of idx.entries()) out.set(t.subarray((h * total + i) * D, (h * total + i + 1) * D), j * D);
  return out;
}

describe('OrtKvCache', () => {
  let model: OrtCausalLM;
  let full: OrtKvCache;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1 });
    full = (await model.forward({ inputIds: prompt })).cache;
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('describes shape, positions and bytes', () => {
    expect(full).toMatchObject({ specificationVersion: 'v1', numLayers: 2, numKvHeads: 2, headDim: 16, uniform: true, nextPosition: 12, length: 12 });
    expect(full.lengths).toEqual([
      [12, 12],
      [12, 12],
    ]);
    expect(Array.from(full.positions(1, 1))).toEqual([...Array(12).keys()]);
    expect(full.byteSize()).toBe(2 * 2 * 2 * 12 * 16 * 4);
    expect(() => full.positions(2, 0)).toThrow(InvalidArgumentError);
  });

  it('gather keeps per-head rows and their original positions', async () => {
    const keep = [
      [Int32Array.from([0, 3, 7, 11]), Int32Array.from([1, 2, 5, 6])],
      [Int32Array.from([4, 5, 6, 7]), Int32Array.from([0, 1, 10, 11])],
    ];
    const g = await full.gather(keep);
    expect(g.length).toBe(4);
    expect(g.nextPosition).toBe(12);
    expect(g.byteSize()).toBe(2 * 2 * 2 * 4 * 16 * 4);
    for (let l = 0; l < 2; l++) {
      const keys = await full.readKeys(l);
      const values = await full.readValues(l);
      const gk = await g.readKeys(l);
      const gv = await g.readValues(l);
      for (let h = 0; h < HKV; h++) {
        const idx = Array.from(keep[l][h]);
        expect(Array.from(g.positions(l, h))).toEqual(idx);
        expect(maxAbsDiff(gk.subarray(h * 4 * D, (h + 1) * 4 * D), rows(keys, 12, h, idx))).toBe(0);
        expect(maxAbsDiff(gv.subarray(h * 4 * D, (h + 1) * 4 * D), rows(values, 12, h, idx))).toBe(0);
      }
    }
    // Gathering again composes positions.
    const gg = await g.gather([
      [Int32Array.from([1, 3]), Int32Array.from([0, 2])],
      [Int32Array.from([0, 1]), Int32Array.from([2, 3])],
    ]);
    expect(Array.from(gg.positions(0, 0))).toEqual([3, 11]);
    expect(Array.from(gg.positions(1, 1))).toEqual([10, 11]);
    // New tokens continue at the true next position.
    const step = await model.forward({ inputIds: [5], cache: gg });
    expect(Array.from(step.cache.positions(0, 1))).toEqual([1, 5, 12]);
    expect(step.cache.nextPosition).toBe(13);
    for (const c of [g, gg, step.cache]) c.dispose();
  });

  it('rejects ragged heads / layers and bad indices', async () => {
    const a = Int32Array.from([0, 1]);
    const b = Int32Array.from([0, 1, 2]);
    const ragged = await full.gather([[a, b], [a, a]]).catch((e: unknown) => e);
    expect(ragged).toBeInstanceOf(UnsupportedCapabilityError);
    expect((ragged as UnsupportedCapabilityError).capability).toBe('raggedKvHeads');
    const layers = await full.gather([[a, a], [b, b]]).catch((e: unknown) => e);
    expect((layers as UnsupportedCapabilityError).capability).toBe('raggedLayers');
    for (const bad of [Int32Array.from([1, 0]), Int32Array.from([0, 12]), Int32Array.from([2, 2])]) {
      expect(await full.gather([[bad, bad], [bad, bad]]).catch((e: unknown) => e)).toBeInstanceOf(InvalidArgumentError);
    }
    expect(await full.gather([[a, a]]).catch((e: unknown) => e)).toBeInstanceOf(InvalidArgumentError);
  });

  it('crop keeps a prefix and rolls nextPosition back; clone is independent', async () => {
    const c = await full.crop(5);
    expect(c.length).toBe(5);
    expect(c.nextPosition).toBe(5);
    expect(maxAbsDiff(await c.readKeys(0), new Float32Array([...rows(await full.readKeys(0), 12, 0, [0, 1, 2, 3, 4]), ...rows(await full.readKeys(0), 12, 1, [0, 1, 2, 3, 4])]))).toBe(0);
    // Re-running the cropped tokens reproduces the full prefill's last logits.
    const again = await model.forward({ inputIds: prompt.slice(5), cache: c });
    const whole = await model.forward({ inputIds: prompt });
    expect(maxAbsDiff(again.logits, whole.logits)).toBeLessThan(1e-5);
    const clone = await full.clone();
    expect(Array.from(clone.positions(0, 0))).toEqual(Array.from(full.positions(0, 0)));
    expect(maxAbsDiff(await clone.readValues(1), await full.readValues(1))).toBe(0);
    const keysBefore = await full.readKeys(1);
    clone.dispose();
    expect(maxAbsDiff(await full.readKeys(1), keysBefore)).toBe(0);
    expect(await c.crop(6).catch((e: unknown) => e)).toBeInstanceOf(InvalidArgumentError);
    for (const x of [c, again.cache, whole.cache]) x.dispose();
  });

  it('garbage collection releases only unreachable caches', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const r = await model.forward({ inputIds: [1, 3, 4, 5] });
    (() => model.forward({ inputIds: [1, 3] }))(); // an unreachable cache, released by the finalizer
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await r.cache.readKeys(0)).length).toBe(2 * 4 * 16);
    r.cache.dispose();
  });

  it('a forward leaves its input cache intact', async () => {
    const before = await full.readKeys(0);
    const step = await model.forward({ inputIds: [9, 10], cache: full });
    expect(step.cache.length).toBe(14);
    expect(full.length).toBe(12);
    expect(maxAbsDiff(await full.readKeys(0), before)).toBe(0);
    step.cache.dispose();
  });
});
