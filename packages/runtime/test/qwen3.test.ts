import { loadReferenceModel, referenceForward } from '@draft/models';
import { describe, expect, it } from 'vitest';
import { inspectModel, loadModel } from '../src/index.js';
import { maxAbsDiff, TINY_QWEN3 } from './helpers.js';

describe('Qwen3 (q_norm / k_norm before RoPE), decomposed export', () => {
  it('inspect finds the Q·Kᵀ MatMul of every layer through the norm', () => {
    const x = inspectModel(TINY_QWEN3);
    expect(x.architecture).toMatchObject({ family: 'qwen3', qkNorm: true });
    expect(x.attention.layers.map((l) => [l.style, l.node])).toEqual([
      ['decomposed', '/model/layers.0/self_attn/MatMul'],
      ['decomposed', '/model/layers.1/self_attn/MatMul'],
    ]);
  });

  it('captured queries are the post-norm, post-RoPE queries of the reference; greedy tokens match it', async () => {
    const ref = loadReferenceModel(TINY_QWEN3);
    const ids = Array.from({ length: 14 }, (_, i) => (i * 37 + 11) % 500);
    // Positions with a gap, as after compression.
    const positions = ids.map((_, i) => (i < 7 ? i : i + 40));
    const model = await loadModel(TINY_QWEN3, { threads: 1 });
    try {
      const out = await model.forward({ inputIds: ids, positionIds: positions, captureQueries: 'all' });
      const r = referenceForward(ref, { inputIds: ids, positionIds: positions });
      for (let l = 0; l < 2; l++) expect(maxAbsDiff(out.queries![l], r.queries[l])).toBeLessThan(1e-4);
      out.cache.dispose();
      const greedy = await model.generate({ inputIds: ids.slice(0, 8) }, { maxNewTokens: 6 });
      // The reference, greedy with its own cache.
      let step = referenceForward(ref, { inputIds: ids.slice(0, 8), positionIds: [0, 1, 2, 3, 4, 5, 6, 7] });
      const tokens: number[] = [];
      for (let t = 0; t < 6; t++) {
        const row = step.logits.subarray(step.logits.length - ref.spec.vocabSize);
        let best = 0;
        for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        tokens.push(best);
        step = referenceForward(ref, { inputIds: [best], positionIds: [8 + t], past: step.present });
      }
      expect(greedy.tokens).toEqual(tokens);
    } finally {
      await model.dispose();
    }
  });
});
