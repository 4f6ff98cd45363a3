import { AbortError, createPipeline, type KernelBackendV1, listKernelBackends, referenceKernelBackend, registerKernelBackend, useKernelBackend } from '@draft/core';
import { nativeInfo } from '@draft/cuda';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '@draft/runtime';
import { scoreSpecPC, selectSpecPC, specPC } from '@draft/specpc';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
// The plain-TS reference forward of the fixtures (float64, independent of ONNX Runtime), read from the models
// workspace's source: it is the oracle every expectation below is derived from.
import { type KvEntry, loadReferenceModel, type ReferenceModel, referenceForward } from '../../../models/src/reference-forward.js';
import { useNativeKernels } from '../src/index.js';

// SpecPC end to end on the small random-weight fixtures (never the trained models/draft, models/target):
// ONNX Runtime (through @draft/runtime) against the TS reference forward.
const fixture = (name: string) => fileURLToPath(new URL(`../../../models/fixtures/${name}`, import.meta.url));

const W = 8; // window
const C = 64; // budget
const K = 8; // max-pool kernel
const N = 8; // neighbourhood
const SPECPC = { budget: C, windowSize: W, kernelSize: K, neighbourTokens: N } as const;
const TOLERANCE = 1e-4;

// 180 tokens of English (the fixtures share a byte-level BPE tokenizer). At this length every greedy step of
// both tiny fixtures has a top-1 logit margin > 0.1 (the tests check > 1e-3), so argmax comparisons are safe.
const PROMPT_TEXT = Array.from({ length: 24 }, (_, i) => `Note ${i}: the keeper of lamp ${(i * 7) % 13} logged the tide at ${(i * 37) % 60} past.`).join(' ');
const PROMPT_TOKENS = 180;

interface Pair {
  name: string;
  model: OrtCausalLM;
  ref: ReferenceModel;
}

const pairs = new Map<string, Pair>();
async function pair(name: string): Promise<Pair> {
  let p = pairs.get(name);
  if (!p) {
    p = { name, model: await loadModel(fixture(name), { threads: 1 }), ref: loadReferenceModel(fixture(name)) };
    pairs.set(name, p);
  }
  return p;
}
afterAll(async () => {
  for (const p of pairs.values()) await p.model.dispose();
  useKernelBackend(undefined);
});

