import { registerHeapTrimmer } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { KvPool } from '../src/kv-pool.js';
import { releaseBufferNow, releaseBytesNow } from '../src/release-bytes.js';
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

describe('releaseBufferNow', () => {
  it('frees an ArrayBuffer (every view on it empty afterwards) and reports its size', () => {
    const buffer = new ArrayBuffer(4096);
    const view = new Float32Array(buffer, 64, 8);
    expect(releaseBufferNow(buffer)).toBe(4096);
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
  });

  it('leaves a SharedArrayBuffer alone', () => {
    const shared = new SharedArrayBuffer(64);
    expect(releaseBufferNow(shared)).toBe(0);
    expect(shared.byteLength).toBe(64);
  });
});

// The KV pool keeps freed buffers for reuse up to its limit; what it lets go is freed at once (a busy worker's
// GC runs when its JS heap asks, not when its KV buffers pile up).
describe('KvPool frees the buffers it stops keeping', () => {
  const MiB = 2 ** 20;

  it('over its limit, the oldest freed buffer is released now; the ones kept are reused', () => {
    const pool = new KvPool(4, 16, 2 * MiB);
    pool.keepLiveBytes = false;
    const arrays = [0, 1, 2].map(() => pool.alloc(MiB / 4, false)); // 1 MiB each, exactly
    const buffers = arrays.map((a) => a.buffer);
    for (const a of arrays) pool.release(a);
    // 3 MiB freed, 2 MiB kept: the first one freed went back.
    expect(buffers.map((b) => b.byteLength)).toEqual([0, MiB, MiB]);
    expect(pool.stats().pooledBytes).toBe(2 * MiB);
    expect(pool.alloc(MiB / 4, false).buffer).toBe(buffers[1]);
  });

  it('dropFree releases every kept buffer', () => {
    const pool = new KvPool(2, 16, 8 * MiB);
    const arrays = [pool.alloc(1000), pool.alloc(5000)];
    const buffers = arrays.map((a) => a.buffer);
    for (const a of arrays) pool.release(a);
    expect(pool.stats().pooledBytes).toBeGreaterThan(0);
    pool.dropFree();
    expect(buffers.map((b) => b.byteLength)).toEqual([0, 0]);
    expect(pool.stats()).toMatchObject({ pooledBytes: 0, liveBytes: 0 });
  });

  it('a buffer still held (retained by a second cache) is neither pooled nor released', () => {
    const pool = new KvPool(4, 16, 0);
    const a = pool.alloc(256, false);
    pool.retain(a);
    pool.release(a);
    expect(a.length).toBe(256);
    pool.release(a);
    expect(a.length).toBe(0);
  });
});
