// Layer-wise execution (loadModel({ layerwise: true })): the graph split at its layers must compute what the
// whole graph computes, and a compressed prefill through `prefillSelect` must keep exactly what the whole-graph
// prefill + gather keeps while never allocating more than one layer's full KV.
import { AbortError, createPipeline, defineCachePolicy, InvalidArgumentError, type KeptIndices } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { MODELS, maxAbsDiff, TINY_QWEN2_GQA } from './helpers.js';

// random-target: 4 layers, 2 KV heads, head dim 16, float32 → one layer's keys + values take 2 · 2 · 16 · 4 =
// 256 bytes per token, all four layers 1024.
const RANDOM_TARGET = `${MODELS}fixtures/random-target`;
const LAYER_BYTES_PER_TOKEN = 256;
const LAYERS = 4;
const N = 1024;
const CHUNK = 128;
const prompt = Array.from({ length: N }, (_, i) => 6 + ((i * 37) % 400));

/** Keeps, per layer, a different deterministic spread of `budget` entries (layer-local: reads nothing). */
const spread = (budget: number) =>
  defineCachePolicy({
    type: 'spread',
    queryWindow: 8,
    selectLayer: (ctx, layer) => spreadLayer(ctx.promptLength, ctx.numKvHeads, budget, layer),
  });
function spreadLayer(n: number, heads: number, budget: number, layer: number): Int32Array[] {
  return Array.from({ length: heads }, (_, h) => Int32Array.from({ length: budget }, (_, j) => Math.floor(((j + 0.5) * (n - 1)) / budget + layer + h) % (n - 1)).sort());
}

describe('a graph split at its layers computes what the whole graph computes', () => {
  for (const [name, dir] of [
    ['decomposed attention (random-target)', RANDOM_TARGET],
    ['GroupQueryAttention (tiny-qwen2-gqa)', TINY_QWEN2_GQA],
  ] as const) {
    it(name, async () => {
      const whole = await loadModel(dir, { threads: 1 });
      const split = await loadModel(dir, { threads: 1, layerwise: true });
      try {
        expect(whole.prefillSelect).toBeUndefined();
        expect(split.graph.layerwise).toBe(true);
        const ids = prompt.slice(0, 300);
        const a = await whole.forward({ inputIds: ids, captureQueries: 16, chunkSize: 100 });
        const b = await split.forward({ inputIds: ids, captureQueries: 16, chunkSize: 100 });
        expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
        for (let l = 0; l < whole.info.numLayers; l++) {
          expect(maxAbsDiff(a.queries?.[l] ?? [], b.queries?.[l] ?? [])).toBeLessThan(1e-4);
          expect(maxAbsDiff(await a.cache.readKeys(l), await b.cache.readKeys(l))).toBeLessThan(1e-4);
        }
        // A decode step over the cache.
        const sa = await whole.forward({ inputIds: [7], cache: a.cache });
        const sb = await split.forward({ inputIds: [7], cache: b.cache });
        expect(maxAbsDiff(sa.logits, sb.logits)).toBeLessThan(1e-4);
        for (const c of [a.cache, b.cache, sa.cache, sb.cache]) c.dispose();
      } finally {
        await whole.dispose();
        await split.dispose();
      }
    });
  }
});

