import { gatherCache, loadReferenceModel, referenceForward } from '@draft/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA, TORCH_LLAMA, torchGolden } from './helpers.js';

/**
 * Independent check on the torch export: recompute softmax(Q·Kᵀ/√d + causal mask) from the captured queries
 * and the cache's post-RoPE keys and compare with the graph's own Softmax output (exposed as a debug output).
 */
function attentionProbs(q: Float32Array, keys: Float32Array, hq: number, hkv: number, w: number, total: number, d: number): Float32Array {
  const out = new Float32Array(hq * w * total);
  const g = hq / hkv;
  for (let h = 0; h < hq; h++) {
    const kh = Math.floor(h / g);
    for (let i = 0; i < w; i++) {
      const visible = total - w + i; // index-based causal rule: query i sees keys ≤ P + i
      const row = new Float64Array(total).fill(Number.NEGATIVE_INFINITY);
      let max = Number.NEGATIVE_INFINITY;
      for (let t = 0; t <= visible; t++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += q[(h * w + i) * d + x] * keys[(kh * total + t) * d + x];
        row[t] = dot / Math.sqrt(d);
        max = Math.max(max, row[t]);
      }
      let sum = 0;
      for (let t = 0; t <= visible; t++) sum += Math.exp(row[t] - max);
      for (let t = 0; t <= visible; t++) out[(h * w + i) * total + t] = Math.exp(row[t] - max) / sum;
    }
  }
  return out;
}

describe('query capture on the torch export (decomposed, scale after MatMul)', () => {
  let model: OrtCausalLM;
  const softmax = (l: number) => `/layers.${l}/self_attn/Softmax_output_0`;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1, debugOutputs: [softmax(0), softmax(1)] });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('captured Q and cached K reproduce the model softmax over a non-empty past', async () => {
    const prompt = torchGolden().cases[1].prompt; // 30 tokens
    const first = await model.forward({ inputIds: prompt.slice(0, 20) });
    const second = await model.forward({ inputIds: prompt.slice(20), cache: first.cache, captureQueries: 'all', debugOutputs: [softmax(0), softmax(1)] });
    expect(second.queries).toHaveLength(2);
    for (let l = 0; l < 2; l++) {
      const q = second.queries![l];
      expect(q.length).toBe(4 * 10 * 16);
      const keys = await second.cache.readKeys(l);
      expect(keys.length).toBe(2 * 30 * 16);
      const probs = attentionProbs(q, keys, 4, 2, 10, 30, 16);
      const debug = second.debug![softmax(l)];
      expect(debug.dims).toEqual([1, 4, 10, 30]);
      expect(maxAbsDiff(probs, debug.data)).toBeLessThan(1e-5);
    }
    first.cache.dispose();
    second.cache.dispose();
  });

  it('a window w equals the last w rows of all queries, across chunk boundaries', async () => {
    const prompt = torchGolden().cases[1].prompt;
    const all = await model.forward({ inputIds: prompt, captureQueries: 'all' });
    const last = await model.forward({ inputIds: prompt, captureQueries: 7, chunkSize: 4 });
    for (let l = 0; l < 2; l++) {
      const a = all.queries![l];
      const w = last.queries![l];
      expect(w.length).toBe(4 * 7 * 16);
      for (let h = 0; h < 4; h++) {
        const expected = a.subarray((h * 30 + 23) * 16, (h * 30 + 30) * 16);
        expect(maxAbsDiff(w.subarray(h * 7 * 16, (h + 1) * 7 * 16), expected)).toBeLessThan(1e-6);
      }
    }
    const none = await model.forward({ inputIds: prompt });
    expect(none.queries).toBeUndefined();
    for (const r of [all, last, none]) r.cache.dispose();
  });
});

describe.each([
  ['tiny-llama (decomposed)', TINY_LLAMA, 'decomposed'],
  ['tiny-qwen2-gqa (GroupQueryAttention)', TINY_QWEN2_GQA, 'gqa'],
])('query capture and logits vs the reference forward: %s', (_name, dir, pattern) => {
  let model: OrtCausalLM;
  const reference = loadReferenceModel(dir);
  const prompt = Array.from({ length: 16 }, (_, i) => (i * 37 + 11) % 500);
  beforeAll(async () => {
    model = await loadModel(dir, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it(`recognises the ${pattern} pattern`, () => {
    expect(model.graph.pattern).toBe(pattern);
    expect(model.graph.captures.map((c) => c.layer)).toEqual([0, 1]);
  });

  it('prefill queries (all positions) and logits match', async () => {
    const ref = referenceForward(reference, { inputIds: prompt, positionIds: prompt.map((_, i) => i) });
    const r = await model.forward({ inputIds: prompt, captureQueries: 'all', logits: 'all' });
    expect(maxAbsDiff(r.logits, ref.logits)).toBeLessThan(1e-4);
    for (let l = 0; l < 2; l++) expect(maxAbsDiff(r.queries![l], ref.queries[l])).toBeLessThan(1e-4);
    r.cache.dispose();
  });

  it('compacted cache + multi-token chunk at true positions: queries, keys and logits match', async () => {
    const ref0 = referenceForward(reference, { inputIds: prompt, positionIds: prompt.map((_, i) => i) });
    const keep = [0, 1, 5, 9, 12, 14, 15];
    const refPast = gatherCache(ref0.present, keep, 2, 16);
    const next = [42, 7, 300];
    const ref1 = referenceForward(reference, { inputIds: next, positionIds: [16, 17, 18], past: refPast });

    const r0 = await model.forward({ inputIds: prompt });
    const kept = Int32Array.from(keep);
    const compact = await r0.cache.gather([
      [kept, kept],
      [kept, kept],
    ]);
    const r1 = await model.forward({ inputIds: next, cache: compact, captureQueries: 2, logits: 'all' });
    expect(maxAbsDiff(r1.logits, ref1.logits)).toBeLessThan(1e-4);
    for (let l = 0; l < 2; l++) {
      const q = r1.queries![l];
      for (let h = 0; h < 4; h++) {
        const expected = ref1.queries[l].subarray((h * 3 + 1) * 16, (h * 3 + 3) * 16);
        expect(maxAbsDiff(q.subarray(h * 2 * 16, (h + 1) * 2 * 16), expected)).toBeLessThan(1e-4);
      }
      expect(maxAbsDiff(await r1.cache.readKeys(l), ref1.present[l].key)).toBeLessThan(1e-4);
      expect(maxAbsDiff(await r1.cache.readValues(l), ref1.present[l].value)).toBeLessThan(1e-4);
    }
    expect(Array.from(r1.cache.positions(1, 0))).toEqual([...keep, 16, 17, 18]);
    for (const c of [r0.cache, compact, r1.cache]) c.dispose();
  });

  it('non-contiguous prefill positions (keepOriginalPositions) match', async () => {
    const positions = [0, 1, 2, 7, 8, 9, 20, 21];
    const ids = prompt.slice(0, 8);
    const ref = referenceForward(reference, { inputIds: ids, positionIds: positions });
    const r = await model.forward({ inputIds: ids, positionIds: positions, captureQueries: 'all', logits: 'all' });
    expect(maxAbsDiff(r.logits, ref.logits)).toBeLessThan(1e-4);
    for (let l = 0; l < 2; l++) expect(maxAbsDiff(r.queries![l], ref.queries[l])).toBeLessThan(1e-4);
    expect(r.cache.nextPosition).toBe(22);
    r.cache.dispose();
  });
});
