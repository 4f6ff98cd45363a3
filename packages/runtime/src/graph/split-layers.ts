import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type ModelProto = InstanceType<typeof onnx.ModelProto>;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type ValueInfoProto = InstanceType<typeof onnx.ValueInfoProto>;

const T = onnx.TensorProto.DataType;

/** One piece of a decoder graph split at its layers, as a model of its own. */
export interface LayerSegment {
  /** -1: the prelude (embedding and whatever runs before layer 0's cache is read); l: layer l's segment. */
  layer: number;
  bytes: Uint8Array;
  inputs: string[];
  outputs: string[];
  /**
   * Past inputs of other layers that this segment reads only through `Shape` (a mask built from
   * `past_key_values.0.key`'s length): fed with this layer's past of the same role (same length).
   */
  shapeOnlyPasts: Map<string, string>;
}

export interface SplitGraph {
  segments: LayerSegment[];
}

/** Why a graph cannot be split (the runtime then keeps one whole-graph session). */
export class GraphSplitError extends Error {}

/** Initializers at least this large are never copied into several segments (weights, RoPE tables). */
const SHARED_INITIALIZER_BYTES = 64 * 1024;

const BOOL_OPS = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);

function pastOf(name: string): { layer: number; role: string } | undefined {
  const m = /^past_key_values\.(\d+)\.(key|value)$/.exec(name);
  return m ? { layer: Number(m[1]), role: m[2] } : undefined;
}

function initializerBytes(t: TensorProto): number {
  const dims = (t.dims ?? []).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const size = t.dataType === T.FLOAT16 || t.dataType === T.BFLOAT16 ? 2 : t.dataType === T.INT8 || t.dataType === T.UINT8 || t.dataType === T.BOOL ? 1 : t.dataType === 22 || t.dataType === 21 ? 0.5 : t.dataType === T.DOUBLE || t.dataType === T.INT64 ? 8 : 4;
  return count * size;
}

/**
 * Splits a decoder graph with the transformers.js KV contract into a prelude and one segment per layer, so the
 * runtime can run the model layer by layer (layer-wise prefill with compression in the loop) without keeping a
 * second copy of the weights.
 *
 * A node belongs to the segment of the highest layer whose past KV it reads data from (shape reads do not
 * count): layer l's segment holds its attention over the cache, its MLP and the next layer's projections up to
 * reading the next cache. Nodes that read no past but the token ids (embedding, layer 0's projections) form the
 * prelude. Nodes that read neither (the causal mask, sequence lengths built from `attention_mask`, RoPE tables
 * gathered by `position_ids`) are recomputed in every segment that needs them, unless they read a large
 * initializer (then they run once in the prelude and their output travels): per-chunk masks are never kept
 * across layers. Nodes that read only weights (a MatMul weight's Transpose) go with their readers, where ORT
 * folds them at load. Tensors produced in one segment and read in another become outputs and inputs.
 */
