import { registerHeapTrimmer } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { releaseBytesNow } from '../src/release-bytes.js';
import { TINY_LLAMA } from './helpers.js';

// `LoadModelOptions.trimHeap`: the worker reports when it freed a lot (session made, prefill of ≥ 64 tokens)
// and the model asks @draft/core's registered heap trimmer to return it. A counting trimmer stands in for
// @draft/cuda's malloc_trim (whose effect on RSS @draft/cuda's own test measures).
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('heap trims after the worker frees memory', () => {
  let calls = 0;
  let unregister: () => void;
  beforeAll(() => {
    unregister = registerHeapTrimmer({
      name: 'counting',
      trim: () => {
        calls++;
        return { trimmed: true };
      },
    });
  });
  afterAll(() => unregister());

  async function callsSettle(): Promise<number> {
    let last = -1;
    while (last !== calls) {
      last = calls;
      await sleep(30);
    }
    return calls;
  }

  it('trims after loading and after a prefill, not after decode steps; counts them per model', async () => {
    const start = await callsSettle();
    const model = await loadModel(TINY_LLAMA, { threads: 1 });
    try {
      const afterLoad = await callsSettle();
      expect(afterLoad - start).toBe(1);
      const prompt = Array.from({ length: 80 }, (_, i) => 4 + ((i * 37) % 200));
      const prefill = await model.forward({ inputIds: prompt });
      const afterPrefill = await callsSettle();
      expect(afterPrefill - afterLoad).toBe(1);
      // A short prompt and decode steps free too little to ask.
      const short = await model.forward({ inputIds: prompt.slice(0, 10) });
      let cache = prefill.cache;
      for (let i = 0; i < 5; i++) cache = (await model.forward({ inputIds: [7 + i], cache })).cache;
      expect(await callsSettle()).toBe(afterPrefill);
      expect((await model.sessionMemoryStats()).heapTrims).toBe(2);
      short.cache.dispose();
    } finally {
      await model.dispose();
    }
  });

  it('trimHeap: false never asks', async () => {
    const start = await callsSettle();
    const model = await loadModel(TINY_LLAMA, { threads: 1, trimHeap: false });
    try {
      await model.forward({ inputIds: Array.from({ length: 80 }, (_, i) => 5 + i) });
      expect(await callsSettle()).toBe(start);
      expect((await model.sessionMemoryStats()).heapTrims).toBe(0);
    } finally {
      await model.dispose();
    }
  });
});

describe('releaseBytesNow', () => {
  it('frees a buffer that owns its memory (detached afterwards) and reports its size', () => {
    const bytes = new Uint8Array(1 << 20).fill(3);
    expect(releaseBytesNow(bytes)).toBe(1 << 20);
    expect(bytes.byteLength).toBe(0);
  });

  it('leaves views and pooled Node buffers alone', () => {
    const whole = new Uint8Array(4096).fill(1);
    const view = whole.subarray(16, 64);
    expect(releaseBytesNow(view)).toBe(0);
    expect(whole.byteLength).toBe(4096);
    expect(view.byteLength).toBe(48);
    const pooled = Buffer.from('a small buffer from the shared pool');
    const before = pooled.toString();
    expect(releaseBytesNow(pooled)).toBe(0);
    expect(pooled.toString()).toBe(before);
  });
});
