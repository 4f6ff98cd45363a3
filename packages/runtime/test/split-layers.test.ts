// splitLayers on a hand-built two-layer graph: which node lands in which segment, and that the segments run
// together compute what the whole graph computes.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { splitLayers } from '../src/graph/split-layers.js';
import { LayeredSession } from '../src/layered-session.js';

const { onnx } = onnxProto;
const F = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const node = (opType: string, input: string[], output: string[], attribute: object[] = []) => onnx.NodeProto.create({ opType, input, output, name: output[0], attribute });
const floats = (name: string, dims: number[], values: number[]) => onnx.TensorProto.create({ name, dataType: F, dims, floatData: values });
const ints = (name: string, values: number[]) => onnx.TensorProto.create({ name, dataType: I64, dims: [values.length], int64Data: values });
const io = (name: string, elemType: number) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType } } });

// 128 × 128 float32 = 64 KiB: the size from which a weight is never copied into several segments.
const H = 128;
const diagonal = (value: number) => Array.from({ length: H * H }, (_, i) => (i % (H + 1) === 0 ? value : 0));

/**
 * Hidden size H. Layer l: k = h · Transpose(W_l) (a weight transposed in the graph, as many exporters write it), present =
 * Concat(past, k) for key and value, h' = h + mean over positions of present.key. The logits are layer 1's h'.
 */
function twoLayerModel(): InstanceType<typeof onnx.ModelProto> {
  const nodes = [node('Gather', ['E', 'input_ids'], ['h0'])];
  for (const l of [0, 1]) {
    const h = `h${l}`;
    nodes.push(
      node('Transpose', [`W${l}`], [`Wt${l}`]),
      node('MatMul', [h, `Wt${l}`], [`k${l}`]),
      node('Unsqueeze', [`k${l}`, 'axis1'], [`k${l}u`]),
      node('Concat', [`past_key_values.${l}.key`, `k${l}u`], [`present.${l}.key`], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 2 }]),
      node('Concat', [`past_key_values.${l}.value`, `k${l}u`], [`present.${l}.value`], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 2 }]),
      node('ReduceMean', [`present.${l}.key`, 'axis2'], [`m${l}`], [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]),
      node('Add', [h, `m${l}`], [l === 0 ? 'h1' : 'logits']),
    );
  }
  const graph = onnx.GraphProto.create({
    name: 'two_layers',
    node: nodes,
    initializer: [
      floats('E', [4, H], Array.from({ length: 4 * H }, (_, i) => Math.floor(i / H) + 1)),
      floats('W0', [H, H], diagonal(2)),
      floats('W1', [H, H], diagonal(3)),
      ints('axis1', [1]),
      ints('axis2', [2]),
    ],
    input: [io('input_ids', I64), ...[0, 1].flatMap((l) => [io(`past_key_values.${l}.key`, F), io(`past_key_values.${l}.value`, F)])],
    output: [io('logits', F), ...[0, 1].flatMap((l) => [io(`present.${l}.key`, F), io(`present.${l}.value`, F)])],
  });
  return onnx.ModelProto.create({ irVersion: 8, graph, opsetImport: [{ domain: '', version: 18 }] });
}

describe('splitLayers', () => {
  it('puts a weight transform with the segment that reads it, never in the prelude’s outputs', () => {
    const { segments } = splitLayers(twoLayerModel(), 2);
    expect(segments.map((s) => s.layer)).toEqual([-1, 0, 1]);
    const [prelude, layer0, layer1] = segments;
    // The prelude embeds the tokens and projects layer 0's key: it reads no past.
    expect(prelude.inputs).toEqual(['input_ids']);
    // Layer 0 attends over its cache and projects layer 1's key (k1 reads h1, which read past 0); W1's
    // transpose goes with that MatMul instead of travelling out of the prelude on every step.
    const nodesOf = (bytes: Uint8Array) => (onnx.ModelProto.decode(bytes).graph?.node ?? []).map((n) => n.name);
    expect(nodesOf(prelude.bytes)).toEqual(['h0', 'Wt0', 'k0', 'k0u']);
    expect(nodesOf(layer0.bytes)).toEqual(['present.0.key', 'present.0.value', 'm0', 'h1', 'Wt1', 'k1', 'k1u']);
    expect(nodesOf(layer1.bytes)).toEqual(['present.1.key', 'present.1.value', 'm1', 'logits']);
    for (const s of segments) for (const name of [...s.inputs, ...s.outputs]) expect(name).not.toMatch(/^Wt/);
    expect(prelude.outputs.sort()).toEqual(['h0', 'k0u']);
    expect(layer0.outputs.sort()).toEqual(['h1', 'k1u', 'present.0.key', 'present.0.value']);
  });

  it('runs as segments to the same values as the whole graph (hand-computed)', async () => {
    const model = twoLayerModel();
    const { segments } = splitLayers(model, 2);
    const layered = await LayeredSession.create(ort, segments, {}, {
      inputs: ['input_ids', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value'],
      outputs: ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value'],
    });
    try {
      const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, 1, 0, H]);
      const out = await layered.run(
        { input_ids: new ort.Tensor('int64', BigInt64Array.from([1n]), [1, 1]), 'past_key_values.0.key': empty(), 'past_key_values.0.value': empty(), 'past_key_values.1.key': empty(), 'past_key_values.1.value': empty() },
        { logits: null, 'present.1.key': null },
      );
      // h0 = E[1] = 2 everywhere; k0 = h0 · (2I)ᵀ = 4; with no past the mean of present.0.key is k0, so
      // h1 = 6; k1 = h1 · (3I)ᵀ = 18; logits = h1 + k1 = 24.
      expect(Array.from(out['present.1.key'].data as Float32Array)).toEqual(new Array(H).fill(18));
      expect(Array.from(out.logits.data as Float32Array)).toEqual(new Array(H).fill(24));
    } finally {
      await layered.release();
    }
  });
});