function promptIds(p: Pair): number[] {
  const ids = p.model.tokenizer.encode(PROMPT_TEXT);
  expect(ids.length).toBeGreaterThanOrEqual(PROMPT_TOKENS);
  return ids.slice(0, PROMPT_TOKENS);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/**
 * Runs `run` while recording `model.forward`'s requests and result promises (the method is restored after,
 * whatever happens). `error` is what `run` threw, if anything.
 */
async function recordForward<T>(model: OrtCausalLM, run: () => Promise<T>) {
  const spy = vi.spyOn(model, 'forward');
  try {
    const outcome = await run().then(
      (value) => ({ value, error: undefined }),
      (error: unknown) => ({ value: undefined, error }),
    );
    return { ...outcome, requests: spy.mock.calls.map(([request]) => request), results: spy.mock.results.map((r) => r.value as Promise<{ cache: OrtKvCache }>) };
  } finally {
    spy.mockRestore();
  }
}

/** Rows [from, from + count) of a per-head tensor [heads, S, d]. */
function rowsOf(t: Float32Array, heads: number, S: number, d: number, from: number, count: number): Float32Array {
  const out = new Float32Array(heads * count * d);
  for (let h = 0; h < heads; h++) out.set(t.subarray((h * S + from) * d, (h * S + from + count) * d), h * count * d);
  return out;
}

/**
 * Hand-written SpecPC layer score from reference tensors, per KV head: for every query row r (a position
 * `positions[r]` that sees keys 0 … positions[r]) and every query head of the group,
 * weight[r] · softmax(q·kᵀ/√d) over those keys; maximum over the group's heads and the rows. (Hkv, T), float64.
 */
function expectedLayerScores(
  ref: ReferenceModel,
  queries: Float32Array, // [Hq, S, d]
  S: number,
  rows: readonly number[], // query rows of `queries`
  positions: readonly number[], // key index each row sits at (sees keys ≤ it)
  weights: readonly number[],
  keys: Float32Array, // [Hkv, T, d]
  T: number,
): Float64Array {
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = ref.spec;
  const out = new Float64Array(hkv * T);
  const logits = new Float64Array(T);
  for (let h = 0; h < hq; h++) {
    const kh = Math.floor(h / (hq / hkv));
    rows.forEach((row, r) => {
      const visible = positions[r] + 1;
      let max = -Infinity;
      for (let t = 0; t < visible; t++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += queries[(h * S + row) * d + x] * keys[(kh * T + t) * d + x];
        logits[t] = dot / Math.sqrt(d);
        max = Math.max(max, logits[t]);
      }
      let sum = 0;
      for (let t = 0; t < visible; t++) sum += Math.exp(logits[t] - max);
      for (let t = 0; t < visible; t++) {
        const p = (weights[r] * Math.exp(logits[t] - max)) / sum;
        if (p > out[kh * T + t]) out[kh * T + t] = p;
      }
    });
  }
  return out;
}

/** Element-wise maximum over KV heads of (Hkv, T) scores, truncated to the first n keys, into `into`. */
function maxInto(into: Float64Array, scores: Float64Array, hkv: number, T: number): void {
  for (let h = 0; h < hkv; h++) for (let j = 0; j < into.length; j++) into[j] = Math.max(into[j], scores[h * T + j]);
}

const windowWeights = Array.from({ length: W }, (_, j) => j / (W - 1));

interface ReferenceRun {
  /** Prefill of the prompt. */
  prefill: { queries: Float32Array[]; present: KvEntry[] };
  /** Greedy draft tokens (argmax of the reference logits). */
  tokens: number[];
  /** Smallest top-1 / top-2 logit gap over the greedy steps (how safe the argmax comparison is). */
  minGap: number;
  /** Decode steps: the fed-back token t's queries [Hq, 1, d] and the cache after it [Hkv, n + t + 1, d]. */
  steps: { queries: Float32Array[]; present: KvEntry[] }[];
  /** Per layer (Hkv, T) expected scores, for the window (step 0) and every decode step. */
  layerScores: Float64Array[][];
  /** SpecPC scores s (n) for layers ≥ start, max over heads, rows, layers and steps. */
  scores: Float64Array;
}

/** Greedy top-2 gap of a logit row. */
function gap(logits: Float32Array): number {
  const a = argmax(logits);
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) if (i !== a) second = Math.max(second, logits[i]);
  return logits[a] - second;
}

/** SpecPC on the reference forward alone: prefill, Lk greedy tokens (Lk − 1 fed back), hand-written scores. */
function referenceSpecPC(ref: ReferenceModel, ids: readonly number[], lookaheadTokens: number, start: number): ReferenceRun {
  const { numLayers, numKvHeads: hkv } = ref.spec;
  const n = ids.length;
  const prefill = referenceForward(ref, { inputIds: ids, positionIds: ids.map((_, i) => i) });
  const V = ref.spec.vocabSize;
  let last = prefill.logits.subarray((n - 1) * V, n * V);
  const tokens = [argmax(last)];
  let minGap = gap(last);
  const steps: ReferenceRun['steps'] = [];
  let past = prefill.present;
  while (tokens.length < lookaheadTokens) {
    const position = n + steps.length;
    const step = referenceForward(ref, { inputIds: [tokens[tokens.length - 1]], positionIds: [position], past });
    steps.push({ queries: step.queries, present: step.present });
    past = step.present;
    last = step.logits;
    tokens.push(argmax(last));
    minGap = Math.min(minGap, gap(last));
  }
  const scores = new Float64Array(n);
  const layerScores: Float64Array[][] = [];
  const windowRows = Array.from({ length: W }, (_, j) => n - W + j);
  layerScores.push(
    Array.from({ length: numLayers }, (_, l) => expectedLayerScores(ref, prefill.queries[l], n, windowRows, windowRows, windowWeights, prefill.present[l].key, n)),
  );
  steps.forEach((step, t) => {
    const T = n + t + 1;
    layerScores.push(Array.from({ length: numLayers }, (_, l) => expectedLayerScores(ref, step.queries[l], 1, [0], [T - 1], [1], step.present[l].key, T)));
  });
  layerScores.forEach((perLayer, step) => {
    const T = n + step; // step 0 = the window over n keys, step t + 1 = fed-back token t over n + t + 1 keys
    for (let l = start; l < numLayers; l++) maxInto(scores, perLayer[l], hkv, T);
  });
  return { prefill, tokens, minGap, steps, layerScores, scores };
}

