import { readFileSync } from 'node:fs';
import { loadReferenceModel, referenceForward } from '@draft/models';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentGraph, loadModel, type OrtCausalLM } from '../src/index.js';
import { maxAbsDiff, TINY_LLAMA, TORCH_LLAMA } from './helpers.js';

const { onnx } = onnxProto;

const opTypes = (bytes: Uint8Array) => (onnx.ModelProto.decode(bytes).graph?.node ?? []).map((n) => n.opType);

describe('grouped query heads instead of repeat_kv (decomposed attention)', () => {
  it('removes every repeat_kv Expand of the TS writer’s and the torch export’s graphs', () => {
    for (const [dir, layers] of [
      [TINY_LLAMA, 2],
      [TORCH_LLAMA, JSON.parse(readFileSync(`${TORCH_LLAMA}/config.json`, 'utf8')).num_hidden_layers as number],
    ] as const) {
      const bytes = readFileSync(`${dir}/onnx/model.onnx`);
      const cfg = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));
      const plain = instrumentGraph(bytes, { numLayers: layers, headDim: cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads, path: dir });
      const grouped = instrumentGraph(bytes, {
        numLayers: layers,
        headDim: cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads,
        path: dir,
        groupQueryHeads: { numHeads: cfg.num_attention_heads, numKvHeads: cfg.num_key_value_heads },
      });
      expect(plain.groupedLayers).toBe(0);
      expect(grouped.groupedLayers).toBe(layers);
      // Two Expands per layer (K and V) before; none of them after.
      const expands = (b: Uint8Array) => opTypes(b).filter((t) => t === 'Expand').length;
      expect(expands(plain.bytes) - expands(grouped.bytes)).toBe(2 * layers);
    }
  });

  describe('tiny-llama (4 query heads over 2 KV heads) against the plain-TS reference forward', () => {
    let model: OrtCausalLM;
    beforeAll(async () => {
      model = await loadModel(TINY_LLAMA, { threads: 1 });
    });
    afterAll(async () => {
      await model?.dispose();
    });

    it('prefill (all logits) and decode steps over a past match the reference within 1e-4', async () => {
      const reference = loadReferenceModel(TINY_LLAMA);
      const ids = Array.from({ length: 40 }, (_, i) => 6 + ((i * 53) % 500));
      const prefill = await model.forward({ inputIds: ids.slice(0, 37), logits: 'all', chunkSize: 16 });
      const step = await model.forward({ inputIds: ids.slice(37), cache: prefill.cache, logits: 'all' });
      const last = await model.forward({ inputIds: [9], cache: step.cache });
      const ref = referenceForward(reference, { inputIds: [...ids, 9], positionIds: Array.from({ length: 41 }, (_, i) => i) });
      const V = model.info.vocabSize;
      expect(maxAbsDiff(prefill.logits, ref.logits.subarray(0, 37 * V))).toBeLessThan(1e-4);
      expect(maxAbsDiff(step.logits, ref.logits.subarray(37 * V, 40 * V))).toBeLessThan(1e-4);
      expect(maxAbsDiff(last.logits, ref.logits.subarray(40 * V, 41 * V))).toBeLessThan(1e-4);
      for (const r of [prefill, step, last]) r.cache.dispose();
    });
  });
});
