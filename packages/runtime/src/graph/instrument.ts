import { GraphPatternError, ModelLayoutError, UnsupportedCapabilityError } from '@draft/core';
import onnxProto from 'onnx-proto';
import { halfToFloat32 } from '../float16.js';
import { type AttentionBlock, groupQueryHeads } from './grouped-attention.js';

const { onnx } = onnxProto;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;

/**
 * Where a layer's post-RoPE queries come from.
 * - `decomposed`: `output` is the query operand of the Q·Kᵀ MatMul, shape [B, Hq, S, d] (captured before any
 *   scale applied to Q, so it is the plain post-RoPE query).
 * - `gqa`: `output` is the query input of com.microsoft.GroupQueryAttention, shape [B, S, Hq·d] (or the packed
 *   QKV [B, S, (Hq + 2·Hkv)·d] when `packed`); when `doRotary`, RoPE is applied by the runtime at the true
 *   positions with the node's cos/sin caches (`cosCache` (maxPositions, rotaryDim/2)) or `ropeTheta`.
 */
export type QueryCaptureSpec =
  | { layer: number; kind: 'decomposed'; output: string; node: string }
  | {
      layer: number;
      kind: 'gqa';
      output: string;
      node: string;
      packed: boolean;
      numHeads: number;
      kvNumHeads: number;
      doRotary: boolean;
      interleaved: boolean;
      cosCache?: Float32Array;
      sinCache?: Float32Array;
      /** Rotated dims (≤ headDim); the rest passes through. */
      rotaryDim: number;
      /**
       * How the node gets its rotary positions: `wired` (the export feeds its optional `position_ids` input),
       * `rewired` (it did not, so the instrumenter wired the graph's `position_ids` in; see
       * wirePositionIds), or `none` (no rotation inside the node: positions enter upstream).
       */
      positionIds: 'wired' | 'rewired' | 'none';
    }
  | {
      layer: number;
      /**
       * An attention op that does no rotation itself: com.microsoft.MultiHeadAttention or the ONNX opset-23
       * `Attention`. `output` is its query input, already post-RoPE: [B, S, Hq·d] or [B, Hq, S, d].
       */
      kind: 'fused';
      op: 'MultiHeadAttention' | 'Attention';
      output: string;
      node: string;
      numHeads: number;
    };

/**
 * The attention style of a graph: `decomposed` (MatMul → Softmax ops), `gqa` (com.microsoft.GroupQueryAttention,
 * plain or packed QKV, rotating inside or after RotaryEmbedding nodes), `mha` (com.microsoft.MultiHeadAttention)
 * or `attention` (the ONNX opset-23 Attention op).
 */
export type AttentionPattern = 'decomposed' | 'gqa' | 'mha' | 'attention';

export interface InstrumentedGraph {
  /** Serialized model with the capture outputs added as graph outputs. */
  bytes: Uint8Array;
  pattern: AttentionPattern;
  captures: QueryCaptureSpec[];
  /** Graph outputs added for debugging (present only when requested). */
  debugOutputs: string[];
  /**
   * With `keyBias`: per layer, the name of an added float input [1, numHeads, 1, total] added to the attention
   * scores right before the Softmax (0 = attend, −3.4e38 = masked). Lets every (layer, head) ignore its own
   * cache slots, which is how ragged caches are padded to one length.
   */
  keyBiasInputs?: string[];
  /** Decomposed layers whose repeat_kv was replaced by grouped query heads (`groupQueryHeads`). */
  groupedLayers: number;
  /**
   * Decomposed attention whose presents are `Concat(past, new, axis 2)`: per layer, the graph outputs added
   * for the new rows alone ([B, Hkv, n, d]). A decode step then fetches these instead of the presents and
   * writes them into a cache it keeps in place (the Node binding copies every fetched output).
   */
  newKvOutputs?: { key: string; value: string }[];
  inputNames: string[];
  outputNames: string[];
}

const PASS_THROUGH = new Set(['Add', 'Sub', 'Mul', 'Div', 'Where', 'Cast', 'Max', 'Min', 'Tanh', 'Identity', 'Clip']);