/** SpecPC selection (pure @draft/specpc) with this file's C, W, k, N. */
function expectedKept(scores: ArrayLike<number>): Int32Array {
  return selectSpecPC({ scores, budget: C, windowSize: W, kernelSize: K, neighbourTokens: N });
}

/** A kernel backend that records every window-scoring call and answers with the TS reference backend. */
function spyBackend() {
  const calls: { queries: Float32Array; keys: Float32Array; queryCount: number; keyCount: number; weighted: boolean; out: Float32Array }[] = [];
  const backend: KernelBackendV1 = {
    ...referenceKernelBackend,
    name: 'specpc-e2e-spy',
    async windowAttentionScores(queries, keys, options) {
      const out = await referenceKernelBackend.windowAttentionScores(queries, keys, options);
      calls.push({ queries: queries.slice(), keys: keys.slice(), queryCount: options.queryCount, keyCount: options.keyCount, weighted: options.queryWeights !== undefined, out });
      return out;
    },
  };
  const unregister = registerKernelBackend(backend, { priority: -1 });
  useKernelBackend(backend.name, { required: true });
  return {
    calls,
    dispose() {
      useKernelBackend(undefined);
      unregister();
    },
  };
}

const VARIANTS = [
  { fixture: 'tiny-llama', graph: 'decomposed' },
  { fixture: 'tiny-qwen2-gqa', graph: 'gqa' },
] as const;

