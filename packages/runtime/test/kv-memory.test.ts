import { AbortError, createPipeline, defineCachePolicy } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { TINY_LLAMA } from './helpers.js';

// tiny-llama: 2 layers, 2 KV heads, head dim 16, float32 → keys + values take 2 · 2 · 2 · 16 · 4 = 512 bytes per token.
const BYTES_PER_TOKEN = 512;
const N = 512;
const CHUNK = 64;
const prompt = Array.from({ length: N }, (_, i) => 6 + ((i * 37) % 500));

/** Keeps the last `budget` prompt entries of every (layer, KV head) (a StreamingLLM-like selection). */
const keepLast = (budget: number) =>
  defineCachePolicy({
    type: 'keep-last',
    queryWindow: 8,
    select: (ctx) => {
      const n = ctx.promptLength - 1;
      const idx = Int32Array.from({ length: budget }, (_, i) => n - budget + i);
      return Array.from({ length: ctx.numLayers }, () => Array.from({ length: ctx.numKvHeads }, () => idx));
    },
  });

describe('KV memory measured by the worker allocator', () => {
  let model: OrtCausalLM;
  beforeAll(async () => {
    model = await loadModel(TINY_LLAMA, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('a chunked prefill frees each chunk’s presents: peak ≤ past + present of the last chunk, not the sum of all chunks', async () => {
    await model.kvMemoryStats({ resetPeak: true });
    const { cache } = await model.forward({ inputIds: prompt, chunkSize: CHUNK });
    const full = N * BYTES_PER_TOKEN;
    expect(cache.byteSize()).toBe(full);
    const after = await model.kvMemoryStats();
    // Capacity slack: at most max(32, N/16) + 32 tokens per array.
    expect(after.liveBytes).toBeGreaterThanOrEqual(full);
    expect(after.liveBytes).toBeLessThanOrEqual(full + 64 * BYTES_PER_TOKEN);
    // Keeping every chunk's presents alive would peak at Σ_{k=1..8} 64·k tokens = 36 · 64 · 512 B = 4.5 × full;
    // allocating every layer's next past before the chunk runs, at past + present = 2 × full. Growing one array
    // (one layer's keys or values: 2 · 16 · 4 = 128 B per token, with ≤ 64 tokens of capacity slack) at a time
    // holds at most the cache plus one such array.
    expect(after.peakLiveBytes).toBeLessThanOrEqual(full + 64 * BYTES_PER_TOKEN + (N + 64) * 128);
    cache.dispose();
    expect((await model.kvMemoryStats()).liveBytes).toBe(0);
  });

  it('the first decode step after a prefill reuses the prefill cache’s buffers (no second copy), and the prefill handle still reads its own rows', async () => {
    const { cache } = await model.forward({ inputIds: prompt, chunkSize: CHUNK });
    const step = await (async () => {
      try {
        const before = await model.kvMemoryStats({ resetPeak: true });
        const keys0 = await cache.readKeys(0);
        const next = await model.forward({ inputIds: [7], cache });
        const after = await model.kvMemoryStats();
        // Copying the cache into a wider decode buffer would add a whole cache (N · 512 B) to the peak.
        expect(after.peakLiveBytes - before.liveBytes).toBeLessThan((N * BYTES_PER_TOKEN) / 4);
        expect(next.cache.length).toBe(N + 1);
        // The prefill's handle is unchanged by the step that wrote past it.
        expect(await cache.readKeys(0)).toEqual(keys0);
        return next;
      } finally {
        cache.dispose();
      }
    })();
    step.cache.dispose();
    expect((await model.kvMemoryStats()).liveBytes).toBe(0);
  });

  it('gather({ consume: true }) frees the source while it builds the result: same entries, no allocator growth, source disposed', async () => {
    const keep = Int32Array.from({ length: 48 }, (_, i) => i * 7);
    const kept = Array.from({ length: 2 }, () => Array.from({ length: 2 }, () => keep));
    const a = (await model.forward({ inputIds: prompt, chunkSize: CHUNK })).cache;
    const copied = await a.gather(kept);
    const expected = [await copied.readKeys(1), await copied.readValues(0)];
    copied.dispose();
    const before = await model.kvMemoryStats({ resetPeak: true });
    const consumed = await a.gather(kept, { consume: true });
    const after = await model.kvMemoryStats();
    try {
      // The whole source and the whole result never coexist: the peak is the source's own live bytes.
      expect(after.peakLiveBytes).toBeLessThanOrEqual(before.liveBytes);
      expect(after.liveBytes).toBeLessThan(before.liveBytes / 4);
      expect([await consumed.readKeys(1), await consumed.readValues(0)]).toEqual(expected);
      await expect(a.readKeys(0)).rejects.toMatchObject({ code: 'DISPOSED' });
      a.dispose(); // a no-op, as the pipeline does after consuming
    } finally {
      consumed.dispose();
    }
    expect((await model.kvMemoryStats()).liveBytes).toBe(0);
  });

  it('a compressed generate never holds more KV than the full-KV generate of the same prompt, and frees it all', async () => {
    const options = { maxNewTokens: 16 };
    await model.kvMemoryStats({ resetPeak: true });
    const full = await createPipeline({ target: model, prefillChunkSize: CHUNK }).generate({ inputIds: prompt }, options);
    const fullStats = await model.kvMemoryStats({ resetPeak: true });
    const compressed = await createPipeline({ target: model, cachePolicy: keepLast(32), budget: { tokens: 32 }, prefillChunkSize: CHUNK }).generate({ inputIds: prompt }, options);
    const compressedStats = await model.kvMemoryStats();
    expect(full.kvBytes.afterPrefill).toBe(N * BYTES_PER_TOKEN);
    // 32 kept + the last prompt token re-run over the compacted cache (ALGORITHMS.md SpecKV step 5).
    expect(compressed.kvBytes.afterPrefill).toBe(33 * BYTES_PER_TOKEN);
    expect(compressedStats.peakLiveBytes).toBeLessThanOrEqual(fullStats.peakLiveBytes);
    expect(fullStats.liveBytes).toBe(0);
    expect(compressedStats.liveBytes).toBe(0);
  });

  it('an aborted prefill returns its arrays and the model stays usable with the same tokens', async () => {
    const before = await model.generate({ inputIds: prompt.slice(0, 100) }, { maxNewTokens: 4 });
    const controller = new AbortController();
    const aborted = model.forward({
      inputIds: prompt,
      chunkSize: CHUNK,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.completed >= 2 * CHUNK) controller.abort();
      },
    });
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    expect((await model.kvMemoryStats()).liveBytes).toBe(0);
    const again = await model.generate({ inputIds: prompt.slice(0, 100) }, { maxNewTokens: 4 });
    expect(again.tokens).toEqual(before.tokens);
  });
});
