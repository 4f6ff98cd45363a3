import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type NodeProto = InstanceType<typeof onnx.NodeProto>;

/** Fused attention operators found in exports (com.microsoft contrib ops, ONNX opset 23 `Attention`). */
const FUSED_OPS = new Set([
  'GroupQueryAttention',
  'MultiHeadAttention',
  'Attention',
  'PackedAttention',
  'PackedMultiHeadAttention',
  'SparseAttention',
  'PagedAttention',
  'DecoderMaskedMultiHeadAttention',
]);

/** One fused attention node, read without running anything. */
export interface FusedAttentionNode {
  /** Layer from the `layers.N` part of the node name, else undefined. */
  layer?: number;
  node: string;
  /** `domain.opType`, e.g. `com.microsoft.GroupQueryAttention`. */
  op: string;
  opType: string;
  numHeads?: number;
  kvNumHeads?: number;
  /** Q, K and V arrive as one packed input (GQA / MHA with an empty key input). */
  packedQkv: boolean;
  /** GroupQueryAttention: whether input 9 (`position_ids`) is wired; without it GQA derives positions from the cache length. */
  positionIdsWired?: boolean;
  /** GroupQueryAttention `do_rotary`. */
  doRotary?: boolean;
  /** Where the rotary cos/sin come from: graph initializers, tensors computed in the graph, or none. */
  rotaryCache?: 'initializer' | 'computed' | 'none';
  /** GroupQueryAttention `local_window_size` (sliding window), when ≥ 0. */
  localWindowSize?: number;
  /** GroupQueryAttention `softcap`, when > 0. */
  softcap?: number;
}

function attr(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  if (!a) return undefined;
  if (a.type === onnx.AttributeProto.AttributeType.FLOAT) return a.f ?? undefined;
  return typeof a.i === 'number' ? a.i : Number(a.i);
}

/** Every fused attention node of `graph`, in graph order (the runtime handles GroupQueryAttention only). */
export function findFusedAttention(graph: GraphProto): FusedAttentionNode[] {
  const initializers = new Set(graph.initializer.map((t) => t.name as string));
  const out: FusedAttentionNode[] = [];
  for (const node of graph.node as NodeProto[]) {
    const opType = node.opType ?? '';
    if (!FUSED_OPS.has(opType)) continue;
    const name = node.name ?? '';
    const m = /layers?[._/](\d+)(?:\b|[._/])/.exec(name);
    const input = (i: number) => node.input[i] ?? '';
    const entry: FusedAttentionNode = {
      ...(m ? { layer: Number(m[1]) } : {}),
      node: name,
      op: `${node.domain || 'ai.onnx'}.${opType}`,
      opType,
      packedQkv: (opType === 'GroupQueryAttention' || opType === 'MultiHeadAttention') && input(1) === '',
    };
    const heads = attr(node, 'num_heads') ?? attr(node, 'q_num_heads');
    if (heads !== undefined) entry.numHeads = heads;
    const kvHeads = attr(node, 'kv_num_heads');
    if (kvHeads !== undefined) entry.kvNumHeads = kvHeads;
    if (opType === 'GroupQueryAttention') {
      entry.positionIdsWired = input(9) !== '';
      entry.doRotary = attr(node, 'do_rotary') === 1;
      const cos = input(7);
      entry.rotaryCache = cos === '' ? 'none' : initializers.has(cos) ? 'initializer' : 'computed';
      const window = attr(node, 'local_window_size');
      if (window !== undefined && window >= 0) entry.localWindowSize = window;
      const softcap = attr(node, 'softcap');
      if (softcap !== undefined && softcap > 0) entry.softcap = softcap;
    }
    out.push(entry);
  }
  return out;
}