describe.each(VARIANTS)('SpecPC on $fixture ($graph attention) vs the TS reference forward', ({ fixture: name, graph }) => {
  let spy: ReturnType<typeof spyBackend> | undefined;
  afterEach(() => {
    spy?.dispose();
    spy = undefined;
  });

  it('window scores equal a recompute from the reference queries and keys; same kept indices; start layer clamped', async () => {
    const p = await pair(name);
    expect(p.model.graph.pattern).toBe(graph);
    const { numLayers, numHeads, numKvHeads, headDim } = p.model.info;
    const ids = promptIds(p);
    const n = ids.length;
    const start = numLayers - 1; // the default startingLayerIndex (8) clamped to the draft's last layer
    const expected = referenceSpecPC(p.ref, ids, 1, start);
    expect(expected.minGap).toBeGreaterThan(1e-3); // the draft token is compared exactly

    // The runtime's own tensors: post-RoPE queries of the last W positions and the cached post-RoPE keys.
    const run = await p.model.forward({ inputIds: ids, positionIds: ids.map((_, i) => i), captureQueries: W });
    try {
      const layers = [];
      for (let l = 0; l < numLayers; l++) {
        const queries = run.queries![l];
        const keys = await run.cache.readKeys(l);
        expect(queries.length).toBe(numHeads * W * headDim);
        expect(keys.length).toBe(numKvHeads * n * headDim);
        expect(maxAbsDiff(queries, rowsOf(expected.prefill.queries[l], numHeads, n, headDim, n - W, W))).toBeLessThan(TOLERANCE);
        expect(maxAbsDiff(keys, expected.prefill.present[l].key)).toBeLessThan(TOLERANCE);
        layers.push({ queries, keys });
      }
      const shape = { numHeads, numKvHeads, headDim, promptLength: n, windowSize: W, startingLayerIndex: 8 };
      const runtimeScores = scoreSpecPC({ layers, ...shape });
      const referenceScores = scoreSpecPC({
        layers: expected.prefill.queries.map((q, l) => ({ queries: rowsOf(q, numHeads, n, headDim, n - W, W), keys: expected.prefill.present[l].key })),
        ...shape,
      });
      // scoreSpecPC on the reference tensors equals the hand-written recompute, and the runtime's equals both.
      expect(maxAbsDiff(referenceScores, expected.scores)).toBeLessThan(1e-6);
      expect(maxAbsDiff(runtimeScores, expected.scores)).toBeLessThan(TOLERANCE);
      expect(Array.from(expectedKept(runtimeScores))).toEqual(Array.from(expectedKept(expected.scores)));
    } finally {
      run.cache.dispose();
    }

    // The compressor itself (default startingLayerIndex 8), its kernel calls recorded.
    spy = spyBackend();
    const result = await specPC(SPECPC).compress({ inputIds: ids, text: PROMPT_TEXT, budget: C, draft: p.model });
    expect(result.compressed).toBe(true);
    expect(result.startingLayerIndex).toBe(start);
    expect(result.promptTokens).toBe(n);
    expect(result.keptIndices).toHaveLength(C);
    expect(Array.from(result.keptIndices)).toEqual(Array.from(expectedKept(expected.scores)));
    expect(result.inputIds).toEqual(Array.from(result.keptIndices, (i) => ids[i]));
    expect(result.draftTokenIds).toEqual(expected.tokens);
    // One scoring call per used layer (only the last), the W weighted window queries over the n prompt keys.
    expect(spy.calls).toHaveLength(numLayers - start);
    const [call] = spy.calls;
    expect(call).toMatchObject({ queryCount: W, keyCount: n, weighted: true });
    expect(maxAbsDiff(call.out, expected.layerScores[0][start])).toBeLessThan(TOLERANCE);
  }, 30_000);

  it('lookahead 4: the 3 fed-back tokens sit at n, n+1, n+2 and their rows are softmaxes over n + t + 1 keys', async () => {
    const p = await pair(name);
    const { numLayers, numHeads, numKvHeads, headDim } = p.model.info;
    const ids = promptIds(p);
    const n = ids.length;
    const lookahead = 4;
    const expected = referenceSpecPC(p.ref, ids, lookahead, 0);
    // The greedy tokens are compared exactly: make sure the reference's top-1 margin dwarfs float32 noise.
    expect(expected.minGap).toBeGreaterThan(1e-3);

    spy = spyBackend();
    const compressor = specPC({ ...SPECPC, lookaheadTokens: lookahead, startingLayerIndex: 0 });
    const { value: result, error, requests } = await recordForward(p.model, () => compressor.compress({ inputIds: ids, text: PROMPT_TEXT, budget: C, draft: p.model }));
    expect(error).toBeUndefined();
    if (!result) return;
    expect(result.draftTokenIds).toEqual(expected.tokens);
    expect(result.startingLayerIndex).toBe(0);

    // The draft saw: one prefill at 0 … n−1, then token t fed back alone at position n + t.
    expect(requests).toHaveLength(lookahead);
    expect(Array.from(requests[0].positionIds!)).toEqual(ids.map((_, i) => i));
    expect(requests[0].captureQueries).toBe(W);
    for (let t = 0; t < lookahead - 1; t++) {
      expect(Array.from(requests[t + 1].inputIds)).toEqual([expected.tokens[t]]);
      expect(Array.from(requests[t + 1].positionIds!)).toEqual([n + t]);
      expect(requests[t + 1].captureQueries).toBe(1);
    }

    // Kernel calls: per step, every layer; step 0 = the window, step t + 1 = fed-back token t.
    expect(spy.calls).toHaveLength(lookahead * numLayers);
    for (let step = 0; step < lookahead; step++) {
      for (let l = 0; l < numLayers; l++) {
        const call = spy.calls[step * numLayers + l];
        if (step === 0) {
          expect(call).toMatchObject({ queryCount: W, keyCount: n, weighted: true });
        } else {
          const t = step - 1;
          const T = n + t + 1;
          expect(call).toMatchObject({ queryCount: 1, keyCount: T, weighted: false });
          const ref = expected.steps[t];
          // Its query is the reference query of a token at position n + t (RoPE at n + t) ...
          expect(maxAbsDiff(call.queries, ref.queries[l])).toBeLessThan(TOLERANCE);
          expect(call.queries.length).toBe(numHeads * headDim);
          // ... over all n + t + 1 keys (prompt, earlier fed-back tokens, itself) ...
          expect(call.keys.length).toBe(numKvHeads * T * headDim);
          expect(maxAbsDiff(call.keys, ref.present[l].key)).toBeLessThan(TOLERANCE);
        }
        // ... and its row equals the softmax recomputed from the reference over those keys (max over the group).
        expect(maxAbsDiff(call.out, expected.layerScores[step][l])).toBeLessThan(TOLERANCE);
      }
    }
    // Every fed-back row is a probability distribution over exactly n + t + 1 keys (per KV head max ≤ 1, > 0).
    for (let t = 0; t < lookahead - 1; t++) {
      const row = expected.layerScores[t + 1][numLayers - 1];
      expect(row.length).toBe(numKvHeads * (n + t + 1));
      expect(Math.min(...row)).toBeGreaterThan(0);
    }

    // The kept indices follow from the scores over all four steps and both layers.
    const kept = expectedKept(expected.scores);
    expect(Array.from(result.keptIndices)).toEqual(Array.from(kept));
    // The fed-back steps matter here: without them the selection differs, or at least the scores do.
    const windowOnly = referenceSpecPC(p.ref, ids, 1, 0).scores;
    expect(maxAbsDiff(windowOnly, expected.scores)).toBeGreaterThan(0);
  }, 30_000);
});

