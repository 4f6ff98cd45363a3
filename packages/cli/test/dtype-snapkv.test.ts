import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectSnapKV, snapkv } from '@draft/baselines';
import { createPipeline } from '@draft/core';
import { loadModel, OrtKvCache } from '@draft/runtime';
import { describe, expect, it, vi } from 'vitest';
// The converters of the models workspace write the dtype variants of the tiny fixture (skipped when present).
import { writeDtypeFixtures } from '../../../models/src/dtype-fixtures.js';

const tinyLlama = fileURLToPath(new URL('../../../models/fixtures/tiny-llama', import.meta.url));
const { dtypes } = writeDtypeFixtures(tinyLlama, dirname(tinyLlama), 'tiny-llama');

const PROMPT = Array.from({ length: 48 }, (_, i) => 97 + ((i * 7) % 26));
const BUDGET = 16;
const WINDOW = 4;

// SnapKV through createPipeline on a q4 (MatMulNBits) graph and on float16-KV graphs: the cache is gathered in
// the graph's element type, scoring reads float32 queries and keys.
describe('snapkv on dtype variants of tiny-llama', () => {
  const variants = [
    { label: 'q4', options: { dtype: 'q4' }, kv: 'float32' },
    { label: 'fp16', options: { dtype: 'fp16' }, kv: 'float16' },
    { label: 'q4f16', options: { dtype: 'q4f16' }, kv: 'float16' },
    { label: 'float16 KV I/O around float32 compute', options: { modelFileName: 'model_kv16' }, kv: 'float16' },
  ] as const;
  for (const { label, options, kv } of variants) {
    it(label, async () => {
      const model = await loadModel(dtypes, { ...options, threads: 1 });
      const gather = vi.spyOn(OrtKvCache.prototype, 'gather');
      try {
        const result = await createPipeline({ target: model, cachePolicy: snapkv({ budget: { tokens: BUDGET }, windowSize: WINDOW }) }).generate(
          { inputIds: PROMPT },
          { maxNewTokens: 4 },
        );
        expect(result.usage.keptKvTokens).toEqual([
          [BUDGET, BUDGET],
          [BUDGET, BUDGET],
        ]);
        expect(result.tokens).toHaveLength(4);
        const bytesPerElement = model.graph.kvType === 'float16' ? 2 : 4;
        expect(model.graph.kvType).toBe(kv);
        // The budget, the re-run last prompt token and 3 fed-back tokens, at 2 or 4 bytes per element.
        expect(result.kvBytes.final).toBe(2 * 2 * 2 * (BUDGET + 4) * 16 * bytesPerElement);

        // The kept entries are those selectSnapKV picks from this model's own queries and keys (read as float32).
        const prefill = await model.forward({ inputIds: PROMPT, captureQueries: WINDOW + 1 });
        const keys = await Promise.all([0, 1].map((l) => prefill.cache.readKeys(l)));
        prefill.cache.dispose();
        const expected = selectSnapKV({ queries: prefill.queries ?? [], keys, numHeads: 4, numKvHeads: 2, headDim: 16, promptLength: PROMPT.length, budget: BUDGET, windowSize: WINDOW });
        const kept = gather.mock.calls.map(([k]) => k.map((layer) => layer.map((idx) => Array.from(idx))));
        expect(kept[0]).toEqual(expected.map((layer) => layer.map((idx) => Array.from(idx))));
      } finally {
        gather.mockRestore();
        await model.dispose();
      }
    });
  }
});
