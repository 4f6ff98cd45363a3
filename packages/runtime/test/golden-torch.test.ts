import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { argmax, maxAbsDiff, TORCH_LLAMA, torchGolden } from './helpers.js';

const golden = torchGolden();
const TOL = golden.tolerance.logits_abs;

describe('torch-llama fixture vs torch golden.json', () => {
  let model: OrtCausalLM;
  beforeAll(async () => {
    model = await loadModel(TORCH_LLAMA, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('reads the model info and finds the decomposed attention of both layers', () => {
    expect(model.info).toMatchObject({ architecture: 'llama', numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 250, maxPositions: 2048, eosTokenIds: [2], bosTokenId: 1 });
    expect(model.graph.pattern).toBe('decomposed');
    expect(model.graph.captures.map((c) => [c.layer, c.output])).toEqual([
      [0, '/layers.0/self_attn/Add_output_0'],
      [1, '/layers.1/self_attn/Add_output_0'],
    ]);
  });

  for (const c of golden.cases) {
    it(`tokenizes the golden text (n=${c.prompt_length})`, () => {
      expect(model.tokenizer.encode(c.text)).toEqual(c.prompt);
    });

    it(`prefill logits and full-cache greedy match torch (n=${c.prompt_length})`, async () => {
      const pre = await model.forward({ inputIds: c.prompt });
      expect(pre.logits.length).toBe(250);
      expect(maxAbsDiff(pre.logits, c.prefill_last_logits_first16, 16)).toBeLessThanOrEqual(TOL);
      expect(pre.cache.length).toBe(c.prompt_length);
      expect(pre.cache.nextPosition).toBe(c.prompt_length);
      const result = await model.generate({ inputIds: c.prompt }, { maxNewTokens: c.greedy.length });
      expect(result.tokens).toEqual(c.greedy);
      expect(result.finishReason).toBe('length');
      pre.cache.dispose();
    });

    it(`compacted cache keeps original positions (n=${c.prompt_length})`, async () => {
      const cc = c.compacted;
      const pre = await model.forward({ inputIds: c.prompt });
      const kept = Int32Array.from(cc.kept_past_indices);
      const compact = await pre.cache.gather([
        [kept, kept],
        [kept, kept],
      ]);
      expect(Array.from(compact.positions(1, 1))).toEqual(cc.kept_past_indices);
      expect(compact.nextPosition).toBe(cc.next_position);
      expect(compact.length).toBe(7);
      const step = await model.forward({ inputIds: [cc.next_token], cache: compact });
      expect(maxAbsDiff(step.logits, cc.logits_first16, 16)).toBeLessThanOrEqual(TOL);
      expect(argmax(step.logits)).toBe(cc.argmax);
      const tokens = [argmax(step.logits)];
      let cache = step.cache;
      while (tokens.length < cc.greedy.length) {
        const r = await model.forward({ inputIds: [tokens[tokens.length - 1]], cache });
        cache.dispose();
        cache = r.cache;
        tokens.push(argmax(r.logits));
      }
      expect(tokens).toEqual(cc.greedy);
      expect(Array.from(cache.positions(0, 0))).toEqual([...cc.kept_past_indices, ...Array.from({ length: 5 }, (_, i) => c.prompt_length + i)]);
      for (const x of [pre.cache, compact, cache]) x.dispose();
    });

    it(`chunked prefill equals a single prefill (n=${c.prompt_length})`, async () => {
      const whole = await model.forward({ inputIds: c.prompt, logits: 'all' });
      const progress: number[] = [];
      const chunked = await model.forward({ inputIds: c.prompt, logits: 'all', chunkSize: 5, onProgress: (p) => progress.push(p.completed) });
      expect(progress).toEqual(Array.from({ length: Math.ceil(c.prompt_length / 5) }, (_, i) => Math.min(c.prompt_length, 5 * (i + 1))));
      expect(chunked.logits.length).toBe(c.prompt_length * 250);
      expect(maxAbsDiff(whole.logits, chunked.logits)).toBeLessThanOrEqual(TOL);
      whole.cache.dispose();
      chunked.cache.dispose();
    });
  }
});
