/**
 * Native decode in the worker: the weights of a Llama-family graph found by their Hugging Face names (or, for a
 * plain torch.onnx.export, by their place in the graph), handed
 * to a registered native decoder (@draft/core's NativeDecoderModuleV1, e.g. @draft/cuda's), which then runs
 * single-token steps over the worker's in-place caches instead of ORT. Decision record
 * 2026-12-06-native-decode.md.
 *
 * What makes a graph eligible is checked here (names, shapes, f32) and then proved at load: the worker runs a
 * few tokens through ORT and through the decoder and compares the logits (worker.ts), so a graph whose names
 * match but whose maths differs (another norm, scaled embeddings, soft-capping) is refused, not decoded wrong.
 */
import type { NativeDecoderLayerV1, NativeDecoderModuleV1, NativeDecoderWeightsV1, NativeWeightArray, NativeWeightDtype } from '@draft/core';
import type onnxProto from 'onnx-proto';
import { halfToFloat32 } from './float16.js';
import { externalRef, readExternalBytes } from './graph/external-data.js';

type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;

/** What the finder reads of a graph. */
export interface DecoderGraph {
  initializer?: readonly TensorProto[] | null;
  node?: readonly NodeProto[] | null;
  output?: readonly { name?: string | null }[] | null;
}

const FLOAT = 1;
const FLOAT16 = 10;

/** Why a graph cannot decode natively (becomes UnsupportedCapabilityError on the main thread). */
export class NativeDecodeUnsupported extends Error {}

export interface NativeDecodeShape {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
}

/** Per-layer initializers the decoder knows; any other `model.layers.N.*` initializer means other maths. */
const LAYER_WEIGHTS: Record<string, keyof NativeDecoderLayerV1> = {
  'input_layernorm.weight': 'inputNorm',
  'post_attention_layernorm.weight': 'postNorm',
  'self_attn.q_proj.weight': 'q',
  'self_attn.k_proj.weight': 'k',
  'self_attn.v_proj.weight': 'v',
  'self_attn.o_proj.weight': 'o',
  'self_attn.q_proj.bias': 'qBias',
  'self_attn.k_proj.bias': 'kBias',
  'self_attn.v_proj.bias': 'vBias',
  'mlp.gate_proj.weight': 'gate',
  'mlp.up_proj.weight': 'up',
  'mlp.down_proj.weight': 'down',
};

/** Layer entries that are vectors (norms, biases): float32 for the decoder whatever the graph stores. */
const VECTORS = new Set<keyof NativeDecoderLayerV1>(['inputNorm', 'postNorm', 'qBias', 'kBias', 'vBias']);

export interface NativeWeights {
  weights: NativeDecoderWeightsV1;
  /** The matrices' element type, as the graph stores them (fp16 exports: 'float16', read as half bits). */
  weightDtype: NativeWeightDtype;
  hiddenSize: number;
  intermediateSize: number;
  /**
   * The graph's own RoPE tables (positions, headDim), when it gathers them by position id: as stored (an fp16
   * export's as half bits), widened a row at a time, so a 16K-position table is not held as float32 (8 MiB).
   */
  rope?: { cos: NativeWeightArray; sin: NativeWeightArray; positions: number };
}

/**
 * Reads the decoder's weights out of the graph's initializers: external ones as views of the mapped file (no
 * copy) when the engine maps files and the offset is aligned, otherwise copied.
 */