/** Float32 values of a float32 or float16 initializer; `readExternal` supplies the bytes of one stored as external data. */
export function tensorToFloat32(t: TensorProto, readExternal?: (t: TensorProto) => Uint8Array): Float32Array {
  if (t.floatData && t.floatData.length > 0) return Float32Array.from(t.floatData);
  const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL && readExternal ? readExternal(t) : undefined;
  const raw = external ?? t.rawData;
  if (!raw || raw.length === 0) return new Float32Array(0);
  // An aligned copy: raw data may start at any byte of the file.
  const copy = Uint8Array.from(raw);
  if (t.dataType === onnx.TensorProto.DataType.FLOAT) return new Float32Array(copy.buffer);
  // float16 graphs keep their RoPE tables in float16.
  if (t.dataType === onnx.TensorProto.DataType.FLOAT16) return halfToFloat32(new Uint16Array(copy.buffer));
  return new Float32Array(0);
}

/** Decodes an ONNX ModelProto; ModelLayoutError naming `path` when malformed. */
export function decodeModel(bytes: Uint8Array, path: string): InstanceType<typeof onnx.ModelProto> {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelLayoutError(`Cannot parse ONNX model ${path}: ${(cause as Error).message}`, { path, cause });
  }
}

function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  if (!a) return fallback;
  return typeof a.i === 'number' ? a.i : Number(a.i);
}

const ONNX_DOMAINS: Record<string, true> = { '': true, 'ai.onnx': true };

/**
 * Refuses a graph in which nothing reads `position_ids`: its positions would come from the cache length, which
 * is wrong as soon as a KV method compacts the cache (kept keys keep their positions; new tokens continue at n).
 */
function requirePositionConsumer(graph: InstanceType<typeof onnx.GraphProto>, path: string): void {
  if (!graph.input.some((i) => i.name === 'position_ids')) return; // the worker reports the missing input
  const read = (graph.node as NodeProto[]).some((n) => n.input.includes('position_ids'));
  if (!read) {
    throw new UnsupportedCapabilityError({
      capability: 'positionIds',
      component: 'loadModel',
      backend: path,
      message: `${path}: no node reads the 'position_ids' input, so rotary positions follow the cache length and would be wrong after any KV compaction; re-export with position_ids wired into the rotary embedding.`,
    });
  }
}

/** Index of GroupQueryAttention's optional `position_ids` input (com.microsoft, onnxruntime ≥ 1.20). */
const GQA_POSITION_IDS_INPUT = 9;

/**
 * Feeds the graph's `position_ids` into every rotating GroupQueryAttention node that lacks it, adding the
 * graph input when the export has none. Why: without that input GQA rotates new tokens at `seqlens_k` (the
 * cache length), which is the true position only while the cache holds every earlier token; after KV
 * compaction it would silently rotate at the wrong position. Returns the nodes it changed.
 */
function wirePositionIds(graph: InstanceType<typeof onnx.GraphProto>, nodes: readonly NodeProto[]): Set<NodeProto> {
  const changed = new Set<NodeProto>();
  const unwired = nodes.filter((n) => attrInt(n, 'do_rotary', 0) === 1 && (n.input[GQA_POSITION_IDS_INPUT] ?? '') === '');
  if (unwired.length === 0) return changed;
  const INT64 = onnx.TensorProto.DataType.INT64;
  const existing = graph.input.find((i) => i.name === 'position_ids');
  const source = 'position_ids';
  if (!existing) {
    graph.input.push(
      onnx.ValueInfoProto.create({
        name: 'position_ids',
        type: { tensorType: { elemType: INT64, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'sequence_length' }] } } },
      }),
    );
  } else if (existing.type?.tensorType && (existing.type.tensorType.elemType ?? INT64) !== INT64) {
    // GQA reads int64 positions and the runtime feeds int64: retype the input, cast back for its other readers.
    const declared = existing.type.tensorType.elemType as number;
    existing.type.tensorType.elemType = INT64;
    const narrowed = 'position_ids/draft_declared_type';
    for (const node of graph.node as NodeProto[]) node.input = node.input.map((i) => (i === 'position_ids' ? narrowed : i));
    graph.node.unshift(
      onnx.NodeProto.create({ opType: 'Cast', input: ['position_ids'], output: [narrowed], name: 'draft/position_ids/Cast', attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: declared }] }),
    );
  }
  for (const node of unwired) {
    while (node.input.length < GQA_POSITION_IDS_INPUT) node.input.push('');
    node.input[GQA_POSITION_IDS_INPUT] = source;
    changed.add(node);
  }
  return changed;
}

/**
 * Parses an ONNX decoder, finds each layer's attention and adds graph outputs exposing its post-RoPE
 * queries. Handles the decomposed pattern (MatMul → scale → mask → Softmax, as torch exports) and the fused
 * com.microsoft.GroupQueryAttention. Layers are ordered by the `layers.N` index in node names when every
 * attention has one, else by graph order.
 */
