// In-place decode: a decode step feeds the cache at its buffer's capacity (free columns masked), fetches only
// the new K/V rows and writes them into the next free column. It must give the tokens of the engine that
// fetches whole presents, keep older caches unchanged when a newer step writes, and allocate nothing per step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackLayerRow } from '../src/batched-decode.js';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '../src/index.js';
import { argmax, maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA, TORCH_LLAMA } from './helpers.js';

const prompt = Array.from({ length: 37 }, (_, i) => (i * 11 + 5) % 200);

/** Greedy steps from `cache` (disposing each previous cache, as a decode loop does): tokens and last logits. */
async function greedy(model: OrtCausalLM, cache: OrtKvCache, first: number, steps: number): Promise<{ tokens: number[]; logits: Float32Array; cache: OrtKvCache }> {
  const tokens: number[] = [];
  let token = first;
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < steps; i++) {
    const step = await model.forward({ inputIds: [token], cache });
    cache.dispose();
    cache = step.cache;
    logits = step.logits;
    token = argmax(logits);
    tokens.push(token);
  }
  return { tokens, logits, cache };
}

describe('in-place decode', () => {
  for (const [name, dir] of [
    ['tiny-llama', TINY_LLAMA],
    ['torch-llama', TORCH_LLAMA],
  ] as const) {
    it(`${name}: the tokens, logits and cache of the engine that fetches whole presents, across buffer growth`, async () => {
      const inPlace = await loadModel(dir, { threads: 1 });
      const copying = await loadModel(dir, { threads: 1, inPlaceDecode: false });
      try {
        expect(inPlace.graph.inPlaceDecode).toBe(true);
        expect(copying.graph.inPlaceDecode).toBe(false);
        // 70 steps: past the first buffer's 32 free columns (and the next), so the cache is widened twice.
        const a = await greedy(inPlace, (await inPlace.forward({ inputIds: prompt })).cache, 7, 70);
        const b = await greedy(copying, (await copying.forward({ inputIds: prompt })).cache, 7, 70);
        expect(a.tokens).toEqual(b.tokens);
        expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
        expect(a.cache.length).toBe(prompt.length + 70);
        for (let l = 0; l < inPlace.info.numLayers; l++) {
          expect(maxAbsDiff(await a.cache.readKeys(l), await b.cache.readKeys(l))).toBeLessThan(1e-4);
          expect(maxAbsDiff(await a.cache.readValues(l), await b.cache.readValues(l))).toBeLessThan(1e-4);
        }
        a.cache.dispose();
        b.cache.dispose();
      } finally {
        await inPlace.dispose();
        await copying.dispose();
      }
    });
  }

  describe('on one model', () => {
    let model: OrtCausalLM;
    beforeAll(async () => {
      model = await loadModel(TINY_LLAMA, { threads: 1 });
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('keeps an older cache as it was when a newer step writes into the shared buffer, and branches from it', async () => {
      const prefill = await model.forward({ inputIds: prompt });
      const s1 = await model.forward({ inputIds: [9], cache: prefill.cache });
      const keysAfterOne = await s1.cache.readKeys(0);
      // Two steps on from s1 (they write columns after s1's), then a branch from s1 itself.
      const s2 = await model.forward({ inputIds: [10], cache: s1.cache });
      const s3 = await model.forward({ inputIds: [11], cache: s2.cache });
      expect(s1.cache.length).toBe(prompt.length + 1);
      expect(Array.from(await s1.cache.readKeys(0))).toEqual(Array.from(keysAfterOne));
      const branch = await model.forward({ inputIds: [12], cache: s1.cache });
      // The same step on a cache that never shared a buffer: a fresh prefill of prompt + [9].
      const fresh = await model.forward({ inputIds: [...prompt, 9] });
      const reference = await model.forward({ inputIds: [12], cache: fresh.cache });
      expect(maxAbsDiff(branch.logits, reference.logits)).toBeLessThan(1e-4);
      // s3 still reads its own three steps after the branch wrote.
      expect(s3.cache.length).toBe(prompt.length + 3);
      const replay = await model.forward({ inputIds: [10, 11], cache: fresh.cache });
      expect(maxAbsDiff(await s3.cache.readKeys(1), await replay.cache.readKeys(1))).toBeLessThan(1e-4);
      for (const c of [prefill.cache, s1.cache, s2.cache, s3.cache, branch.cache, fresh.cache, reference.cache, replay.cache]) c.dispose();
    });

    it('allocates no KV per step once the cache is in its buffer: the peak stays at one cache', async () => {
      const prefill = await model.forward({ inputIds: prompt });
      const first = await model.forward({ inputIds: [9], cache: prefill.cache });
      prefill.cache.dispose();
      const held = (await model.kvMemoryStats({ resetPeak: true })).liveBytes;
      // 37 + 1 written columns of 37 + 32 rounded up to 96: 20 more steps fit.
      const run = await greedy(model, first.cache, 9, 20);
      const stats = await model.kvMemoryStats();
      // Fetching presents held past and present at once (about twice this) on every step.
      expect(stats.peakLiveBytes).toBe(held);
      expect(stats.liveBytes).toBe(held);
      run.cache.dispose();
    });

    it('is off for fused GroupQueryAttention graphs, which step as before', async () => {
      const gqa = await loadModel(TINY_QWEN2_GQA, { threads: 1 });
      try {
        expect(gqa.graph.inPlaceDecode).toBe(false);
        const prefill = await gqa.forward({ inputIds: prompt });
        const { tokens } = await greedy(gqa, prefill.cache, 7, 3);
        expect(tokens).toHaveLength(3);
      } finally {
        await gqa.dispose();
      }
    });
  });
});

describe('unpackLayerRow up to a column (by hand)', () => {
  it('copies only the real slots written before `upTo`', () => {
    // [B=1, H=1, T=5, d=1]: columns 0–2 real, 3 written by a later step, 4 free.
    const batch = Float32Array.from([1, 2, 3, 4, 0]);
    const mask = Uint8Array.from([1, 1, 1, 1, 0]);
    const out = new Float32Array(3);
    unpackLayerRow(batch, mask, 0, 5, { numKvHeads: 1, headDim: 1 }, out, 3);
    expect(Array.from(out)).toEqual([1, 2, 3]);
  });
});