export function nativeWeights(
  graph: DecoderGraph,
  shape: NativeDecodeShape,
  files: { dataFolder: string; modelPath: string },
  engine: NativeDecoderModuleV1,
): NativeWeights {
  const initializers = graph.initializer ?? [];
  const byName = new Map(initializers.map((t) => [t.name ?? '', t]));
  const mapped = new Map<string, ArrayBuffer>();
  // An initializer's elements as stored: float32 or float16 bits, views of the mapped file where aligned.
  const stored = (name: string): NativeWeightArray => {
    const t = byName.get(name);
    if (!t) throw new NativeDecodeUnsupported(`the graph has no initializer '${name}'`);
    if (t.dataType !== FLOAT && t.dataType !== FLOAT16) {
      throw new NativeDecodeUnsupported(`'${name}' is ONNX type ${t.dataType}; the native decoder reads float32 or float16 weights`);
    }
    const half = t.dataType === FLOAT16;
    const size = half ? 2 : 4;
    const Type = half ? Uint16Array : Float32Array;
    const count = (t.dims ?? []).reduce((a: number, b) => a * Number(b), 1);
    const ref = externalRef(t, files.dataFolder, files.modelPath);
    if (ref) {
      if (engine.mapFile && ref.offset % size === 0) {
        let buffer = mapped.get(ref.path);
        if (!buffer) {
          buffer = engine.mapFile(ref.path);
          mapped.set(ref.path, buffer);
        }
        if (ref.offset + count * size > buffer.byteLength) throw new NativeDecodeUnsupported(`'${name}' runs past the end of ${ref.path}`);
        return new Type(buffer, ref.offset, count);
      }
      const bytes = readExternalBytes({ ...ref, length: count * size });
      const out = new Type(count);
      new Uint8Array(out.buffer).set(bytes.subarray(0, count * size));
      return out;
    }
    if (t.rawData && t.rawData.length > 0) {
      const raw = t.rawData;
      if (raw.length !== count * size) throw new NativeDecodeUnsupported(`'${name}' holds ${raw.length} bytes for ${count} elements`);
      const out = new Type(count);
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    // ONNX keeps float16 outside raw_data in int32_data, one half per entry.
    if (half && t.int32Data && t.int32Data.length === count) return Uint16Array.from(t.int32Data);
    if (!half && t.floatData && t.floatData.length === count) return Float32Array.from(t.floatData);
    throw new NativeDecodeUnsupported(`'${name}' has no readable data`);
  };
  // Norms and biases: always float32 for the decoder (a float16 graph's are widened; they are small).
  const floats = (name: string): Float32Array => {
    const data = stored(name);
    return data instanceof Uint16Array ? halfToFloat32(data) : data;
  };
  // Matrices: as stored, all in one type (the first one read decides), which the decoder is configured for.
  let weightDtype: NativeWeightDtype | undefined;
  const matrix = (name: string): NativeWeightArray => {
    const data = stored(name);
    const dtype: NativeWeightDtype = data instanceof Uint16Array ? 'float16' : 'float32';
    weightDtype ??= dtype;
    if (dtype !== weightDtype) throw new NativeDecodeUnsupported(`'${name}' is ${dtype} where the other matrices are ${weightDtype}; the native decoder reads one weight type`);
    return data;
  };
  const dims = (name: string): number[] => (byName.get(name)?.dims ?? []).map(Number);
  const expect = (name: string, want: number[]) => {
    const got = dims(name);
    if (got.length !== want.length || got.some((v, i) => v !== want[i])) {
      throw new NativeDecodeUnsupported(`'${name}' has shape [${got.join(', ')}]; expected [${want.join(', ')}] (nn.Linear layout, (out, in))`);
    }
  };

  const { numLayers, numHeads, numKvHeads, headDim: d, vocabSize } = shape;
  const embedDims = dims('model.embed_tokens.weight');
  if (embedDims.length !== 2 || embedDims[0] !== vocabSize || !byName.has('model.layers.0.self_attn.q_proj.weight')) {
    // No Hugging Face names for the projections (torch.onnx.export names MatMul weights onnx::MatMul_N, stored
    // (in, out), even where the norms and embedding keep theirs): find them by where they sit in the graph.
    const roles = findWeightRoles(graph, shape);
    const take = (ref: WeightRef): NativeWeightArray => {
      const data = matrix(ref.name);
      return ref.transposed ? transpose(data, dims(ref.name)) : data;
    };
    const layers = roles.layers.map(
      (L): NativeDecoderLayerV1 => ({
        inputNorm: floats(L.inputNorm.name),
        postNorm: floats(L.postNorm.name),
        q: take(L.q),
        k: take(L.k),
        v: take(L.v),
        o: take(L.o),
        ...(L.qBias ? { qBias: floats(L.qBias.name) } : {}),
        ...(L.kBias ? { kBias: floats(L.kBias.name) } : {}),
        ...(L.vBias ? { vBias: floats(L.vBias.name) } : {}),
        gate: take(L.gate),
        up: take(L.up),
        down: take(L.down),
      }),
    );
    const embed = take(roles.embed);
    const weights: NativeDecoderWeightsV1 = {
      embed,
      layers,
      finalNorm: floats(roles.finalNorm.name),
      lmHead: roles.lmHead.name === roles.embed.name && !roles.lmHead.transposed ? embed : take(roles.lmHead),
    };
    return { weights, weightDtype: weightDtype ?? 'float32', hiddenSize: roles.hiddenSize, intermediateSize: roles.intermediateSize };
  }
  const hidden = embedDims[1];
  const intermediate = dims('model.layers.0.mlp.gate_proj.weight')[0];
  const known = new Set(Object.keys(LAYER_WEIGHTS));
  for (const name of byName.keys()) {
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
    if (m && !known.has(m[2])) throw new NativeDecodeUnsupported(`the graph has '${name}', which the native decoder does not implement`);
  }
  const layers: NativeDecoderLayerV1[] = [];
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}.`;
    expect(`${p}input_layernorm.weight`, [hidden]);
    expect(`${p}post_attention_layernorm.weight`, [hidden]);
    expect(`${p}self_attn.q_proj.weight`, [numHeads * d, hidden]);
    expect(`${p}self_attn.k_proj.weight`, [numKvHeads * d, hidden]);
    expect(`${p}self_attn.v_proj.weight`, [numKvHeads * d, hidden]);
    expect(`${p}self_attn.o_proj.weight`, [hidden, numHeads * d]);
    expect(`${p}mlp.gate_proj.weight`, [intermediate, hidden]);
    expect(`${p}mlp.up_proj.weight`, [intermediate, hidden]);
    expect(`${p}mlp.down_proj.weight`, [hidden, intermediate]);
    const layer: Record<string, NativeWeightArray> = {};
    for (const [suffix, key] of Object.entries(LAYER_WEIGHTS)) {
      if (!byName.has(p + suffix)) continue;
      layer[key] = VECTORS.has(key) ? floats(p + suffix) : matrix(p + suffix);
    }
    if (layer.qBias) expect(`${p}self_attn.q_proj.bias`, [numHeads * d]);
    if (layer.kBias) expect(`${p}self_attn.k_proj.bias`, [numKvHeads * d]);
    if (layer.vBias) expect(`${p}self_attn.v_proj.bias`, [numKvHeads * d]);
    layers.push(layer as unknown as NativeDecoderLayerV1);
  }
  expect('model.norm.weight', [hidden]);
  const embed = matrix('model.embed_tokens.weight');
  const tied = !byName.has('lm_head.weight');
  if (!tied) expect('lm_head.weight', [vocabSize, hidden]);
  const weights: NativeDecoderWeightsV1 = { embed, layers, finalNorm: floats('model.norm.weight'), lmHead: tied ? embed : matrix('lm_head.weight') };
  let rope: NativeWeights['rope'];
  const cosDims = dims('model.rotary_emb.cos_cached');
  if (cosDims.length === 2 && cosDims[1] === d && byName.has('model.rotary_emb.sin_cached')) {
    rope = { cos: stored('model.rotary_emb.cos_cached'), sin: stored('model.rotary_emb.sin_cached'), positions: cosDims[0] };
  }
  return { weights, weightDtype: weightDtype ?? 'float32', hiddenSize: hidden, intermediateSize: intermediate, ...(rope ? { rope } : {}) };
}

/**
 * (headDim) cos/sin of one position in rotate-half layout: rows of the graph's own tables when it has them
 * (the same floats ORT multiplies by), else the runtime's tables (positions, headDim / 2) with each half
 * repeated.
 */
export class RopeRows {
  constructor(
    private readonly headDim: number,
    private readonly graph: NativeWeights['rope'],
    private readonly tables: ((position: number) => { cos: Float32Array; sin: Float32Array }) | undefined,
  ) {}

  /** Fresh arrays (a batch holds one pair per row). */
  at(position: number): { cos: Float32Array; sin: Float32Array } {
    const d = this.headDim;
    if (this.graph && position < this.graph.positions) {
      const row = (table: NativeWeightArray): Float32Array => {
        const bits = table.subarray(position * d, (position + 1) * d);
        return bits instanceof Uint16Array ? halfToFloat32(bits) : Float32Array.from(bits);
      };
      return { cos: row(this.graph.cos), sin: row(this.graph.sin) };
    }
    if (!this.tables) throw new NativeDecodeUnsupported(`position ${position} is beyond the graph's RoPE table`);
    const half = d / 2;
    const t = this.tables(position);
    const cos = new Float32Array(d);
    const sin = new Float32Array(d);
    for (let i = 0; i < half; i++) {
      cos[i] = cos[i + half] = t.cos[position * half + i];
      sin[i] = sin[i + half] = t.sin[position * half + i];
    }
    return { cos, sin };
  }
}

