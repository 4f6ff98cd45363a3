// loadModel({ decodeEngine: 'native', prefillEngine: 'native' }): prefills (whole, after a cache, and layer by
// layer through prefillSelect) run on the registered engine and the ORT session is released. A plain-JS engine
// (fixtures/js-decoder.mjs) stands in for @draft/cuda's addon (whose kernel has its own tests against a float64
// reference): logits, captured queries, caches and tokens must be ORT's; a compressed prefill never allocates a
// full all-layer KV; refusals are typed.
import { fileURLToPath } from 'node:url';
import { AbortError, createPipeline, defineCachePolicy, InvalidArgumentError, registerDecodeEngine, UnsupportedCapabilityError } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { argmax, MODELS, maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA } from './helpers.js';

const JS_ENGINE = fileURLToPath(new URL('./fixtures/js-decoder.mjs', import.meta.url));
const STEP_ONLY_ENGINE = fileURLToPath(new URL('./fixtures/js-decoder-step-only.mjs', import.meta.url));
const PREFILL_OFF_ENGINE = fileURLToPath(new URL('./fixtures/js-decoder-prefill-off.mjs', import.meta.url));
// random-target: 4 layers, 2 KV heads, head dim 16, float32: one layer's keys + values take 256 bytes per token.
const RANDOM_TARGET = `${MODELS}fixtures/random-target`;
const LAYER_BYTES_PER_TOKEN = 256;
const LAYERS = 4;
const N = 600;
const prompt = Array.from({ length: N }, (_, i) => 6 + ((i * 37) % 400));

function spreadLayer(n: number, heads: number, budget: number, layer: number): Int32Array[] {
  return Array.from({ length: heads }, (_, h) => Int32Array.from({ length: budget }, (_, j) => Math.floor(((j + 0.5) * (n - 1)) / budget + layer + h) % (n - 1)).sort());
}
const spread = (budget: number) =>
  defineCachePolicy({ type: 'spread', queryWindow: 8, selectLayer: (ctx, layer) => spreadLayer(ctx.promptLength, ctx.numKvHeads, budget, layer) });

