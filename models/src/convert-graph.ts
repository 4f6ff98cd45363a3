/**
 * Graph helpers shared by the converters (`convert-*.ts`): find the constant weight of a MatMul and drop
 * nodes and initializers nothing reads any more.
 */
import onnxProto from 'onnx-proto';
import { DT, type ReadTensor } from './onnx-builder.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.IModelProto;
/** A decoded node: protobufjs always fills repeated fields. */
export type NodeProto = onnxProto.onnx.INodeProto & { input: string[]; output: string[]; attribute: onnxProto.onnx.IAttributeProto[] };
/** A decoded graph: protobufjs always fills repeated fields. */
export interface GraphProto {
  node: NodeProto[];
  initializer: onnxProto.onnx.ITensorProto[];
  input: onnxProto.onnx.IValueInfoProto[];
  output: onnxProto.onnx.IValueInfoProto[];
  valueInfo: onnxProto.onnx.IValueInfoProto[];
}

/** The graph of a decoded model. */
export function graphOf(model: ModelProto): GraphProto {
  if (!model.graph) throw new Error('ONNX model has no graph.');
  return model.graph as GraphProto;
}

/** A MatMul's constant right operand as the (N, K) matrix of the quantizers (row n = output feature n). */
export interface MatMulWeight {
  /** (N, K) row-major. */
  weight: Float32Array;
  n: number;
  k: number;
}

/**
 * The weight of `MatMul(x, B)` when B is a 2-D float initializer [K, N] (Optimum exports) or
 * `Transpose(perm [1, 0])` of an initializer [N, K] (HF layout, as the TS writer stores it); else undefined.
 */
export function matMulWeight(node: NodeProto, tensors: Map<string, ReadTensor>, producer: Map<string, NodeProto>): MatMulWeight | undefined {
  if (node.opType !== 'MatMul' || node.domain) return undefined;
  const b = node.input[1];
  const direct = tensors.get(b);
  if (direct?.dataType === DT.FLOAT && direct.dims.length === 2) {
    const [k, n] = direct.dims;
    const src = direct.data as Float32Array;
    const weight = new Float32Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) weight[j * k + i] = src[i * n + j];
    return { weight, n, k };
  }
  const t = producer.get(b);
  if (t?.opType !== 'Transpose') return undefined;
  const perm = t.attribute.find((a) => a.name === 'perm')?.ints?.map(Number);
  const w = tensors.get(t.input[0]);
  if (!w || w.dataType !== DT.FLOAT || w.dims.length !== 2 || (perm && !(perm[0] === 1 && perm[1] === 0))) return undefined;
  return { weight: w.data as Float32Array, n: w.dims[0], k: w.dims[1] };
}

/** Producer node of every tensor. */
export function producers(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const node of graph.node) for (const o of node.output) map.set(o, node);
  return map;
}

/** Removes nodes whose outputs nobody reads (transitively) and initializers no node reads. */
export function pruneUnused(graph: GraphProto): void {
  const outputs = new Set(graph.output.map((o) => o.name as string));
  for (;;) {
    const read = new Set<string>(outputs);
    for (const node of graph.node) for (const i of node.input) read.add(i);
    const before = graph.node.length;
    graph.node = graph.node.filter((node) => node.output.some((o) => read.has(o)));
    if (graph.node.length === before) {
      graph.initializer = graph.initializer.filter((t) => read.has(t.name as string));
      return;
    }
  }
}

/** Adds `domain` to the model's opset imports if missing. */
export function ensureOpset(model: ModelProto, domain: string, version: number): void {
  model.opsetImport ??= [];
  if (!model.opsetImport.some((o) => (o.domain ?? '') === domain)) model.opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version }));
}
