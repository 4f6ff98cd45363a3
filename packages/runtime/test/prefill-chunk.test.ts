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