describe('native prefill engine', () => {
  let unregister: () => void;
  let native: OrtCausalLM;
  let ort: OrtCausalLM;
  beforeAll(async () => {
    unregister = registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE });
    native = await loadModel(RANDOM_TARGET, { threads: 1, decodeEngine: 'native', prefillEngine: 'native' });
    ort = await loadModel(RANDOM_TARGET, { threads: 1 });
  });
  afterAll(async () => {
    await native?.dispose();
    await ort?.dispose();
    unregister?.();
  });

  it('says so in graph.prefillEngine and offers prefillSelect', () => {
    expect(native.graph.prefillEngine).toBe('js-reference');
    expect(native.graph.decodeEngine).toBe('js-reference');
    expect(native.graph.layerwise).toBe(true);
    expect(native.prefillSelect).toBeTypeOf('function');
    expect(ort.graph.prefillEngine).toBe('ort');
    expect(native.capabilities.raggedKvHeads).toBe(true);
  });

  it("gives ORT's logits (every row), window queries and cache, from empty and after a cache, then ORT's greedy tokens", async () => {
    const head = prompt.slice(0, 70);
    const a = await native.forward({ inputIds: head, captureQueries: 5, logits: 'all' });
    const b = await ort.forward({ inputIds: head, captureQueries: 5, logits: 'all' });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
    for (let l = 0; l < LAYERS; l++) {
      expect(maxAbsDiff(a.queries?.[l] ?? [], b.queries?.[l] ?? [1])).toBeLessThan(1e-4);
      expect(maxAbsDiff(await a.cache.readKeys(l), await b.cache.readKeys(l))).toBeLessThan(1e-4);
      expect(maxAbsDiff(await a.cache.readValues(l), await b.cache.readValues(l))).toBeLessThan(1e-4);
    }
    // A continuation over the cache (positions 70…89).
    const tail = prompt.slice(70, 90);
    const c = await native.forward({ inputIds: tail, cache: a.cache });
    const d = await ort.forward({ inputIds: tail, cache: b.cache });
    expect(c.cache.length).toBe(90);
    expect(maxAbsDiff(c.logits, d.logits)).toBeLessThan(1e-4);
    const x = await native.generate({ inputIds: head }, { maxNewTokens: 12 });
    const y = await ort.generate({ inputIds: head }, { maxNewTokens: 12 });
    expect(x.tokens).toEqual(y.tokens);
    expect(argmax(c.logits)).toBe(argmax(d.logits));
    for (const r of [a, b, c, d]) r.cache.dispose();
  });

  it('keeps what the selection names layer by layer, as a whole prefill + gather does, without a full all-layer KV', async () => {
    const budget = 32;
    const seen: number[] = [];
    await native.kvMemoryStats({ resetPeak: true });
    const { cache } = await (native.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({
      inputIds: prompt,
      captureQueries: 8,
      selectLayer: async ({ layer, keys, queries }) => {
        seen.push(layer);
        expect(keys.length).toBe(2 * N * 16);
        expect(queries.length).toBe(8 * 8 * 16);
        return spreadLayer(N, 2, budget, layer);
      },
    });
    const peak = (await native.kvMemoryStats()).peakLiveBytes;
    expect(seen).toEqual([0, 1, 2, 3]);
    // One layer's full KV (with the allocator's room: max(32, n/16) more tokens, rounded up to 32) and the kept
    // entries of the layers before it.
    expect(peak).toBeLessThanOrEqual(672 * LAYER_BYTES_PER_TOKEN + LAYERS * (2 * budget + 32) * LAYER_BYTES_PER_TOKEN);
    expect(peak).toBeLessThan(N * LAYERS * LAYER_BYTES_PER_TOKEN);
    const full = await ort.forward({ inputIds: prompt, captureQueries: 8 });
    const gathered = await full.cache.gather(Array.from({ length: LAYERS }, (_, l) => spreadLayer(N, 2, budget, l)));
    for (let l = 0; l < LAYERS; l++) expect(maxAbsDiff(await cache.readKeys(l), await gathered.readKeys(l))).toBeLessThan(1e-4);
    const a = await native.forward({ inputIds: [5], cache });
    const b = await ort.forward({ inputIds: [5], cache: gathered });
    expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
    for (const c of [cache, full.cache, gathered, a.cache, b.cache]) c.dispose();
    // Through the pipeline: the same tokens and kept counts as the ORT whole-graph engine.
    const x = await createPipeline({ target: native, cachePolicy: spread(budget), budget: { tokens: budget } }).generate({ inputIds: prompt }, { maxNewTokens: 6 });
    const y = await createPipeline({ target: ort, cachePolicy: spread(budget), budget: { tokens: budget } }).generate({ inputIds: prompt }, { maxNewTokens: 6 });
    expect(x.tokens).toEqual(y.tokens);
    expect(x.usage.keptKvTokens).toEqual(y.usage.keptKvTokens);
  });

  it('keeps different counts per layer and KV head exactly (packed): byteSize is Σ kept, and steps, branches and gathers give the padded ORT cache’s logits', async () => {
    const ragged = await loadModel(RANDOM_TARGET, { threads: 1, raggedCache: true });
    try {
      // Counts differ per layer and head: 20 + 7·layer + 5·head.
      const keep = (layer: number) => Array.from({ length: 2 }, (_, h) => spreadLayer(N, 1, 20 + 7 * layer + 5 * h, layer + h)[0]);
      const kept = Array.from({ length: LAYERS }, (_, l) => keep(l));
      const { cache } = await (native.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({ inputIds: prompt, captureQueries: 4, selectLayer: async ({ layer }) => keep(layer) });
      const entries = kept.flat().reduce((a, idx) => a + idx.length, 0);
      expect(cache.byteSize()).toBe(2 * entries * 16 * 4);
      const full = await ragged.forward({ inputIds: prompt });
      const padded = await full.cache.gather(kept);
      full.cache.dispose();
      // Padding: every (layer, head) at the largest count (20 + 21 + 5 = 46).
      expect(padded.byteSize()).toBe(2 * LAYERS * 2 * 46 * 16 * 4);
      expect(cache.lengths).toEqual(padded.lengths);
      // Eight steps: in place after the first (the chain's writer), same logits as the padded ORT cache.
      let a = cache;
      let b = padded;
      const chain = [a];
      for (let i = 0; i < 8; i++) {
        const x = await native.forward({ inputIds: [7 + i], cache: a });
        const y = await ragged.forward({ inputIds: [7 + i], cache: b });
        expect(maxAbsDiff(x.logits, y.logits)).toBeLessThan(1e-4);
        expect(x.cache.byteSize()).toBe(2 * (entries + 8 * (i + 1)) * 16 * 4);
        chain.push(x.cache);
        if (b !== padded) b.dispose();
        a = x.cache;
        b = y.cache;
      }
      // A branch from the middle of the chain (its arrays now written past its rows by later steps): its own logits.
      const branch = await native.forward({ inputIds: [99], cache: chain[3] });
      const three = await ragged.forward({ inputIds: [7, 8, 9], cache: padded });
      const reference = await ragged.forward({ inputIds: [99], cache: three.cache });
      three.cache.dispose();
      expect(maxAbsDiff(branch.logits, reference.logits)).toBeLessThan(1e-4);
      // Other operations read the padded form: a gather of the packed cache equals the padded cache's.
      const pick = Array.from({ length: LAYERS }, (_, l) => Array.from({ length: 2 }, (_, h) => Int32Array.of(0, 3, kept[l][h].length + 2)));
      const g1 = await a.gather(pick);
      const g2 = await b.gather(pick);
      for (let l = 0; l < LAYERS; l++) expect(maxAbsDiff(await g1.readKeys(l), await g2.readKeys(l))).toBeLessThan(1e-4);
      for (const c of [...chain, branch.cache, reference.cache, padded, b, g1, g2]) c.dispose();
      expect((await native.kvMemoryStats()).liveBytes).toBe(0);
    } finally {
      await ragged.dispose();
    }
  });

  it('steps a full, a selected and a packed cache together in one native call, each with the logits ORT gives it alone', async () => {
    const ragged = await loadModel(RANDOM_TARGET, { threads: 1, raggedCache: true });
    try {
      const uniform = Array.from({ length: LAYERS }, (_, l) => spreadLayer(120, 2, 24, l));
      const counts = (l: number) => Array.from({ length: 2 }, (_, h) => spreadLayer(N, 1, 20 + 7 * l + 5 * h, l + h)[0]);
      const ragKept = Array.from({ length: LAYERS }, (_, l) => counts(l));
      // Ours: a native prefill's cache (laid out for in-place decode), a gathered one, a packed one (AdaKV-like).
      const full = await native.forward({ inputIds: prompt.slice(0, 100) });
      const selected = await (await native.forward({ inputIds: prompt.slice(0, 120) })).cache.gather(uniform, { consume: true });
      const { cache: packed } = await (native.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({ inputIds: prompt, captureQueries: 4, selectLayer: async ({ layer }) => counts(layer) });
      // ORT's, each stepped alone.
      const fullRef = await ort.forward({ inputIds: prompt.slice(0, 100) });
      const selectedRef = await (await ort.forward({ inputIds: prompt.slice(0, 120) })).cache.gather(uniform, { consume: true });
      const paddedSource = await ragged.forward({ inputIds: prompt });
      const paddedRef = await paddedSource.cache.gather(ragKept, { consume: true });
      const steps = 6;
      const loop = async (model: OrtCausalLM, start: Awaited<ReturnType<OrtCausalLM['forward']>>['cache']) => {
        const logits: Float32Array[] = [];
        let cache = start;
        for (let i = 0; i < steps; i++) {
          const step = await model.forward({ inputIds: [11 + i], cache });
          if (cache !== start) cache.dispose();
          cache = step.cache;
          logits.push(step.logits);
        }
        return { logits, cache };
      };
      const before = await native.decodeBatchStats();
      const ours = await Promise.all([loop(native, full.cache), loop(native, selected), loop(native, packed)]);
      const after = await native.decodeBatchStats();
      const theirs = [await loop(ort, fullRef.cache), await loop(ort, selectedRef), await loop(ragged, paddedRef)];
      for (let k = 0; k < 3; k++) for (let i = 0; i < steps; i++) expect(maxAbsDiff(ours[k].logits[i], theirs[k].logits[i])).toBeLessThan(1e-4);
      // Rows of every kind share calls: more than two rows per call on average (three when they arrive together).
      expect(after.batches).toBeGreaterThan(before.batches);
      expect((after.rows - before.rows) / (after.batches - before.batches)).toBeGreaterThan(2);
      expect(after.nativeSteps - before.nativeSteps).toBe(3 * steps);
      // The stepped caches read back as ORT's (the one-row in-place layout moved back to dense in place).
      for (let l = 0; l < LAYERS; l++) {
        expect(maxAbsDiff(await ours[0].cache.readKeys(l), await theirs[0].cache.readKeys(l))).toBeLessThan(1e-4);
        expect(maxAbsDiff(await ours[1].cache.readValues(l), await theirs[1].cache.readValues(l))).toBeLessThan(1e-4);
      }
      // …and decode on after the read.
      const a = await native.forward({ inputIds: [3], cache: ours[0].cache });
      const b = await ort.forward({ inputIds: [3], cache: theirs[0].cache });
      expect(maxAbsDiff(a.logits, b.logits)).toBeLessThan(1e-4);
      for (const c of [full.cache, selected, packed, fullRef.cache, selectedRef, paddedRef, ...ours.map((o) => o.cache), ...theirs.map((t) => t.cache), a.cache, b.cache]) c.dispose();
      expect((await native.kvMemoryStats()).liveBytes).toBe(0);
    } finally {
      await ragged.dispose();
    }
  });

  it('a step aborted while its batch forms fails alone (AbortError); the other rows step, and its cache stays usable', async () => {
    const starts = await Promise.all([prompt.slice(0, 50), prompt.slice(0, 60), prompt.slice(0, 70)].map((ids) => native.forward({ inputIds: ids })));
    const solo = [];
    for (const s of starts) solo.push(await ort.forward({ inputIds: [21], cache: (await ort.forward({ inputIds: prompt.slice(0, s.cache.length) })).cache }));
    // A long prefill keeps the worker busy while the steps queue behind it and the abort arrives, so the step is
    // cancelled before any batch takes it.
    const busy = native.forward({ inputIds: prompt });
    const controller = new AbortController();
    const steps = starts.map((s, i) => native.forward({ inputIds: [21], cache: s.cache, ...(i === 1 ? { signal: controller.signal } : {}) }));
    controller.abort();
    const settled = await Promise.allSettled(steps);
    (await busy).cache.dispose();
    expect(settled[1].status).toBe('rejected');
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(AbortError);
    for (const i of [0, 2]) {
      const step = (settled[i] as PromiseFulfilledResult<Awaited<ReturnType<OrtCausalLM['forward']>>>).value;
      expect(maxAbsDiff(step.logits, solo[i].logits)).toBeLessThan(1e-4);
      step.cache.dispose();
    }
    const again = await native.forward({ inputIds: [21], cache: starts[1].cache });
    expect(maxAbsDiff(again.logits, solo[1].logits)).toBeLessThan(1e-4);
    for (const c of [again.cache, ...starts.map((s) => s.cache), ...solo.map((s) => s.cache)]) c.dispose();
    expect((await native.kvMemoryStats()).liveBytes).toBe(0);
  });

  it('an abort between layers frees every array and the model stays usable', async () => {
    const before = await native.generate({ inputIds: prompt.slice(0, 40) }, { maxNewTokens: 4 });
    const controller = new AbortController();
    const aborted = native.prefillSelect?.({
      inputIds: prompt,
      captureQueries: 4,
      signal: controller.signal,
      selectLayer: async ({ layer }) => {
        if (layer === 1) controller.abort();
        return spreadLayer(N, 2, 16, layer);
      },
    });
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    expect((await native.kvMemoryStats()).liveBytes).toBe(0);
    const again = await native.generate({ inputIds: prompt.slice(0, 40) }, { maxNewTokens: 4 });
    expect(again.tokens).toEqual(before.tokens);
  });

  it('a cache disposed while a forward extends it still gives that forward its logits (the release waits for the run)', async () => {
    const head = prompt.slice(0, 300);
    const tail = prompt.slice(300, 340);
    const reference = await ort.forward({ inputIds: tail, cache: (await ort.forward({ inputIds: head })).cache });
    const base = await native.forward({ inputIds: head });
    // The extension awaits between layers; the release arrives meanwhile. Released arrays go back to the pool, and
    // the extension's next layers allocate arrays of the same size, so a release that did not wait would hand the
    // base's unread layers to the extension as its own output.
    const extended = native.forward({ inputIds: tail, cache: base.cache });
    base.cache.dispose();
    const r = await extended;
    expect(maxAbsDiff(r.logits, reference.logits)).toBeLessThan(1e-4);
    // The same with the release arriving while the run is under way (after its first layer).
    const again = await native.forward({ inputIds: head });
    const during = await native.forward({ inputIds: tail, cache: again.cache, onProgress: () => again.cache.dispose() });
    expect(again.cache.isDisposed).toBe(true);
    expect(maxAbsDiff(during.logits, reference.logits)).toBeLessThan(1e-4);
    for (const c of [r.cache, during.cache, reference.cache]) c.dispose();
    expect((await native.kvMemoryStats()).liveBytes).toBe(0);
  });
});

describe('native engine on a fused-attention (GroupQueryAttention) export', () => {
  // tiny-qwen2-gqa: 2 layers, 4 query / 2 KV heads of 16, q/k/v biases; ORT runs it through GroupQueryAttention,
  // which takes one past length for every layer and head, so its own caches cannot be ragged.
  const ids = Array.from({ length: 40 }, (_, i) => 6 + ((i * 37) % 400));
  it("decodes and prefills with ORT's tokens, and keeps exactly each head's entries (packed) with the logits of the same entries kept padded", async () => {
    const undo = registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE });
    const stepOnly = await loadModel(TINY_QWEN2_GQA, { threads: 1, decodeEngine: 'native' });
    const fused = await loadModel(TINY_QWEN2_GQA, { threads: 1, decodeEngine: 'native', prefillEngine: 'native' });
    const ortModel = await loadModel(TINY_QWEN2_GQA, { threads: 1 });
    try {
      expect(ortModel.graph.pattern).toBe('gqa');
      expect([stepOnly.graph.decodeEngine, fused.graph.prefillEngine]).toEqual(['js-reference', 'js-reference']);
      const reference = await ortModel.generate({ inputIds: ids }, { maxNewTokens: 10 });
      for (const model of [stepOnly, fused]) expect((await model.generate({ inputIds: ids }, { maxNewTokens: 10 })).tokens).toEqual(reference.tokens);
      expect(fused.capabilities.raggedKvHeads).toBe(true);
      // Counts differ per layer and head: packed, byteSize Σ kept × d × 2 × 4.
      const kept = [
        [Int32Array.from([0, 1, 4, 9, 13, 17, 20, 25, 37, 38, 39]), Int32Array.from([0, 2, 3, 38, 39])],
        [Int32Array.from([1, 5, 39]), Int32Array.from({ length: 12 }, (_, i) => 28 + i)],
      ];
      const { cache: packed } = await (fused.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({ inputIds: ids, captureQueries: 4, selectLayer: async ({ layer }) => kept[layer] });
      expect(packed.byteSize()).toBe((11 + 5 + 3 + 12) * 16 * 2 * 4);
      // The kept rows are ORT's rows at those positions.
      const full = await ortModel.forward({ inputIds: ids });
      for (let l = 0; l < 2; l++) {
        const theirs = await full.cache.readKeys(l);
        const ours = await packed.readSlots(l, 'key');
        for (let h = 0; h < 2; h++) {
          kept[l][h].forEach((slot, i) => {
            const at = (h * 40 + slot) * 16;
            expect(maxAbsDiff(ours.data.subarray((h * ours.slots + i) * 16, (h * ours.slots + i + 1) * 16), theirs.subarray(at, at + 16))).toBeLessThan(1e-4);
          });
        }
      }
      // Steps on the packed cache give the logits of the same entries kept padded and masked per head.
      const padded = await (await fused.forward({ inputIds: ids })).cache.gather(kept, { consume: true });
      let a = packed;
      let b = padded;
      for (let i = 0; i < 5; i++) {
        const x = await fused.forward({ inputIds: [9 + i], cache: a });
        const y = await fused.forward({ inputIds: [9 + i], cache: b });
        expect(maxAbsDiff(x.logits, y.logits)).toBeLessThan(1e-5);
        if (a !== packed) a.dispose();
        if (b !== padded) b.dispose();
        a = x.cache;
        b = y.cache;
      }
      for (const c of [packed, padded, a, b, full.cache]) c.dispose();
      expect((await fused.kvMemoryStats()).liveBytes).toBe(0);
    } finally {
      await Promise.all([stepOnly.dispose(), fused.dispose(), ortModel.dispose()]);
      undo();
    }
  });
});

