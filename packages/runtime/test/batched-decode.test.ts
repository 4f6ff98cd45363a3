import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendColumn, groupByLength, packedMask, packLayer, paddedPastLength, unpackLayerRow } from '../src/batched-decode.js';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '../src/index.js';
import { argmax, maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA, TORCH_LLAMA } from './helpers.js';

describe('batched-decode layout (by hand)', () => {
  const shape = { numKvHeads: 2, headDim: 1 };
  // Row 0: length 1, heads [10] [20]; row 1: length 3, heads [1 2 3] [4 5 6]. d = 1 keeps it readable.
  const row0 = Float32Array.from([10, 20]);
  const row1 = Float32Array.from([1, 2, 3, 4, 5, 6]);

  it('pads every row to the longest past, zeroes the padding, and masks it', () => {
    expect(paddedPastLength([1, 3])).toBe(3);
    const out = new Float32Array(2 * 2 * 3).fill(99);
    packLayer([row0, row1], [1, 3], 3, shape, out);
    // [B=2, H=2, L=3, d=1]: row 0 head 0 = 10 0 0, head 1 = 20 0 0; row 1 unchanged.
    expect(Array.from(out)).toEqual([10, 0, 0, 20, 0, 0, 1, 2, 3, 4, 5, 6]);
    const mask = packedMask([1, 3], 3);
    expect(Array.from(mask)).toEqual([1, 0, 0, 1, 1, 1]);
    // After a step each row has one more real column.
    expect(Array.from(appendColumn(mask, 2, 3))).toEqual([1, 0, 0, 1, 1, 1, 1, 1]);
  });

  it("copies a row's real slots out of a batch tensor, skipping its padding", () => {
    // [B=2, H=2, T=4, d=1] after one step: the last slot of each head is the new token.
    const present = Float32Array.from([10, 0, 0, 11, 20, 0, 0, 21, 1, 2, 3, 7, 4, 5, 6, 8]);
    const mask = Uint8Array.from([1, 0, 0, 1, 1, 1, 1, 1]);
    const a = new Float32Array(4);
    unpackLayerRow(present, mask, 0, 4, shape, a);
    expect(Array.from(a)).toEqual([10, 11, 20, 21]);
    const b = new Float32Array(8);
    unpackLayerRow(present, mask, 1, 4, shape, b);
    expect(Array.from(b)).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
  });

  it('groups lengths so a short cache is not padded to a long one', () => {
    // Sorted 100, 200, 250, 256 (all ≤ 2 × 100 + 64 = 264) | 2048, 2100 (≤ 2 × 2048 + 64).
    expect(groupByLength([2048, 256, 100, 2100, 250, 200])).toEqual([[2, 5, 4, 1], [0, 3]]);
    // 300 > 264 starts a new group.
    expect(groupByLength([100, 300])).toEqual([[0], [1]]);
    // A token cap: rows × (longest + 1) ≤ 300 allows two rows of 100 but not three.
    expect(groupByLength([100, 100, 100], 300)).toEqual([[0, 1], [2]]);
    expect(groupByLength([5])).toEqual([[0]]);
  });
});

/** Prompts of different lengths (token ids inside every fixture's vocabulary). */
const prompts = [
  [5, 17, 33, 2, 9],
  Array.from({ length: 23 }, (_, i) => (i * 7 + 3) % 200),
  Array.from({ length: 40 }, (_, i) => (i * 13 + 11) % 250),
  [42, 43, 44, 45, 46, 47, 48, 49, 50],
];

/** Every second entry of every (layer, KV head): a compressed cache with positions that have gaps. */
function everyOther(cache: OrtKvCache, numLayers: number, numKvHeads: number): Promise<OrtKvCache> {
  const n = cache.length;
  const idx = Int32Array.from({ length: Math.ceil(n / 2) }, (_, i) => 2 * i);
  return cache.gather(Array.from({ length: numLayers }, () => Array.from({ length: numKvHeads }, () => idx)));
}

