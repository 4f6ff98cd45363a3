/**
 * Native decode in the worker: the weights of a Llama-family graph found by their Hugging Face names, handed
 * to a registered native decoder (@draft/core's NativeDecoderModuleV1, e.g. @draft/cuda's), which then runs
 * single-token steps over the worker's in-place caches instead of ORT. Decision record
 * 2026-12-06-native-decode.md.
 *
 * What makes a graph eligible is checked here (names, shapes, f32) and then proved at load: the worker runs a
 * few tokens through ORT and through the decoder and compares the logits (worker.ts), so a graph whose names
 * match but whose maths differs (another norm, scaled embeddings, soft-capping) is refused, not decoded wrong.
 */
import type { NativeDecoderLayerV1, NativeDecoderModuleV1, NativeDecoderWeightsV1 } from '@draft/core';
import type onnxProto from 'onnx-proto';
import { externalRef, readExternalBytes } from './graph/external-data.js';

type TensorProto = onnxProto.onnx.ITensorProto;

const FLOAT = 1;

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

export interface NativeWeights {
  weights: NativeDecoderWeightsV1;
  hiddenSize: number;
  intermediateSize: number;
  /** The graph's own RoPE tables (positions, headDim), when it gathers them by position id. */
  rope?: { cos: Float32Array; sin: Float32Array; positions: number };
}

/**
 * Reads the decoder's weights out of the graph's initializers: external ones as views of the mapped file (no
 * copy) when the engine maps files and the offset is aligned, otherwise copied.
 */
export function nativeWeights(
  initializers: readonly TensorProto[],
  shape: NativeDecodeShape,
  files: { dataFolder: string; modelPath: string },
  engine: NativeDecoderModuleV1,
): NativeWeights {
  const byName = new Map(initializers.map((t) => [t.name ?? '', t]));
  const mapped = new Map<string, ArrayBuffer>();
  const floats = (name: string): Float32Array => {
    const t = byName.get(name);
    if (!t) throw new NativeDecodeUnsupported(`the graph has no initializer '${name}'`);
    if (t.dataType !== FLOAT) throw new NativeDecodeUnsupported(`'${name}' is ONNX type ${t.dataType}; the native decoder reads float32 weights`);
    const count = (t.dims ?? []).reduce((a: number, b) => a * Number(b), 1);
    const ref = externalRef(t, files.dataFolder, files.modelPath);
    if (ref) {
      if (engine.mapFile && ref.offset % 4 === 0) {
        let buffer = mapped.get(ref.path);
        if (!buffer) {
          buffer = engine.mapFile(ref.path);
          mapped.set(ref.path, buffer);
        }
        if (ref.offset + count * 4 > buffer.byteLength) throw new NativeDecodeUnsupported(`'${name}' runs past the end of ${ref.path}`);
        return new Float32Array(buffer, ref.offset, count);
      }
      const bytes = readExternalBytes({ ...ref, length: count * 4 });
      return new Float32Array(bytes.buffer, bytes.byteOffset, count).slice();
    }
    if (t.rawData && t.rawData.length > 0) {
      const raw = t.rawData;
      if (raw.length !== count * 4) throw new NativeDecodeUnsupported(`'${name}' holds ${raw.length} bytes for ${count} floats`);
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    if (t.floatData && t.floatData.length === count) return Float32Array.from(t.floatData);
    throw new NativeDecodeUnsupported(`'${name}' has no readable data`);
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
  if (embedDims.length !== 2 || embedDims[0] !== vocabSize) {
    throw new NativeDecodeUnsupported(`no 'model.embed_tokens.weight' of shape [${vocabSize}, hidden] (Hugging Face weight names are needed)`);
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
    const layer: Partial<NativeDecoderLayerV1> = {};
    for (const [suffix, key] of Object.entries(LAYER_WEIGHTS)) {
      if (!byName.has(p + suffix)) continue;
      layer[key] = floats(p + suffix);
    }
    if (layer.qBias) expect(`${p}self_attn.q_proj.bias`, [numHeads * d]);
    if (layer.kBias) expect(`${p}self_attn.k_proj.bias`, [numKvHeads * d]);
    if (layer.vBias) expect(`${p}self_attn.v_proj.bias`, [numKvHeads * d]);
    layers.push(layer as NativeDecoderLayerV1);
  }
  expect('model.norm.weight', [hidden]);
  const embed = floats('model.embed_tokens.weight');
  const tied = !byName.has('lm_head.weight');
  if (!tied) expect('lm_head.weight', [vocabSize, hidden]);
  const weights: NativeDecoderWeightsV1 = { embed, layers, finalNorm: floats('model.norm.weight'), lmHead: tied ? embed : floats('lm_head.weight') };
  let rope: NativeWeights['rope'];
  const cosDims = dims('model.rotary_emb.cos_cached');
  if (cosDims.length === 2 && cosDims[1] === d && byName.has('model.rotary_emb.sin_cached')) {
    rope = { cos: floats('model.rotary_emb.cos_cached'), sin: floats('model.rotary_emb.sin_cached'), positions: cosDims[0] };
  }
  return { weights, hiddenSize: hidden, intermediateSize: intermediate, ...(rope ? { rope } : {}) };
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
      return { cos: this.graph.cos.slice(position * d, (position + 1) * d), sin: this.graph.sin.slice(position * d, (position + 1) * d) };
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