const native = nativeInfo();
const nativeSkip = native.native ? '' : ` (skipped: @draft/cuda native addon unavailable: ${native.reason})`;
const cudaSkip = native.cuda.devices > 0 ? '' : ` (skipped: ${native.native ? (native.reason ?? 'no CUDA device') : `native addon unavailable: ${native.reason}`})`;

describe('kernel backends agree on the kept indices', () => {
  afterEach(() => useKernelBackend(undefined));

  async function keptWith(backend: string, p: Pair, ids: number[]): Promise<number[]> {
    useKernelBackend(backend, { required: true });
    const result = await specPC(SPECPC).compress({ inputIds: ids, text: PROMPT_TEXT, budget: C, draft: p.model });
    return Array.from(result.keptIndices);
  }

  it.skipIf(!native.native).each(VARIANTS)(`native CPU backend (registered as the CLI does) = TS reference on $fixture${nativeSkip}`, async ({ fixture: name }) => {
    const p = await pair(name);
    const ids = promptIds(p);
    await useNativeKernels(() => {});
    expect(listKernelBackends().map((b) => b.name)).toContain('native');
    const nativeKept = await keptWith('native', p, ids);
    const referenceKept = await keptWith('reference', p, ids);
    expect(nativeKept).toEqual(referenceKept);
    expect(nativeKept).toEqual(Array.from(expectedKept(referenceSpecPC(p.ref, ids, 1, p.model.info.numLayers - 1).scores)));
  }, 30_000);

  it.skipIf(native.cuda.devices === 0)(`CUDA backend = TS reference on tiny-llama${cudaSkip}`, async () => {
    const p = await pair('tiny-llama');
    const ids = promptIds(p);
    await useNativeKernels(() => {});
    expect(await keptWith('cuda', p, ids)).toEqual(await keptWith('reference', p, ids));
  }, 30_000);
});