for (const [name, dir] of [
  ['torch-exported llama', TORCH_LLAMA],
  ["the project's llama writer", TINY_LLAMA],
] as const) {
  describe(`batched decode on ${name}`, () => {
    let model: OrtCausalLM;
    beforeAll(async () => {
      model = await loadModel(dir, { threads: 1 });
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('concurrent steps over caches of different lengths (one compressed) equal the steps run alone', async () => {
      expect(model.graph.maxDecodeBatch).toBe(8);
      const caches: OrtKvCache[] = [];
      for (const p of prompts) caches.push((await model.forward({ inputIds: p })).cache);
      caches[2] = await everyOther(caches[2], model.info.numLayers, model.info.numKvHeads);
      const next = [7, 8, 9, 10];
      const alone = [];
      for (let i = 0; i < caches.length; i++) alone.push(await model.forward({ inputIds: [next[i]], cache: caches[i] }));
      const before = await model.decodeBatchStats();
      const together = await Promise.all(caches.map((cache, i) => model.forward({ inputIds: [next[i]], cache })));
      const after = await model.decodeBatchStats();
      // Messages reach the worker thread as they are posted, so the first may start alone; the rest batch.
      expect(after.batches - before.batches).toBeGreaterThanOrEqual(1);
      expect(after.rows - before.rows).toBeGreaterThanOrEqual(3);
      // Each step is counted once, however it ran.
      expect(after.rows - before.rows).toBeLessThanOrEqual(caches.length);
      for (let i = 0; i < caches.length; i++) {
        expect(maxAbsDiff(together[i].logits, alone[i].logits)).toBeLessThan(1e-4);
        expect(together[i].cache.length).toBe(caches[i].length + 1);
        expect(together[i].cache.nextPosition).toBe(alone[i].cache.nextPosition);
        for (const layer of [0, model.info.numLayers - 1]) {
          expect(maxAbsDiff(await together[i].cache.readKeys(layer), await alone[i].cache.readKeys(layer))).toBeLessThan(1e-5);
          expect(maxAbsDiff(await together[i].cache.readValues(layer), await alone[i].cache.readValues(layer))).toBeLessThan(1e-5);
        }
        // A batched cache goes on like any other: its next step alone matches the sequential chain.
        const a = await model.forward({ inputIds: [3], cache: together[i].cache });
        const b = await model.forward({ inputIds: [3], cache: alone[i].cache });
        expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
        for (const r of [a, b, together[i], alone[i]]) r.cache.dispose();
      }
      for (const c of caches) c.dispose();
    });

    it('concurrent generate calls give the tokens each gives alone, and decode in batches', async () => {
      const alone = [];
      for (const p of prompts) alone.push((await model.generate({ inputIds: p }, { maxNewTokens: 12 })).tokens);
      const before = await model.decodeBatchStats();
      const together = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 12 })));
      const after = await model.decodeBatchStats();
      expect(together.map((r) => r.tokens)).toEqual(alone);
      // Prefills run one at a time; the decode steps that meet in the queue go together.
      expect(after.batches).toBeGreaterThan(before.batches);
      expect((after.rows - before.rows) / (after.batches - before.batches)).toBeGreaterThanOrEqual(2);
    });

    it('an aborted sequence leaves the others of its batch intact', async () => {
      const alone = [];
      for (const p of prompts) alone.push((await model.generate({ inputIds: p }, { maxNewTokens: 10 })).tokens);
      const controller = new AbortController();
      let seen = 0;
      const runs = prompts.map((p, i) =>
        model.generate(
          { inputIds: p },
          {
            maxNewTokens: 10,
            ...(i === 1
              ? {
                  signal: controller.signal,
                  onToken: () => {
                    if (++seen === 3) controller.abort();
                  },
                }
              : {}),
          },
        ),
      );
      const settled = await Promise.allSettled(runs);
      expect(settled[1].status).toBe('rejected');
      expect((settled[1] as PromiseRejectedResult).reason.code).toBe('ABORTED');
      for (const i of [0, 2, 3]) expect((settled[i] as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(alone[i]);
      // And the model still works.
      expect((await model.generate({ inputIds: prompts[1] }, { maxNewTokens: 10 })).tokens).toEqual(alone[1]);
    });
  });
}

describe('batched decode settings', () => {
  it('maxDecodeBatch: 1 turns batching off (same tokens, no batches)', async () => {
    const model = await loadModel(TINY_LLAMA, { threads: 1, maxDecodeBatch: 1 });
    try {
      expect(model.graph.maxDecodeBatch).toBe(1);
      const together = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 6 })));
      expect((await model.decodeBatchStats()).batches).toBe(0);
      for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual((await model.generate({ inputIds: prompts[i] }, { maxNewTokens: 6 })).tokens);
    } finally {
      await model.dispose();
    }
  });

  it('a model loaded with raggedCache (key bias inputs) batches its unpadded caches, and stays right', async () => {
    const model = await loadModel(TINY_LLAMA, { threads: 1, raggedCache: true });
    try {
      const alone = [];
      for (const p of prompts) alone.push((await model.generate({ inputIds: p }, { maxNewTokens: 8 })).tokens);
      const together = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 8 })));
      expect(together.map((r) => r.tokens)).toEqual(alone);
      expect((await model.decodeBatchStats()).batches).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });

  it('fused GroupQueryAttention graphs step one sequence at a time, and stay right', async () => {
    const model = await loadModel(TINY_QWEN2_GQA, { threads: 1 });
    try {
      expect(model.graph.maxDecodeBatch).toBe(1);
      const together = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 6 })));
      for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual((await model.generate({ inputIds: prompts[i] }, { maxNewTokens: 6 })).tokens);
      expect((await model.decodeBatchStats()).batches).toBe(0);
    } finally {
      await model.dispose();
    }
  });

  it('rejects a bad maxDecodeBatch with a typed error', async () => {
    for (const bad of [0, 1.5, 1000]) {
      await expect(loadModel(TINY_LLAMA, { maxDecodeBatch: bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: expect.anything() });
    }
  });

  it('argmax of a batched step matches greedy decoding', async () => {
    const model = await loadModel(TORCH_LLAMA, { threads: 1 });
    try {
      const first = await Promise.all(prompts.map((p) => model.forward({ inputIds: p })));
      const steps = await Promise.all(first.map((f) => model.forward({ inputIds: [argmax(f.logits)], cache: f.cache })));
      const greedy = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 2 })));
      for (let i = 0; i < steps.length; i++) expect(argmax(steps[i].logits)).toBe(greedy[i].tokens[1]);
    } finally {
      await model.dispose();
    }
  });
});