export function splitLayers(model: ModelProto, numLayers: number): SplitGraph {
  const graph = model.graph as GraphProto;
  const nodes = graph.node as NodeProto[];
  for (const node of nodes) {
    if ((node.attribute ?? []).some((a) => a.g || (a.graphs?.length ?? 0) > 0)) {
      throw new GraphSplitError(`node '${node.name}' (${node.opType}) has a subgraph attribute`);
    }
  }
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer as TensorProto[]) initializers.set(t.name as string, t);
  const graphInputs = new Map<string, ValueInfoProto>();
  for (const v of graph.input as ValueInfoProto[]) graphInputs.set(v.name as string, v);
  const graphOutputs = new Map<string, ValueInfoProto>();
  for (const v of graph.output as ValueInfoProto[]) graphOutputs.set(v.name as string, v);

  // Per tensor: highest layer whose past it reads data from (-1: none), and whether it reads the token ids.
  const layerOf = new Map<string, number>();
  const tokenOf = new Map<string, boolean>();
  const elemType = new Map<string, number>();
  for (const [name, v] of graphInputs) {
    const past = pastOf(name);
    layerOf.set(name, past ? past.layer : -1);
    tokenOf.set(name, name === 'input_ids' || name === 'inputs_embeds');
    elemType.set(name, v.type?.tensorType?.elemType ?? 0);
  }
  for (const [name, t] of initializers) if (!graphInputs.has(name)) elemType.set(name, t.dataType ?? 0);
  const layerOfNode: number[] = [];
  const tokenOfNode: boolean[] = [];
  // Whether a tensor depends on any graph input; those that do not are weights (or folded from them).
  const variable = new Map<string, boolean>();
  for (const name of graphInputs.keys()) variable.set(name, true);
  const constantNode: boolean[] = [];
  for (const node of nodes) {
    const isVariable = node.input.some((i) => i !== '' && (variable.get(i) ?? false));
    constantNode.push(!isVariable);
    for (const o of node.output) variable.set(o, isVariable);
    const shapeOnly = node.opType === 'Shape' || node.opType === 'Size';
    let layer = -1;
    let token = false;
    for (const i of node.input) {
      if (!i) continue;
      if (!shapeOnly) layer = Math.max(layer, layerOf.get(i) ?? -1);
      token ||= !shapeOnly && (tokenOf.get(i) ?? false);
    }
    layerOfNode.push(layer);
    tokenOfNode.push(token);
    const types = outputTypes(node, elemType);
    node.output.forEach((o, k) => {
      layerOf.set(o, layer);
      tokenOf.set(o, token);
      if (types[k] !== undefined) elemType.set(o, types[k] as number);
    });
  }

  // Segment of each node: -1 prelude, l ≥ 0 a layer, undefined = recomputed wherever it is read.
  const segmentOf: (number | undefined)[] = nodes.map((node, i) => {
    // A weight transform (Transpose of a MatMul weight, a dequantised table) belongs with its reader: ORT
    // folds it into that session's initializers at load. Run in the prelude it would copy every weight out
    // on every step.
    if (constantNode[i]) return undefined;
    if (layerOfNode[i] >= 0) return layerOfNode[i];
    if (tokenOfNode[i]) return -1;
    const heavy = node.input.some((name) => {
      const t = initializers.get(name);
      return t !== undefined && initializerBytes(t) >= SHARED_INITIALIZER_BYTES;
    });
    return heavy ? -1 : undefined;
  });
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output) producer.set(o, i);
  });
  for (let l = 0; l < numLayers; l++) {
    const produces = (name: string) => {
      const p = producer.get(name);
      return p !== undefined && segmentOf[p] === l;
    };
    if (!produces(`present.${l}.key`) || !produces(`present.${l}.value`)) {
      throw new GraphSplitError(`layer ${l}'s presents are not computed from its own past alone`);
    }
  }

  // Nodes per segment, with the recomputed ones they read pulled in (in graph order).
  const members: Set<number>[] = Array.from({ length: numLayers + 1 }, () => new Set<number>());
  const pull = (set: Set<number>, index: number) => {
    if (set.has(index)) return;
    set.add(index);
    for (const name of nodes[index].input) {
      const p = producer.get(name);
      if (p !== undefined && segmentOf[p] === undefined) pull(set, p);
    }
  };
  nodes.forEach((_, i) => {
    const seg = segmentOf[i];
    if (seg !== undefined) pull(members[seg + 1], i);
  });

  const readers = new Map<string, Set<number>>();
  members.forEach((set, s) => {
    for (const i of set)
      for (const name of nodes[i].input) {
        if (!name) continue;
        if (!readers.has(name)) readers.set(name, new Set());
        readers.get(name)?.add(s);
      }
  });

  const segments: LayerSegment[] = [];
  members.forEach((set, s) => {
    const layer = s - 1;
    const order = [...set].sort((a, b) => a - b);
    const produced = new Set<string>();
    for (const i of order) for (const o of nodes[i].output) if (o) produced.add(o);
    const inputs: ValueInfoProto[] = [];
    const inputNames: string[] = [];
    const usedInits = new Set<string>();
    const shapeOnlyPasts = new Map<string, string>();
    const seen = new Set<string>();
    for (const i of order) {
      for (const name of nodes[i].input) {
        if (!name || produced.has(name) || seen.has(name)) continue;
        seen.add(name);
        if (initializers.has(name) && !graphInputs.has(name)) {
          usedInits.add(name);
          continue;
        }
        const graphInput = graphInputs.get(name);
        if (graphInput) {
          const past = pastOf(name);
          if (past && past.layer !== layer) {
            if (layer < 0) throw new GraphSplitError(`the prelude reads '${name}'`);
            shapeOnlyPasts.set(name, `past_key_values.${layer}.${past.role}`);
          }
          inputs.push(graphInput);
          inputNames.push(name);
          continue;
        }
        const type = elemType.get(name);
        if (!type) throw new GraphSplitError(`the element type of '${name}' (read across layers) is unknown`);
        inputs.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: type } } }));
        inputNames.push(name);
      }
    }
    const outputs: ValueInfoProto[] = [];
    const outputNames: string[] = [];
    for (const name of produced) {
      const external = [...(readers.get(name) ?? [])].some((r) => r !== s);
      const graphOutput = graphOutputs.get(name);
      // A recomputed tensor is produced where it is read: it never travels.
      const p = producer.get(name) as number;
      if (graphOutput && segmentOf[p] !== undefined) {
        outputs.push(graphOutput);
        outputNames.push(name);
      } else if (external && segmentOf[p] !== undefined) {
        const type = elemType.get(name);
        if (!type) throw new GraphSplitError(`the element type of '${name}' (read across layers) is unknown`);
        outputs.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: type } } }));
        outputNames.push(name);
      }
    }
    const sub = onnx.GraphProto.create({
      name: `${graph.name ?? 'graph'}_${layer < 0 ? 'prelude' : `layer${layer}`}`,
      node: order.map((i) => nodes[i]),
      initializer: [...usedInits].map((n) => initializers.get(n) as TensorProto),
      input: inputs,
      output: outputs,
    });
    const m = onnx.ModelProto.create({
      irVersion: model.irVersion,
      opsetImport: model.opsetImport,
      producerName: model.producerName,
      graph: sub,
    });
    segments.push({ layer, bytes: onnx.ModelProto.encode(m).finish(), inputs: inputNames, outputs: outputNames, shapeOnlyPasts });
  });
  for (const name of graphOutputs.keys()) {
    if (!segments.some((seg) => seg.outputs.includes(name))) throw new GraphSplitError(`graph output '${name}' is not produced by any segment`);
  }
  return { segments };
}

