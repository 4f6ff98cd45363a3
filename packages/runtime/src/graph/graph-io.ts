import { ModelLayoutError } from '@draft/core';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type GraphProto = InstanceType<typeof onnx.GraphProto>;
type ValueInfoProto = InstanceType<typeof onnx.ValueInfoProto>;

/** ONNX element type → name. */
const ELEMENT_TYPES: Readonly<Record<number, string>> = Object.freeze({
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
});

/** One graph input or output: name, element type and shape (a number per fixed dim, the symbol otherwise). */
export interface TensorIo {
  name: string;
  /** 'float32', 'float16', 'int64', …; 'unknown' without type info. */
  dtype: string;
  /** Per dim: a size, a symbolic name, or '?' when unnamed. Empty without shape info. */
  shape: (number | string)[];
}

/** The KV-cache and logits interface of a decoder graph (transformers.js contract). */
export interface GraphIo {
  inputs: TensorIo[];
  outputs: TensorIo[];
  /** `past_key_values.{layer}.key` / `.value` per layer index found (in index order). */
  pastKeys: TensorIo[];
  pastValues: TensorIo[];
  /** Element type of the KV inputs (of layer 0's key), when present. */
  kvDtype?: string;
  /** Element type of `logits`, when present. */
  logitsDtype?: string;
}

function tensorIo(v: ValueInfoProto): TensorIo {
  const tensor = v.type?.tensorType;
  const dtype = tensor?.elemType ? (ELEMENT_TYPES[tensor.elemType] ?? `onnx-type-${tensor.elemType}`) : 'unknown';
  const shape = (tensor?.shape?.dim ?? []).map((d) => {
    if (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0) return Number(d.dimValue);
    return d.dimParam || '?';
  });
  return { name: v.name ?? '', dtype, shape };
}

/** Reads the graph's inputs and outputs and picks out the KV cache and logits (no ORT session; for inspection). */
export function readGraphIo(graph: GraphProto): GraphIo {
  const inputs = graph.input.map((v) => tensorIo(v as ValueInfoProto));
  const outputs = graph.output.map((v) => tensorIo(v as ValueInfoProto));
  const byLayer = (suffix: 'key' | 'value') =>
    inputs
      .flatMap((t) => {
        const m = new RegExp(`^past_key_values\\.(\\d+)\\.${suffix}$`).exec(t.name);
        return m ? [{ layer: Number(m[1]), t }] : [];
      })
      .sort((a, b) => a.layer - b.layer)
      .map((x) => x.t);
  const pastKeys = byLayer('key');
  const pastValues = byLayer('value');
  const logits = outputs.find((o) => o.name === 'logits');
  return {
    inputs,
    outputs,
    pastKeys,
    pastValues,
    ...(pastKeys[0] ? { kvDtype: pastKeys[0].dtype } : {}),
    ...(logits ? { logitsDtype: logits.dtype } : {}),
  };
}

/** What config.json declares about the attention heads. */
export interface ConfigHeads {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/** A fused attention node's own head counts (GroupQueryAttention `num_heads` / `kv_num_heads`). */
export interface FusedHeads {
  node: string;
  numHeads?: number;
  kvNumHeads?: number;
}

const shapeText = (t: TensorIo) => `[${t.shape.join(', ')}]`;

/**
 * Throws ModelLayoutError (path = config.json) when config.json's `num_attention_heads`, `num_key_value_heads`
 * or `head_dim` contradict the graph: KV inputs `past_key_values.N.key|value` are [B, Hkv, P, headDim], and a
 * fused node's `num_heads` / `kv_num_heads` must equal the config's. Symbolic dims are not checked. The
 * message names config.json, the key, the graph input (or node) and its shape.
 */
export function checkConfigAgainstGraph(options: { config: ConfigHeads; kv: GraphIo; fused?: readonly FusedHeads[]; configPath: string; modelPath: string }): void {
  const { config, kv, configPath, modelPath } = options;
  const fail = (key: string, value: number, what: string, actual: number, subject: string, extra: Record<string, unknown>) => {
    throw new ModelLayoutError(`${configPath}: ${key} = ${value} contradicts ${subject} of ${modelPath} (${what} ${actual}).`, {
      path: configPath,
      details: { key, model: modelPath, ...extra },
    });
  };
  for (const t of [...kv.pastKeys, ...kv.pastValues]) {
    if (t.shape.length === 0) continue;
    if (t.shape.length !== 4) {
      throw new ModelLayoutError(`${modelPath}: graph input '${t.name}' has shape ${shapeText(t)}; expected [batch, kv_heads, past_length, head_dim].`, {
        path: modelPath,
        details: { input: t.name },
      });
    }
    const [, heads, , dim] = t.shape;
    const subject = `graph input '${t.name}' ${shapeText(t)}`;
    if (typeof heads === 'number' && heads !== config.numKvHeads) {
      fail('num_key_value_heads', config.numKvHeads, 'KV heads', heads, subject, { input: t.name, shape: t.shape });
    }
    if (typeof dim === 'number' && dim !== config.headDim) fail('head_dim', config.headDim, 'head dim', dim, subject, { input: t.name, shape: t.shape });
  }
  for (const f of options.fused ?? []) {
    const subject = `node '${f.node}'`;
    if (f.numHeads !== undefined && f.numHeads !== config.numHeads) fail('num_attention_heads', config.numHeads, 'num_heads', f.numHeads, subject, { node: f.node });
    if (f.kvNumHeads !== undefined && f.kvNumHeads !== config.numKvHeads) {
      fail('num_key_value_heads', config.numKvHeads, 'kv_num_heads', f.kvNumHeads, subject, { node: f.node });
    }
  }
}
