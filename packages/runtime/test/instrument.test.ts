import { readFileSync } from 'node:fs';
import { GraphPatternError, UnsupportedCapabilityError } from '@draft/core';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { instrumentGraph } from '../src/index.js';
import { TINY_QWEN2_GQA, TORCH_LLAMA } from './helpers.js';

const { onnx } = onnxProto;

const scalar = (name: string, value: number) => onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [value] });
const node = (opType: string, input: string[], output: string[], name: string) => onnx.NodeProto.create({ opType, input, output, name });

/** One attention layer whose query is scaled BEFORE the Q·Kᵀ MatMul, with `scaleOp` ('Mul' | 'Div'). */
function preScaledGraph(scaleOp: 'Mul' | 'Div', sqrtChain: boolean): Uint8Array {
  const nodes = [
    node('Identity', ['q_in'], ['q_rope'], '/model/layers.0/self_attn/rope'),
    node('Transpose', ['k_in'], ['k_t'], '/model/layers.0/self_attn/Transpose'),
  ];
  const initializer = [];
  let scale = 'scale';
  if (sqrtChain) {
    // scale = Sqrt(Constant): constant-foldable but not an initializer.
    nodes.push(onnx.NodeProto.create({ opType: 'Constant', output: ['c16'], name: 'c', attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: scalar('', 16) })] }));
    nodes.push(node('Sqrt', ['c16'], ['scale'], 'sqrt'));
  } else {
    initializer.push(scalar('scale', scaleOp === 'Mul' ? 0.25 : 4));
  }
  if (scaleOp === 'Mul' && sqrtChain) scale = 'scale';
  nodes.push(
    node(scaleOp, ['q_rope', scale], ['q_scaled'], '/model/layers.0/self_attn/scale_q'),
    node('MatMul', ['q_scaled', 'k_t'], ['scores'], '/model/layers.0/self_attn/MatMul'),
    node('Add', ['scores', 'mask'], ['masked'], '/model/layers.0/self_attn/Add'),
    node('Softmax', ['masked'], ['probs'], '/model/layers.0/self_attn/Softmax'),
  );
  const io = (name: string) => onnx.ValueInfoProto.create({ name });
  const graph = onnx.GraphProto.create({ node: nodes, initializer, input: [io('q_in'), io('k_in'), io('mask')], output: [io('probs')], name: 'g' });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, graph, opsetImport: [{ domain: '', version: 17 }] })).finish();
}

describe('instrumentGraph', () => {
  it.each([
    ['Mul', false],
    ['Div', false],
    ['Div', true],
  ] as const)('captures the unscaled query when Q is scaled before the MatMul (%s, via Sqrt(Constant): %s)', (op, sqrt) => {
    const g = instrumentGraph(preScaledGraph(op, sqrt), { numLayers: 1, headDim: 16, path: 'x.onnx' });
    expect(g.pattern).toBe('decomposed');
    expect(g.captures).toMatchObject([{ layer: 0, kind: 'decomposed', output: 'q_rope' }]);
    expect(g.outputNames).toContain('q_rope');
  });

  it('torch export: query operand of MatMul (scale applied to the scores)', () => {
    const g = instrumentGraph(readFileSync(`${TORCH_LLAMA}/onnx/model.onnx`), { numLayers: 2, headDim: 16, path: 'torch' });
    expect(g.captures.map((c) => [c.layer, c.output, c.node])).toEqual([
      [0, '/layers.0/self_attn/Add_output_0', '/layers.0/self_attn/MatMul'],
      [1, '/layers.1/self_attn/Add_output_0', '/layers.1/self_attn/MatMul'],
    ]);
  });

  it('GroupQueryAttention: query input, rotary attributes and cos/sin caches', () => {
    const g = instrumentGraph(readFileSync(`${TINY_QWEN2_GQA}/onnx/model.onnx`), { numLayers: 2, headDim: 16, path: 'gqa' });
    expect(g.pattern).toBe('gqa');
    const c = g.captures[1];
    expect(c).toMatchObject({ layer: 1, kind: 'gqa', packed: false, numHeads: 4, kvNumHeads: 2, doRotary: true, interleaved: false, rotaryDim: 16 });
    if (c.kind === 'gqa') expect(c.cosCache?.length).toBe(2048 * 8);
  });

  it('refuses a graph whose position_ids input nothing reads (positions would follow the cache length)', () => {
    const model = onnx.ModelProto.decode(preScaledGraph('Mul', false));
    (model.graph as InstanceType<typeof onnx.GraphProto>).input.push(onnx.ValueInfoProto.create({ name: 'position_ids' }));
    const bytes = onnx.ModelProto.encode(model).finish();
    expect(() => instrumentGraph(bytes, { numLayers: 1, headDim: 16, path: 'x.onnx' })).toThrow(UnsupportedCapabilityError);
    expect(() => instrumentGraph(bytes, { numLayers: 1, headDim: 16, path: 'x.onnx' })).toThrow(/no node reads the 'position_ids' input/);
  });

  it('names com.microsoft.Attention (packed weights) and the Softmax nodes it looked at when it finds no attention', () => {
    const io = (name: string) => onnx.ValueInfoProto.create({ name });
    const packed = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      graph: onnx.GraphProto.create({
        name: 'bert',
        node: [onnx.NodeProto.create({ opType: 'Attention', domain: 'com.microsoft', input: ['x', 'w', 'b'], output: ['y', 'present'], name: '/layers.0/attn/Attention' })],
        input: [io('x'), io('w'), io('b')],
        output: [io('y')],
      }),
    });
    expect(() => instrumentGraph(onnx.ModelProto.encode(packed).finish(), { numLayers: 1, headDim: 16, path: 'p.onnx' })).toThrow(/'\/layers.0\/attn\/Attention' is com.microsoft.Attention/);
    const noScores = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: onnx.GraphProto.create({
        name: 'cls',
        node: [onnx.NodeProto.create({ opType: 'Softmax', input: ['x'], output: ['y'], name: '/head/Softmax' })],
        input: [io('x')],
        output: [io('y')],
      }),
    });
    expect(() => instrumentGraph(onnx.ModelProto.encode(noScores).finish(), { numLayers: 1, headDim: 16, path: 's.onnx' })).toThrow(/looked at Softmax '\/head\/Softmax'/);
  });

  it('rejects a layer-count mismatch and graphs without attention', () => {
    expect(() => instrumentGraph(preScaledGraph('Mul', false), { numLayers: 2, headDim: 16, path: 'x' })).toThrow(GraphPatternError);
    expect(() => instrumentGraph(readFileSync(`${TORCH_LLAMA}/onnx/model.onnx`), { numLayers: 3, headDim: 16, path: 'x' })).toThrow(/Found 2 attention/);
  });
});
