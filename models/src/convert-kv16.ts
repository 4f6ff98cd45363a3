/**
 * Gives an fp32-compute graph float16 past/present KV and logits I/O (Cast nodes at the boundary), the I/O
 * of transformers.js q4f16 / fp16 exports, for runtimes whose CPU provider lacks float16 kernels: the cache
 * is stored and fed in float16 while every op computes in float32.
 */
import onnxProto from 'onnx-proto';
import { graphOf, type ModelProto } from './convert-graph.js';
import { FLOAT16 } from './convert-fp16.js';
import { DT } from './onnx-builder.js';

const { onnx } = onnxProto;

const isBoundary = (name: string) => name === 'logits' || /^(past_key_values|present)\.\d+\.(key|value)$/.test(name);

/** Rewrites `model` in place and returns its serialization. */
export function withFloat16KvIo(model: ModelProto): Uint8Array {
  const graph = graphOf(model);
  const cast = (input: string, output: string, to: number) =>
    onnx.NodeProto.create({ name: `${output}/Cast`, opType: 'Cast', input: [input], output: [output], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }] });
  const head: InstanceType<typeof onnx.NodeProto>[] = [];
  const tail: InstanceType<typeof onnx.NodeProto>[] = [];
  for (const input of graph.input) {
    const type = input.type?.tensorType;
    if (!type || type.elemType !== DT.FLOAT || !isBoundary(input.name as string)) continue;
    const inner = `${input.name}/float32`;
    for (const node of graph.node) node.input = node.input.map((i) => (i === input.name ? inner : i));
    head.push(cast(input.name as string, inner, DT.FLOAT));
    type.elemType = FLOAT16;
  }
  for (const output of graph.output) {
    const type = output.type?.tensorType;
    if (!type || type.elemType !== DT.FLOAT || !isBoundary(output.name as string)) continue;
    const inner = `${output.name}/float32`;
    for (const node of graph.node) {
      node.output = node.output.map((o) => (o === output.name ? inner : o));
      node.input = node.input.map((i) => (i === output.name ? inner : i));
    }
    tail.push(cast(inner, output.name as string, FLOAT16));
    type.elemType = FLOAT16;
  }
  graph.node = [...head, ...graph.node, ...tail];
  return onnx.ModelProto.encode(model).finish();
}