describe('prefillSelect: selection inside the layer loop', () => {
  let whole: OrtCausalLM;
  let split: OrtCausalLM;
  beforeAll(async () => {
    whole = await loadModel(RANDOM_TARGET, { threads: 1 });
    split = await loadModel(RANDOM_TARGET, { threads: 1, layerwise: true });
  });
  afterAll(async () => {
    await whole?.dispose();
    await split?.dispose();
  });

  it('keeps the entries the selection names, at their positions: the same cache as a whole prefill + gather', async () => {
    const budget = 64;
    const seen: number[] = [];
    const { cache } = await (split.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({
      inputIds: prompt,
      captureQueries: 9,
      chunkSize: CHUNK,
      selectLayer: async ({ layer, keys, queries }) => {
        seen.push(layer);
        // One layer's keys (numKvHeads, n, d) and window queries (numHeads, 9, d).
        expect(keys.length).toBe(2 * N * 16);
        expect(queries.length).toBe(8 * 9 * 16);
        return spreadLayer(N, 2, budget, layer);
      },
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    const full = await whole.forward({ inputIds: prompt, captureQueries: 9, chunkSize: CHUNK });
    const kept: KeptIndices = Array.from({ length: LAYERS }, (_, l) => spreadLayer(N, 2, budget, l));
    const gathered = await full.cache.gather(kept);
    expect(cache.lengths).toEqual(gathered.lengths);
    for (let l = 0; l < LAYERS; l++) {
      for (let h = 0; h < 2; h++) expect(Array.from(cache.positions(l, h))).toEqual(Array.from(kept[l][h]));
      expect(maxAbsDiff(await cache.readKeys(l), await gathered.readKeys(l))).toBeLessThan(1e-4);
    }
    const a = await split.forward({ inputIds: [5], cache });
    const b = await whole.forward({ inputIds: [5], cache: gathered });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
    for (const c of [cache, full.cache, gathered, a.cache, b.cache]) c.dispose();
  });

  it("lends each layer's keys and queries for the selection's call only: freed once its promise settles", async () => {
    const lent: { keys: Float32Array; queries: Float32Array }[] = [];
    const { cache } = await (split.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({
      inputIds: prompt,
      captureQueries: 9,
      chunkSize: CHUNK,
      selectLayer: async ({ layer, keys, queries }) => {
        // Usable through the whole call, awaits included.
        await new Promise((resolve) => setTimeout(resolve, 5));
        expect(keys.length).toBe(2 * N * 16);
        expect(queries.length).toBe(8 * 9 * 16);
        lent.push({ keys, queries });
        return spreadLayer(N, 2, 64, layer);
      },
    });
    // A selection that kept them sees empty arrays: their memory went back at once, not at the next GC.
    cache.dispose();
    expect(lent.map((l) => [l.keys.length, l.queries.length])).toEqual(Array.from({ length: LAYERS }, () => [0, 0]));
  });

  it('a compressed generate never allocates a full all-layer KV: peak ≤ one layer’s past + present + the compressed cache', async () => {
    const budget = 32;
    await split.kvMemoryStats({ resetPeak: true });
    const layerwise = await createPipeline({ target: split, cachePolicy: spread(budget), budget: { tokens: budget }, prefillChunkSize: CHUNK }).generate({ inputIds: prompt }, { maxNewTokens: 8 });
    const stats = await split.kvMemoryStats({ resetPeak: true });
    // The last chunk of a layer holds its past (896 tokens) and present (1024 tokens); the allocator gives a new
    // array room for max(32, n/16) more tokens, rounded up to 32: 960 and 1088. The kept entries of the other
    // layers (32 per head) may sit in a reused buffer of up to twice their size + 4 KiB (32 tokens here).
    const oneLayer = (960 + 1088) * LAYER_BYTES_PER_TOKEN;
    const compressed = LAYERS * (2 * budget + 32) * LAYER_BYTES_PER_TOKEN;
    expect(stats.peakLiveBytes).toBeLessThanOrEqual(oneLayer + compressed);
    const allLayersFull = N * LAYERS * LAYER_BYTES_PER_TOKEN;
    expect(stats.peakLiveBytes).toBeLessThan(allLayersFull);
    expect(stats.liveBytes).toBe(0);
    // The whole-graph engine holds every layer's past and present in the last chunk.
    await whole.kvMemoryStats({ resetPeak: true });
    const reference = await createPipeline({ target: whole, cachePolicy: spread(budget), budget: { tokens: budget }, prefillChunkSize: CHUNK }).generate({ inputIds: prompt }, { maxNewTokens: 8 });
    expect((await whole.kvMemoryStats()).peakLiveBytes).toBeGreaterThan(allLayersFull);
    expect(layerwise.tokens).toEqual(reference.tokens);
    expect(layerwise.usage.keptKvTokens).toEqual(reference.usage.keptKvTokens);
    expect(layerwise.kvBytes.afterPrefill).toBe(reference.kvBytes.afterPrefill);
  });

  it('a selection error or an abort frees every array, and the model stays usable', async () => {
    const before = await split.generate({ inputIds: prompt.slice(0, 50) }, { maxNewTokens: 4 });
    const bad = split.prefillSelect?.({ inputIds: prompt, captureQueries: 4, chunkSize: CHUNK, selectLayer: async () => [Int32Array.of(3, 2), Int32Array.of(1)] });
    const error = await bad?.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).message).toContain('selectLayer(0)[0][1]');
    const controller = new AbortController();
    const aborted = split.prefillSelect?.({
      inputIds: prompt,
      captureQueries: 4,
      chunkSize: CHUNK,
      signal: controller.signal,
      selectLayer: async ({ layer }) => {
        if (layer === 1) controller.abort();
        return spreadLayer(N, 2, 16, layer);
      },
    });
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    expect((await split.kvMemoryStats()).liveBytes).toBe(0);
    const again = await split.generate({ inputIds: prompt.slice(0, 50) }, { maxNewTokens: 4 });
    expect(again.tokens).toEqual(before.tokens);
  });
});