/** An initializer in a role; `transposed`: stored (in, out), so the decoder needs it turned to (out, in). */
interface WeightRef {
  name: string;
  transposed: boolean;
}

interface LayerRoles {
  inputNorm: WeightRef;
  postNorm: WeightRef;
  q: WeightRef;
  k: WeightRef;
  v: WeightRef;
  o: WeightRef;
  qBias?: WeightRef;
  kBias?: WeightRef;
  vBias?: WeightRef;
  gate: WeightRef;
  up: WeightRef;
  down: WeightRef;
}

function transpose<T extends NativeWeightArray>(data: T, dims: number[]): T {
  const [rows, cols] = dims;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * The decoder's weights by their place in a decomposed Llama graph, whatever their names:
 * - RMSNorm weights are the 1-D (hidden) initializers a `Mul` scales by, in graph order: two per layer, then the
 *   final norm;
 * - q/k/v are the projections of the input norm's output (k and v reach `present.l.key` / `.value` without another
 *   MatMul, q reaches neither), gate/up those of the post-attention norm's output (gate feeds a Sigmoid);
 * - o is the one projection between a layer's v and its gate, down the one between its up and the next layer's
 *   input norm; the LM head projects the final norm's output; the embedding is the `Gather` over `input_ids`.
 * A projection's weight is an initializer fed to `MatMul` directly (stored (in, out)) or through a 2-D
 * `Transpose` (stored (out, in)). Anything else is NativeDecodeUnsupported; the load-time check proves the rest.
 */
