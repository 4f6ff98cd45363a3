// The default prefill chunk keeps one chunk's float32 scores (heads × chunk × context) within 32 MiB.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PREFILL_CHUNK, defaultPrefillChunk, PREFILL_SCORE_BUDGET_BYTES } from '../src/index.js';

describe('defaultPrefillChunk', () => {
  it('is the largest multiple of 64 within the score budget, between 64 and 512', () => {
    expect(PREFILL_SCORE_BUDGET_BYTES).toBe(33554432);
    expect(DEFAULT_PREFILL_CHUNK).toBe(512);
    // 8 heads × 2048 × 4 bytes = 64 KiB per chunk row → 512 rows fill 32 MiB exactly.
    expect(defaultPrefillChunk(2048, 0, 8)).toBe(512);
    expect(defaultPrefillChunk(500, 0, 8)).toBe(512);
    // 4096 → 256 rows, 8192 → 128.
    expect(defaultPrefillChunk(4096, 0, 8)).toBe(256);
    expect(defaultPrefillChunk(8192, 0, 8)).toBe(128);
    // The cached prefix counts: 1000 new after 7192 cached is an 8192 context.
    expect(defaultPrefillChunk(1000, 7192, 8)).toBe(128);
    // 3000 → 32 MiB / 96000 B = 349.5 rows → 320 (5 × 64).
    expect(defaultPrefillChunk(3000, 0, 8)).toBe(320);
    // Never below 64, however long: 32 heads × 131072 would allow 2 rows.
    expect(defaultPrefillChunk(131072, 0, 32)).toBe(64);
  });
});

describe('defaultPrefillChunk with a budget', () => {
  it('scales the chunk with the budget: 8 MiB at 8192 context and 4 heads → 64 rows', () => {
    // 4 heads × 8192 × 4 bytes = 128 KiB per row: 8 MiB / 128 KiB = 64 rows; 32 MiB → 256.
    expect(defaultPrefillChunk(8192, 0, 4, 8 * 2 ** 20)).toBe(64);
    expect(defaultPrefillChunk(8192, 0, 4)).toBe(256);
    // 16 MiB at 2048 context and 8 heads: 64 KiB per row → 256 rows.
    expect(defaultPrefillChunk(2048, 0, 8, 16 * 2 ** 20)).toBe(256);
  });
});

describe('LoadModelOptions.prefillScoreBudgetBytes', () => {
  it('prefills in the smaller chunks it implies, with the same logits; a bad budget is a typed error', async () => {
    const { loadModel } = await import('../src/index.js');
    const { TINY_LLAMA } = await import('./helpers.js');
    const prompt = Array.from({ length: 300 }, (_, i) => 4 + ((i * 37) % 200));
    const small = await loadModel(TINY_LLAMA, { threads: 1, prefillScoreBudgetBytes: 1 });
    const plain = await loadModel(TINY_LLAMA, { threads: 1 });
    try {
      const steps = (model: typeof plain) => {
        const seen: number[] = [];
        return model.forward({ inputIds: prompt, onProgress: (p) => seen.push(p.completed) }).then((r) => ({ r, seen }));
      };
      const a = await steps(small);
      const b = await steps(plain);
      // A 1-byte budget floors at 64-token chunks; the default fits the 300 tokens in one chunk.
      expect(a.seen).toEqual([64, 128, 192, 256, 300]);
      expect(b.seen).toEqual([300]);
      let worst = 0;
      for (let i = 0; i < a.r.logits.length; i++) worst = Math.max(worst, Math.abs(a.r.logits[i] - b.r.logits[i]));
      expect(worst).toBeLessThan(1e-4);
      await expect(loadModel(TINY_LLAMA, { prefillScoreBudgetBytes: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { argument: 'prefillScoreBudgetBytes', value: 0 } });
      // The models loaded before the error still work.
      expect((await small.forward({ inputIds: prompt.slice(0, 8) })).logits.length).toBeGreaterThan(0);
    } finally {
      await small.dispose();
      await plain.dispose();
    }
  });
});