describe('native prefill refusals', () => {
  it('needs the native decode engine, a known value, and an engine with a prefill', async () => {
    const noDecode = await loadModel(TINY_LLAMA, { threads: 1, prefillEngine: 'native' }).catch((e: unknown) => e);
    expect(noDecode).toBeInstanceOf(InvalidArgumentError);
    expect((noDecode as InvalidArgumentError).argument).toBe('prefillEngine');
    const bad = await loadModel(TINY_LLAMA, { threads: 1, prefillEngine: 'gpu' as never }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    // An engine whose steps are right and whose prefill is not: the load-time check runs both.
    const undoOff = registerDecodeEngine({ name: 'prefill-off', module: PREFILL_OFF_ENGINE });
    try {
      const wrong = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native', prefillEngine: 'native' }).catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(UnsupportedCapabilityError);
      expect((wrong as UnsupportedCapabilityError).capability).toBe('nativePrefill');
      expect((wrong as Error).message).toMatch(/cannot prefill with the native engine 'prefill-off': its prefill's logits differ from the graph's/);
      const stepsOnly = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native' });
      expect(stepsOnly.graph.decodeEngine).toBe('prefill-off');
      await stepsOnly.dispose();
    } finally {
      undoOff();
    }
    const undo = registerDecodeEngine({ name: 'step-only', module: STEP_ONLY_ENGINE });
    try {
      const error = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native', prefillEngine: 'native' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect((error as UnsupportedCapabilityError).capability).toBe('nativePrefill');
      expect((error as Error).message).toContain("'step-only' has no prefill");
      // The same engine decodes when the prefill stays with ORT.
      const model = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native' });
      expect(model.graph.prefillEngine).toBe('ort');
      await model.dispose();
    } finally {
      undo();
    }
  });

  it("kvStorage 'float16' needs an engine whose decoder keeps half caches (NativeDecoderV1.kvDtype)", async () => {
    const undo = registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE });
    try {
      // The plain-JS engine ignores kvDtype (it has no kvDtype of its own): refused, not run on half bits it cannot read.
      const error = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native', prefillEngine: 'native', kvStorage: 'float16' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect((error as UnsupportedCapabilityError).capability).toBe('kvStorage');
      expect((error as Error).message).toContain("'js-reference' keeps float32 caches only");
      const model = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native', prefillEngine: 'native' });
      expect(model.graph.kvType).toBe('float32');
      await model.dispose();
    } finally {
      undo();
    }
  });
});