/** Element types of a node's outputs where the op fixes them (enough for the tensors that cross segments). */
function outputTypes(node: NodeProto, known: Map<string, number>): (number | undefined)[] {
  const input = (k: number) => known.get(node.input[k] ?? '');
  const attrInt = (name: string) => {
    const a = (node.attribute ?? []).find((x) => x.name === name);
    return a?.i === undefined || a.i === null ? undefined : Number(a.i);
  };
  const op = node.opType;
  if (INT64_OPS.has(op)) return [T.INT64];
  if (BOOL_OPS.has(op)) return [T.BOOL];
  if (op === 'Cast') return [attrInt('to')];
  if (op === 'CastLike') return [input(1)];
  if (op === 'Where') return [input(1) ?? input(2)];
  if (op === 'TopK') return [input(0), T.INT64];
  if (op === 'Constant') {
    const a = (node.attribute ?? []).find((x) => x.name === 'value');
    if (a?.t) return [a.t.dataType ?? undefined];
    if ((node.attribute ?? []).some((x) => x.name === 'value_float' || x.name === 'value_floats')) return [T.FLOAT];
    return [T.INT64];
  }
  if (op === 'ConstantOfShape') {
    const a = (node.attribute ?? []).find((x) => x.name === 'value');
    return [a?.t?.dataType ?? T.FLOAT];
  }
  if (op === 'DequantizeLinear') return [input(1)];
  if (op === 'QuantizeLinear') return [input(2) ?? T.UINT8];
  if (op === 'GroupQueryAttention' || op === 'MultiHeadAttention' || op === 'Attention') return node.output.map((_, k) => (k === 0 ? input(0) : input(3)));
  // Most remaining ops (arithmetic, MatMul, shape ops, Softmax, Gather on data, RotaryEmbedding, MatMulNBits,
  // normalisations) give the element type of their first input.
  const first = op === 'Gather' || op === 'GatherElements' || op === 'GatherND' ? input(0) : input(0);
  return node.output.map(() => first);
}