describe('createPipeline with specPC({ keepOriginalPositions: true }) on random-draft → random-target', () => {
  it('the target prefill gets the C kept tokens at their original positions and decoding continues after them', async () => {
    const draft = await pair('random-draft');
    const target = await pair('random-target');
    const ids = promptIds(draft);
    expect(target.model.tokenizer.encode(PROMPT_TEXT).slice(0, PROMPT_TOKENS)).toEqual(ids); // one shared tokenizer
    const n = ids.length;
    const kept = Array.from(expectedKept(referenceSpecPC(draft.ref, ids, 1, draft.ref.spec.numLayers - 1).scores));
    expect(kept.at(-1)).toBe(n - 1); // the window is kept, so the last kept position is n − 1 …
    expect(kept.some((k, i) => k !== i)).toBe(true); // … and the kept positions are not 0 … C − 1

    // Independent expectation of what the target then generates: the reference target over the kept tokens at
    // their original positions, decoding greedily at n, n + 1.
    const keptIds = kept.map((i) => ids[i]);
    const V = target.ref.spec.vocabSize;
    const prefill = referenceForward(target.ref, { inputIds: keptIds, positionIds: kept });
    const first = argmax(prefill.logits.subarray((C - 1) * V, C * V));
    const second = referenceForward(target.ref, { inputIds: [first], positionIds: [n], past: prefill.present });
    const expectedTokens = [first, argmax(second.logits)];
    expect(gap(prefill.logits.subarray((C - 1) * V, C * V))).toBeGreaterThan(1e-3);
    expect(gap(second.logits)).toBeGreaterThan(1e-3);
    // The same tokens at re-indexed positions 0 … C − 1 would differ in what the target computes.
    const reindexed = referenceForward(target.ref, { inputIds: keptIds, positionIds: keptIds.map((_, i) => i) });
    expect(maxAbsDiff(reindexed.logits.subarray((C - 1) * V, C * V), prefill.logits.subarray((C - 1) * V, C * V))).toBeGreaterThan(1e-3);

    const onResult = vi.fn();
    const pipeline = createPipeline({
      target: target.model,
      draft: draft.model,
      compressor: specPC({ ...SPECPC, keepOriginalPositions: true, onResult }),
    });
    const { value: result, error, requests, results } = await recordForward(target.model, () =>
      pipeline.generate({ inputIds: ids, text: PROMPT_TEXT }, { maxNewTokens: 2 }),
    );
    expect(error).toBeUndefined();
    if (!result) return;
    expect(onResult).toHaveBeenCalledTimes(1);
    const compressed = onResult.mock.calls[0][0];
    expect(Array.from(compressed.keptIndices)).toEqual(kept);
    expect(Array.from(compressed.positionIds)).toEqual(kept);

    expect(requests.length).toBeGreaterThanOrEqual(2);
    // Prefill: exactly the C kept tokens, at the kept original positions.
    expect(requests[0].cache).toBeUndefined();
    expect(Array.from(requests[0].inputIds)).toEqual(keptIds);
    expect(Array.from(requests[0].positionIds!)).toEqual(kept);
    // The first decode step feeds the first token after the prefill cache, which continues at n (after the
    // largest kept position n − 1), not at C.
    expect(Array.from(requests[1].inputIds)).toEqual([first]);
    const prefillCache = (await results[0]).cache;
    expect(requests[1].cache).toBe(prefillCache);
    expect(prefillCache.nextPosition).toBe(n);
    expect(result.usage).toMatchObject({ promptTokens: n, compressedPromptTokens: C });
    expect(result.tokens).toEqual(expectedTokens);
  }, 30_000);
});

describe('abort during the lookahead on the runtime', () => {
  it('throws AbortError, disposes every draft cache, and the next call on the same draft succeeds', async () => {
    const p = await pair('tiny-llama');
    const ids = promptIds(p);
    const compressor = specPC({ ...SPECPC, lookaheadTokens: 4 });
    const controller = new AbortController();
    const { error, requests, results } = await recordForward(p.model, () =>
      compressor.compress({
        inputIds: ids,
        text: PROMPT_TEXT,
        budget: C,
        draft: p.model,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.completed === 2) controller.abort(); // after the first fed-back token
        },
      }),
    );
    expect(error).toBeInstanceOf(AbortError);
    expect(requests).toHaveLength(2); // prefill + one fed-back token, then stopped
    const caches = await Promise.all(results);
    for (const { cache } of caches) expect(cache.isDisposed).toBe(true);

    const again = await compressor.compress({ inputIds: ids, text: PROMPT_TEXT, budget: C, draft: p.model });
    const expected = referenceSpecPC(p.ref, ids, 4, p.model.info.numLayers - 1);
    expect(expected.minGap).toBeGreaterThan(1e-3);
    expect(again.draftTokenIds).toEqual(expected.tokens);
    expect(Array.from(again.keptIndices)).toEqual(Array.from(expectedKept(expected.scores)));
  }, 30_000);
});
