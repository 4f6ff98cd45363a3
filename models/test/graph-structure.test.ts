import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../src/fixtures.js';
import { onnx } from '../src/onnx-builder.js';
import { loadReferenceModel, referenceForward } from '../src/reference-forward.js';
import { createSession, maxAbsDiff, ortStep } from './ort-helpers.js';

function loadModel(name: 'tiny-llama' | 'tiny-qwen2-gqa') {
  return onnx.ModelProto.decode(readFileSync(join(fixturePath(name), 'onnx', 'model.onnx')));
}

describe('decomposed graph structure', () => {
  const model = loadModel('tiny-llama');
  const nodes = model.graph!.node!;
  const byName = new Map(nodes.map((n) => [n.name!, n]));
  const producer = new Map<string, (typeof nodes)[number]>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);

  it('Q·Kᵀ MatMul -> Mul -> Add(mask) -> Softmax -> MatMul with the post-RoPE query as input 0', () => {
    for (let i = 0; i < 2; i++) {
      const L = `/model/layers.${i}/self_attn`;
      const softmax = byName.get(`${L}/Softmax`)!;
      const add = producer.get(softmax.input![0])!;
      expect(add.name).toBe(`${L}/Add`);
      const mul = producer.get(add.input![0])!;
      expect(mul.opType).toBe('Mul');
      const qk = producer.get(mul.input![0])!;
      expect(qk.opType).toBe('MatMul');
      expect(qk.name).toBe(`${L}/MatMul`);
      expect(producer.get(qk.input![0])!.name).toBe(`${L}/q_rope/Add`);
      expect(qk.input![0]).toBe(`${L}/q_rope/Add_output_0`);
      const pv = nodes.find((n) => n.opType === 'MatMul' && n.input![0] === softmax.output![0])!;
      expect(pv.name).toBe(`${L}/MatMul_1`);
    }
    expect(model.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17]]);
  });

  it('the q_rope/Add tensor, added as an extra output, equals the reference post-RoPE queries', async () => {
    const m = loadModel('tiny-llama');
    m.graph!.output!.push({ name: '/model/layers.1/self_attn/q_rope/Add_output_0' });
    const session = await createSession(onnx.ModelProto.encode(m).finish());
    const ref = loadReferenceModel(fixturePath('tiny-llama'));
    const pre = referenceForward(ref, { inputIds: [5, 6, 7], positionIds: [0, 1, 2] });
    const feedsPast = pre.present;
    // run a 2-token chunk at positions 40, 41 (as after a compaction) and read the extra output
    const { default: ortMod } = await import('onnxruntime-node');
    const spec = ref.spec;
    const feeds: Record<string, InstanceType<typeof ortMod.Tensor>> = {
      input_ids: new ortMod.Tensor('int64', BigInt64Array.from([8n, 9n]), [1, 2]),
      attention_mask: new ortMod.Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 1n, 1n]), [1, 5]),
      position_ids: new ortMod.Tensor('int64', BigInt64Array.from([40n, 41n]), [1, 2]),
    };
    for (let l = 0; l < spec.numLayers; l++) {
      feeds[`past_key_values.${l}.key`] = new ortMod.Tensor('float32', feedsPast[l].key, [1, spec.numKvHeads, 3, spec.headDim]);
      feeds[`past_key_values.${l}.value`] = new ortMod.Tensor('float32', feedsPast[l].value, [1, spec.numKvHeads, 3, spec.headDim]);
    }
    const out = await session.run(feeds);
    const q = out['/model/layers.1/self_attn/q_rope/Add_output_0'];
    expect(q.dims).toEqual([1, spec.numHeads, 2, spec.headDim]);
    const r = referenceForward(ref, { inputIds: [8, 9], positionIds: [40, 41], past: pre.present });
    expect(maxAbsDiff(q.data as Float32Array, r.queries[1])).toBeLessThan(1e-4);
    // sanity: the ordinary outputs still agree
    const o = await ortStep(session, spec, [8, 9], [40, 41], pre.present);
    expect(maxAbsDiff(o.logits, r.logits)).toBeLessThan(1e-4);
  });
});

describe('gqa graph structure', () => {
  it('uses com.microsoft.GroupQueryAttention with do_rotary=1 and position_ids as input 9', () => {
    const model = loadModel('tiny-qwen2-gqa');
    const gqa = model.graph!.node!.filter((n) => n.opType === 'GroupQueryAttention');
    expect(gqa.length).toBe(2);
    for (const n of gqa) {
      expect(n.domain).toBe('com.microsoft');
      expect(n.input![9]).toBe('position_ids');
      expect(n.input![7]).toBe('cos_cache');
      const attrs = Object.fromEntries(n.attribute!.map((a) => [a.name, a.type === 2 ? Number(a.i) : a.f]));
      expect(attrs.do_rotary).toBe(1);
      expect(attrs.num_heads).toBe(4);
      expect(attrs.kv_num_heads).toBe(2);
    }
    expect(model.graph!.node!.some((n) => n.opType === 'Softmax')).toBe(false);
  });
});