function findWeightRoles(
  graph: DecoderGraph,
  shape: NativeDecodeShape,
): { layers: LayerRoles[]; embed: WeightRef; finalNorm: WeightRef; lmHead: WeightRef; hiddenSize: number; intermediateSize: number } {
  const { numLayers, numHeads, numKvHeads, headDim: d, vocabSize } = shape;
  const nodes = graph.node ?? [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const dimsOf = (name: string) => (inits.get(name)?.dims ?? []).map(Number);
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) producer.set(o, i);
    for (const x of n.input ?? []) {
      if (!consumers.has(x)) consumers.set(x, []);
      (consumers.get(x) as number[]).push(i);
    }
  });
  const fail = (why: string): never => {
    throw new NativeDecodeUnsupported(`its weights have no Hugging Face names and ${why}`);
  };
  // The tensor itself, or what it is a Cast of (exporters cast around norms).
  const uncast = (t: string): string => {
    const p = producer.get(t);
    return p !== undefined && nodes[p].opType === 'Cast' ? uncast((nodes[p].input ?? [])[0] ?? '') : t;
  };

  const embedNode = nodes.find((n) => n.opType === 'Gather' && inits.has(n.input?.[0] ?? '') && uncast(n.input?.[1] ?? '') === 'input_ids');
  if (!embedNode) return fail("no Gather of an initializer by 'input_ids' (the embedding) was found");
  const embedName = embedNode.input?.[0] as string;
  const embedDims = dimsOf(embedName);
  if (embedDims.length !== 2 || embedDims[0] !== vocabSize) fail(`the embedding '${embedName}' is not [${vocabSize}, hidden]`);
  const hidden = embedDims[1];

  // Projections: MatMul(x, W) with W an initializer, or Transpose(W) of one.
  interface Projection {
    index: number;
    input: string;
    output: string;
    weight: WeightRef;
    rows: number; // out features
  }
  const projections: Projection[] = [];
  nodes.forEach((n, index) => {
    if (n.opType !== 'MatMul') return;
    const [a, b] = n.input ?? [];
    if (!a || !b) return;
    let weight: WeightRef | undefined;
    let out = 0;
    if (inits.has(b) && dimsOf(b).length === 2) {
      weight = { name: b, transposed: true };
      out = dimsOf(b)[1];
    } else {
      const p = producer.get(b);
      const t = p === undefined ? undefined : nodes[p];
      const perm = t?.attribute?.find((x) => x.name === 'perm')?.ints?.map(Number);
      const src = t?.input?.[0] ?? '';
      if (t?.opType === 'Transpose' && inits.has(src) && dimsOf(src).length === 2 && (!perm || (perm[0] === 1 && perm[1] === 0))) {
        weight = { name: src, transposed: false };
        out = dimsOf(src)[0];
      }
    }
    if (weight) projections.push({ index, input: uncast(a), output: (n.output ?? [])[0] ?? '', weight, rows: out });
  });

  const norms = nodes
    .map((n, index) => ({ n, index }))
    .filter(({ n }) => n.opType === 'Mul')
    .flatMap(({ n, index }) => {
      const w = (n.input ?? []).find((x) => inits.has(x) && dimsOf(x).length === 1 && dimsOf(x)[0] === hidden);
      return w ? [{ index, output: (n.output ?? [])[0] ?? '', weight: { name: w, transposed: false } }] : [];
    });
  if (norms.length !== 2 * numLayers + 1) fail(`${norms.length} hidden-sized norm weights were found (expected ${2 * numLayers + 1})`);

  const presents = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  /** The `present.*` outputs reachable from `tensor` without passing another MatMul. */
  const reaches = (tensor: string): string[] => {
    const seen = new Set<string>([tensor]);
    const queue = [tensor];
    const found: string[] = [];
    while (queue.length > 0 && seen.size < 500) {
      const t = queue.shift() as string;
      if (presents.has(t) && t.startsWith('present.')) found.push(t);
      for (const c of consumers.get(t) ?? []) {
        if (nodes[c].opType === 'MatMul') continue;
        for (const o of nodes[c].output ?? []) {
          if (seen.has(o)) continue;
          seen.add(o);
          queue.push(o);
        }
      }
    }
    return found;
  };
  const consumedBy = (tensor: string, op: string) => (consumers.get(tensor) ?? []).some((c) => nodes[c].opType === op);
  /** A bias: the projection's output goes into an Add with a 1-D initializer of its width. */
  const biasOf = (p: Projection): WeightRef | undefined => {
    for (const c of consumers.get(p.output) ?? []) {
      const n = nodes[c];
      if (n.opType !== 'Add') continue;
      const b = (n.input ?? []).find((x) => inits.has(x) && dimsOf(x).length === 1 && dimsOf(x)[0] === p.rows);
      if (b) return { name: b, transposed: false };
    }
    return undefined;
  };

  const layers: LayerRoles[] = [];
  let intermediate = 0;
  for (let l = 0; l < numLayers; l++) {
    const inNorm = norms[2 * l];
    const postNorm = norms[2 * l + 1];
    const nextNorm = norms[2 * l + 2];
    const qkv = projections.filter((p) => p.input === inNorm.output);
    if (qkv.length !== 3) fail(`layer ${l}'s input norm feeds ${qkv.length} projections (expected separate q, k and v)`);
    const k = qkv.find((p) => reaches(p.output).includes(`present.${l}.key`));
    const v = qkv.find((p) => reaches(p.output).includes(`present.${l}.value`));
    const q = qkv.find((p) => p !== k && p !== v);
    if (!q || !k || !v || k === v) return fail(`layer ${l}'s k and v projections could not be told apart by the present outputs they reach`);
    if (q.rows !== numHeads * d || k.rows !== numKvHeads * d || v.rows !== numKvHeads * d) fail(`layer ${l}'s q/k/v widths are ${q.rows}/${k.rows}/${v.rows}`);
    const gateUp = projections.filter((p) => p.input === postNorm.output);
    if (gateUp.length !== 2) fail(`layer ${l}'s post-attention norm feeds ${gateUp.length} projections (expected gate and up)`);
    const gate = gateUp.find((p) => consumedBy(p.output, 'Sigmoid'));
    const up = gateUp.find((p) => p !== gate);
    if (!gate || !up) return fail(`layer ${l}'s gate (the projection a Sigmoid reads) was not found`);
    const lastQkv = Math.max(q.index, k.index, v.index);
    const between = (lo: number, hi: number) => projections.filter((p) => p.index > lo && p.index < hi);
    const o = between(lastQkv, postNorm.index);
    const down = between(Math.max(gate.index, up.index), nextNorm.index);
    if (o.length !== 1 || down.length !== 1) fail(`layer ${l} has ${o.length} projections between attention and its MLP and ${down.length} after the MLP (expected 1 and 1)`);
    intermediate = gate.rows;
    layers.push({
      inputNorm: inNorm.weight,
      postNorm: postNorm.weight,
      q: q.weight,
      k: k.weight,
      v: v.weight,
      o: o[0].weight,
      ...(biasOf(q) ? { qBias: biasOf(q) } : {}),
      ...(biasOf(k) ? { kBias: biasOf(k) } : {}),
      ...(biasOf(v) ? { vBias: biasOf(v) } : {}),
      gate: gate.weight,
      up: up.weight,
      down: down[0].weight,
    });
  }
  const finalNorm = norms[2 * numLayers];
  const head = projections.filter((p) => p.input === finalNorm.output && p.rows === vocabSize);
  let lmHead: WeightRef | undefined = head.length === 1 ? head[0].weight : undefined;
  if (!lmHead) {
    // Tied embeddings exported as MatMul(x, Transpose(embed)) appear above; as a Gemm or other op they do not.
    return fail('no projection of the final norm to the vocabulary (the LM head) was found');
  }
  if (lmHead.name === embedName) lmHead = { name: embedName, transposed: lmHead.transposed };
  return { layers, embed: { name: embedName, transposed: false }, finalNorm: finalNorm.weight, lmHead, hiddenSize: hidden, intermediateSize: intermediate };
}
