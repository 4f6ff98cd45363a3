/**
 * Rewrites decomposed grouped-query attention so that no step materialises `repeat_kv`.
 *
 * Why: exports (torch's Llama, our writer) expand K and V from numKvHeads to numHeads before the two attention
 * MatMuls (Unsqueeze → Expand → Reshape), writing group × the whole cache per layer on every decode step; in
 * an ORT profile of the perf model at 2K that Expand cost as much as the attention MatMuls themselves. Grouping
 * the query heads instead, Q [B, Hq, S, d] → [B, Hkv, g·S, d] (query head h reads KV head ⌊h / g⌋, so the
 * memory order is unchanged), multiplies each KV head once with g·S rows. The scores and the attention output
 * are reshaped back to [B, Hq, S, ·], so masks, Softmax, the key bias and query capture see the same tensors.
 * Layers whose chain is not recognised are left as they are.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;

export interface AttentionBlock {
  /** MatMul(Q, Kᵀ) producing the scores. */
  scores: NodeProto;
  softmax: NodeProto;
}

/** protobufjs decodes int64 fields as Long objects when long.js is present. */
const toInt = (v: unknown): number => (typeof v === 'number' ? v : Number(String(v)));

/** Reads a small int64 constant (initializer or Constant node), else undefined. */
function int64Constant(graph: GraphProto, producer: Map<string, NodeProto>, name: string): number[] | undefined {
  const fromTensor = (t: TensorProto | null | undefined): number[] | undefined => {
    if (!t) return undefined;
    if (t.int64Data && t.int64Data.length > 0) return t.int64Data.map(toInt);
    if (t.rawData && t.rawData.length > 0 && t.dataType === onnx.TensorProto.DataType.INT64) {
      const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
      return Array.from({ length: t.rawData.byteLength / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    }
    return undefined;
  };
  const init = graph.initializer.find((t) => t.name === name);
  if (init) return fromTensor(init as TensorProto);
  const node = producer.get(name);
  if (node?.opType === 'Constant') return fromTensor(node.attribute.find((a) => a.name === 'value')?.t as TensorProto | undefined);
  return undefined;
}

/** The un-expanded [B, Hkv, T, d] tensor behind Reshape(Expand(Unsqueeze(x, axis 2))), and the nodes of the chain. */
function repeatKvSource(graph: GraphProto, producer: Map<string, NodeProto>, name: string): { source: string; chain: NodeProto[] } | undefined {
  const reshape = producer.get(name);
  if (reshape?.opType !== 'Reshape') return undefined;
  const expand = producer.get(reshape.input[0]);
  if (expand?.opType !== 'Expand') return undefined;
  const unsqueeze = producer.get(expand.input[0]);
  if (unsqueeze?.opType !== 'Unsqueeze') return undefined;
  const axesAttr = unsqueeze.attribute.find((a) => a.name === 'axes');
  const axes = axesAttr ? (axesAttr.ints ?? []).map(toInt) : unsqueeze.input[1] ? int64Constant(graph, producer, unsqueeze.input[1]) : undefined;
  // Axis 2 of the 5-D result (−3 counts from the end).
  if (axes?.length !== 1 || (axes[0] !== 2 && axes[0] !== -3)) return undefined;
  return { source: unsqueeze.input[0], chain: [reshape, expand, unsqueeze] };
}

/**
 * Rewrites every recognised block in place; returns how many layers were rewritten. `keep` names tensors that
 * must stay produced (graph outputs, debug outputs).
 */
export function groupQueryHeads(graph: GraphProto, blocks: readonly AttentionBlock[], numHeads: number, numKvHeads: number, keep: ReadonlySet<string>): number {
  if (!(numKvHeads > 0 && numHeads > numKvHeads && numHeads % numKvHeads === 0)) return 0;
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node as NodeProto[]) for (const o of n.output) producer.set(o, n);
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node as NodeProto[]) for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);

  const toKv = 'draft_grouped_attention/shape_kv';
  const toQ = 'draft_grouped_attention/shape_q';
  // 0 copies the input's dimension (B, and T or d), −1 takes the rest: [B, Hq, S, x] ↔ [B, Hkv, g·S, x].
  const shape = (name: string, heads: number) =>
    onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [4], int64Data: [0, heads, -1, 0] });
  let rewritten = 0;
  for (const { scores, softmax } of blocks) {
    const transpose = producer.get(scores.input[1]);
    const perm = transpose?.attribute?.find((a) => a.name === 'perm')?.ints?.map(toInt);
    if (transpose?.opType !== 'Transpose' || perm?.join() !== '0,1,3,2') continue;
    const key = repeatKvSource(graph, producer, transpose.input[0]);
    // P·V, possibly behind a Cast / Identity / Dropout of the probabilities (torch exports cast them).
    let probs = softmax.output[0];
    for (let hop = 0; hop < 3 && !(consumers.get(probs) ?? []).some((n) => n.opType === 'MatMul'); hop++) {
      const only = consumers.get(probs) ?? [];
      if (only.length !== 1 || !['Cast', 'Identity', 'Dropout'].includes(only[0].opType as string)) break;
      probs = only[0].output[0];
    }
    const pv = (consumers.get(probs) ?? []).find((n) => n.opType === 'MatMul' && n.input[0] === probs);
    const value = pv ? repeatKvSource(graph, producer, pv.input[1]) : undefined;
    if (!key || !pv || !value) continue;
    const tag = scores.name || `grouped_${rewritten}`;
    const nodes = graph.node as NodeProto[];
    const qk = [
      onnx.NodeProto.create({ opType: 'Reshape', input: [scores.input[0], toKv], output: [`${tag}/draft_q_grouped`], name: `${tag}/draft_q_grouped` }),
      onnx.NodeProto.create({ opType: 'Transpose', input: [key.source], output: [`${tag}/draft_k_t`], name: `${tag}/draft_k_t`, attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 1, 3, 2] })] }),
      onnx.NodeProto.create({ opType: 'MatMul', input: [`${tag}/draft_q_grouped`, `${tag}/draft_k_t`], output: [`${tag}/draft_scores_grouped`], name: `${tag}/draft_scores_grouped` }),
      onnx.NodeProto.create({ opType: 'Reshape', input: [`${tag}/draft_scores_grouped`, toQ], output: [scores.output[0]], name: `${tag}/draft_scores` }),
    ];
    nodes.splice(nodes.indexOf(scores), 1, ...qk);
    const pvTag = pv.name || `${tag}/pv`;
    const av = [
      onnx.NodeProto.create({ opType: 'Reshape', input: [pv.input[0], toKv], output: [`${pvTag}/draft_p_grouped`], name: `${pvTag}/draft_p_grouped` }),
      onnx.NodeProto.create({ opType: 'MatMul', input: [`${pvTag}/draft_p_grouped`, value.source], output: [`${pvTag}/draft_out_grouped`], name: `${pvTag}/draft_out_grouped` }),
      onnx.NodeProto.create({ opType: 'Reshape', input: [`${pvTag}/draft_out_grouped`, toQ], output: [pv.output[0]], name: `${pvTag}/draft_out` }),
    ];
    nodes.splice(nodes.indexOf(pv), 1, ...av);
    rewritten++;
  }
  if (rewritten === 0) return 0;
  graph.initializer.push(shape(toKv, numKvHeads), shape(toQ, numHeads));
  // Drop what nobody reads any more: the repeat_kv chains and the constants / shape arithmetic that fed
  // them (ORT would still run them, and warns about every unused initializer on load).
  for (let changed = true; changed; ) {
    const used = new Set<string>(keep);
    for (const o of graph.output) used.add(o.name as string);
    for (const n of graph.node as NodeProto[]) for (const i of n.input) used.add(i);
    const before = graph.node.length;
    graph.node = (graph.node as NodeProto[]).filter((n) => n.output.some((o) => used.has(o)));
    changed = graph.node.length !== before;
  }
  const stillUsed = new Set<string>();
  for (const n of graph.node as NodeProto[]) for (const i of n.input) stillUsed.add(i);
  const graphInputs = new Set(graph.input.map((i) => i.name as string));
  graph.initializer = graph.initializer.filter((t) => stillUsed.has(t.name as string) || graphInputs.has(t.name as string));
  return rewritten;
}