export function instrumentGraph(
  /** The serialized model, or one already decoded (it is modified). */
  source: Uint8Array | InstanceType<typeof onnx.ModelProto>,
  options: {
    numLayers: number;
    headDim: number;
    path: string;
    debugOutputs?: readonly string[];
    keyBias?: boolean;
    /**
     * Decomposed attention only: multiply grouped query heads with the un-expanded K and V instead of running
     * the export's repeat_kv (see grouped-attention.ts). Needs the head counts.
     */
    groupQueryHeads?: { numHeads: number; numKvHeads: number };
    /** Bytes of an initializer stored as external data (the RoPE tables GroupQueryAttention reads). */
    readExternal?: (t: TensorProto) => Uint8Array;
  },
): InstrumentedGraph {
  const model = source instanceof Uint8Array ? decodeModel(source, options.path) : source;
  const graph = model.graph as InstanceType<typeof onnx.GraphProto> | null;
  if (!graph) throw new ModelLayoutError(`ONNX model ${options.path} has no graph.`, { path: options.path });

  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer) initializers.set(t.name as string, t as TensorProto);
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node as NodeProto[]) for (const o of n.output) producer.set(o, n);
  const graphInputs = new Set(graph.input.map((i) => i.name as string));

  const constMemo = new Map<string, boolean>();
  const isConstant = (name: string, depth = 0): boolean => {
    if (name === '') return true;
    if (initializers.has(name) && !graphInputs.has(name)) return true;
    const cached = constMemo.get(name);
    if (cached !== undefined) return cached;
    const node = producer.get(name);
    let result = false;
    if (node && depth < 32) {
      result = node.opType === 'Constant' || (node.input.length > 0 && node.input.every((i) => isConstant(i, depth + 1)));
    }
    constMemo.set(name, result);
    return result;
  };

  // Walk back from a Softmax input through mask / scale / softcap ops to the Q·Kᵀ MatMul.
  const findScoresMatMul = (name: string, depth: number): NodeProto | undefined => {
    const node = producer.get(name);
    if (!node || depth > 6) return undefined;
    if (node.opType === 'MatMul') return isConstant(node.input[1]) || isConstant(node.input[0]) ? undefined : node;
    if (!PASS_THROUGH.has(node.opType)) return undefined;
    for (const input of node.input) {
      if (isConstant(input)) continue;
      const found = findScoresMatMul(input, depth + 1);
      if (found) return found;
    }
    return undefined;
  };

  const layerIndex = (node: NodeProto): number | undefined => {
    const m = /layers?[._/](\d+)(?:\b|[._/])/.exec(node.name ?? '');
    return m ? Number(m[1]) : undefined;
  };

  type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
  type Found = { node: NodeProto; spec: DistributiveOmit<QueryCaptureSpec, 'layer'> };
  const found: Found[] = [];
  const blocks: AttentionBlock[] = [];
  const gqaNodes = graph.node.filter((n) => n.opType === 'GroupQueryAttention') as NodeProto[];
  const mhaNodes = graph.node.filter((n) => n.opType === 'MultiHeadAttention' && n.domain === 'com.microsoft') as NodeProto[];
  const onnxAttentionNodes = graph.node.filter((n) => n.opType === 'Attention' && (n.domain ?? '') in ONNX_DOMAINS) as NodeProto[];
  const packedWeightAttention = graph.node.find((n) => n.opType === 'Attention' && n.domain === 'com.microsoft') as NodeProto | undefined;
  if (packedWeightAttention) {
    // BERT-style fused attention (weights inside the op, one `past` tensor): no per-layer present.N.key/value.
    throw new GraphPatternError(
      `${options.path}: node '${packedWeightAttention.name}' is com.microsoft.Attention (packed weights, one past tensor), which cannot expose per-layer KV caches; export with GroupQueryAttention, MultiHeadAttention, the ONNX Attention op or decomposed attention.`,
      { details: { path: options.path, node: packedWeightAttention.name } },
    );
  }
  let pattern: AttentionPattern;
  if (mhaNodes.length > 0 || onnxAttentionNodes.length > 0) {
    pattern = mhaNodes.length > 0 ? 'mha' : 'attention';
    for (const node of [...mhaNodes, ...onnxAttentionNodes]) {
      const op = node.opType as 'MultiHeadAttention' | 'Attention';
      if ((node.input[1] ?? '') === '') {
        throw new GraphPatternError(`${options.path}: ${op} node '${node.name}' has packed QKV in its query input, which the runtime does not capture.`, {
          details: { path: options.path, node: node.name },
        });
      }
      const numHeads = op === 'Attention' ? attrInt(node, 'q_num_heads', 0) : attrInt(node, 'num_heads', 0);
      found.push({ node, spec: { kind: 'fused', op, output: node.input[0], node: node.name ?? '', numHeads } });
    }
  } else if (gqaNodes.length > 0) {
    pattern = 'gqa';
    const rewired = wirePositionIds(graph, gqaNodes);
    for (const node of gqaNodes) {
      const numHeads = attrInt(node, 'num_heads', 0);
      const cosName = node.input[7] ?? '';
      const sinName = node.input[8] ?? '';
      const cos = initializers.get(cosName);
      const sin = initializers.get(sinName);
      const cosCache = cos ? tensorToFloat32(cos, options.readExternal) : undefined;
      const sinCache = sin ? tensorToFloat32(sin, options.readExternal) : undefined;
      const rotaryHalf = cos && cos.dims.length === 2 ? Number(cos.dims[1]) : options.headDim / 2;
      found.push({
        node,
        spec: {
          kind: 'gqa',
          output: node.input[0],
          node: node.name ?? '',
          packed: (node.input[1] ?? '') === '',
          numHeads,
          kvNumHeads: attrInt(node, 'kv_num_heads', 0),
          doRotary: attrInt(node, 'do_rotary', 0) === 1,
          interleaved: attrInt(node, 'rotary_interleaved', 0) === 1,
          ...(cosCache && cosCache.length > 0 && sinCache && sinCache.length > 0 ? { cosCache, sinCache } : {}),
          rotaryDim: rotaryHalf * 2,
          positionIds: attrInt(node, 'do_rotary', 0) !== 1 ? 'none' : rewired.has(node) ? 'rewired' : 'wired',
        },
      });
    }
  } else {
    pattern = 'decomposed';
    for (const node of graph.node as NodeProto[]) {
      if (node.opType !== 'Softmax') continue;
      const matmul = findScoresMatMul(node.input[0], 0);
      if (!matmul) continue;
      let query = matmul.input[0];
      // Q pre-scaled before the MatMul (Q·s or Q/s, s constant): capture the unscaled query.
      const pre = producer.get(query);
      if (pre && (pre.opType === 'Mul' || pre.opType === 'Div')) {
        const [a, b] = pre.input;
        if (isConstant(b) && !isConstant(a)) query = a;
        else if (pre.opType === 'Mul' && isConstant(a) && !isConstant(b)) query = b;
      }
      found.push({ node, spec: { kind: 'decomposed', output: query, node: matmul.name ?? '' } });
      blocks.push({ scores: matmul, softmax: node });
    }
  }
  if (found.length === 0) {
    // Name what was looked at: every Softmax (none led back to a Q·Kᵀ MatMul) and any other fused attention op.
    const looked = (graph.node as NodeProto[]).filter((n) => n.opType === 'Softmax' || /Attention$/.test(n.opType ?? '')).map((n) => `${n.opType} '${n.name ?? ''}'`);
    throw new GraphPatternError(
      `No recognisable attention in ${options.path}: expected Softmax(… MatMul(Q, Kᵀ) …) per layer, com.microsoft.GroupQueryAttention, com.microsoft.MultiHeadAttention or the ONNX Attention op; looked at ${
        looked.length > 0 ? `${looked.slice(0, 6).join(', ')}${looked.length > 6 ? `, … (${looked.length} in all)` : ''}` : 'no Softmax or *Attention node'
      }.`,
      { details: { path: options.path, nodes: looked } },
    );
  }
  if (found.length !== options.numLayers) {
    throw new GraphPatternError(`Found ${found.length} attention blocks in ${options.path}, but config.json declares ${options.numLayers} layers.`, {
      details: { path: options.path, found: found.map((f) => f.node.name) },
    });
  }
  requirePositionConsumer(graph, options.path);
  const indices = found.map((f) => layerIndex(f.node));
  const byName = indices.every((i) => i !== undefined) && new Set(indices).size === found.length && indices.every((i) => (i as number) < found.length);
  const captures = found.map((f, k) => ({ ...f.spec, layer: byName ? (indices[k] as number) : k }) as QueryCaptureSpec).sort((a, b) => a.layer - b.layer);

  let groupedLayers = 0;
  if (pattern === 'decomposed' && options.groupQueryHeads) {
    const keep = new Set<string>([...captures.map((c) => c.output), ...(options.debugOutputs ?? [])]);
    groupedLayers = groupQueryHeads(graph, blocks, options.groupQueryHeads.numHeads, options.groupQueryHeads.numKvHeads, keep);
  }

  let keyBiasInputs: string[] | undefined;
  if (options.keyBias) {
    if (pattern !== 'decomposed') {
      throw new UnsupportedCapabilityError({
        capability: 'raggedKvHeads',
        component: 'loadModel({ raggedCache: true })',
        backend: 'a com.microsoft.GroupQueryAttention graph (it only honours leading valid cache entries)',
      });
    }
    keyBiasInputs = [];
    // The bias is fed as float32; CastLike (opset ≥ 15) matches it to float16 scores of fp16 graphs.
    const opset = Number(model.opsetImport?.find((o) => (o.domain ?? '') === '')?.version ?? 0);
    const softmaxOf = new Map(found.map((f) => [captures.findIndex((c) => c.node === f.spec.node && c.output === f.spec.output), f.node] as const));
    for (let layer = 0; layer < captures.length; layer++) {
      const softmax = softmaxOf.get(layer) as NodeProto;
      const input = `draft_key_bias.${layer}`;
      const biased = `${softmax.input[0]}/draft_key_bias`;
      const name = `${softmax.name ?? `softmax_${layer}`}/draft_key_bias`;
      let bias = input;
      if (opset >= 15) {
        bias = `${input}/cast`;
        graph.node.push(onnx.NodeProto.create({ opType: 'CastLike', input: [input, softmax.input[0]], output: [bias], name: `${name}/CastLike` }));
      }
      graph.node.push(onnx.NodeProto.create({ opType: 'Add', input: [softmax.input[0], bias], output: [biased], name }));
      softmax.input[0] = biased;
      graph.input.push(
        onnx.ValueInfoProto.create({
          name: input,
          type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'num_heads' }, { dimValue: 1 }, { dimParam: 'total_sequence_length' }] } } },
        }),
      );
      keyBiasInputs.push(input);
    }
    // Keep the node list topologically sorted: move each Softmax after its new Add.
    const order = graph.node as NodeProto[];
    for (const softmax of softmaxOf.values()) {
      order.splice(order.indexOf(softmax), 1);
      const add = order.findIndex((n) => n.output[0] === softmax.input[0]);
      order.splice(add + 1, 0, softmax);
    }
  }

  const existing = new Set(graph.output.map((o) => o.name as string));
  const add = (name: string) => {
    if (existing.has(name)) return;
    existing.add(name);
    graph.output.push(onnx.ValueInfoProto.create({ name }));
  };
  for (const c of captures) add(c.output);
  const newKvOutputs = pattern === 'decomposed' ? findNewKvRows(graph.node as NodeProto[], options.numLayers) : undefined;
  for (const rows of newKvOutputs ?? []) {
    add(rows.key);
    add(rows.value);
  }
  const debugOutputs: string[] = [];
  for (const name of options.debugOutputs ?? []) {
    if (!producer.has(name) && !graphInputs.has(name)) throw new GraphPatternError(`Debug output '${name}' is not a tensor of ${options.path}.`);
    add(name);
    debugOutputs.push(name);
  }
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    pattern,
    captures,
    debugOutputs,
    ...(keyBiasInputs ? { keyBiasInputs } : {}),
    ...(newKvOutputs ? { newKvOutputs } : {}),
    groupedLayers,
    inputNames: graph.input.map((i) => i.name as string),
    outputNames: graph.output.map((o) => o.name as string),
  };
}

/**
 * Per layer, the tensor each present appends to its past, when every present is `Concat(past, new)` on the
 * sequence axis (2 or −2 of [B, Hkv, S, d]); undefined when any layer is built otherwise.
 */
function findNewKvRows(nodes: readonly NodeProto[], numLayers: number): { key: string; value: string }[] | undefined {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const rowsOf = (layer: number, which: 'key' | 'value'): string | undefined => {
    const node = producer.get(`present.${layer}.${which}`);
    if (node?.opType !== 'Concat' || node.input.length !== 2 || node.input[0] !== `past_key_values.${layer}.${which}`) return undefined;
    const axis = Number((node.attribute ?? []).find((a) => a.name === 'axis')?.i ?? Number.NaN);
    return axis === 2 || axis === -2 ? node.input[1] : undefined;
  };
  const rows: { key: string; value: string }[] = [];
  for (let l = 0; l < numLayers; l++) {
    const key = rowsOf(l, 'key');
    const value = rowsOf(l, 'value');
    if (!key || !value) return undefined;
    rows.push({ key, value });
  }
  return rows;
}
