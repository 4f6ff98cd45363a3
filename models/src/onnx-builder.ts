/**
 * Minimal ONNX graph builder on top of onnx-proto (protobufjs static code).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export { onnx };

export const DT = {
  FLOAT: 1,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
} as const;

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { ints: number[] };

export type DimSpec = number | string;

export interface ValueInfo {
  name: string;
  elemType: number;
  dims: DimSpec[];
}

function makeAttribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') {
    return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use {float: x} for non-integers`);
    return { name, type: T.INT, i: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.INTS, ints: value.ints };
}

function valueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.elemType,
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private names = new Set<string>();
  private constCache = new Map<string, string>();
  private counter = 0;

  /** Returns a fresh unique tensor/node name based on `base`. */
  unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: number, dims: DimSpec[]): string {
    this.names.add(name);
    this.inputs.push({ name, elemType, dims });
    return name;
  }

  output(name: string, elemType: number, dims: DimSpec[]): void {
    this.outputs.push({ name, elemType, dims });
  }

  initFloat(name: string, data: Float32Array, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims ${dims}`);
    this.names.add(name);
    this.initializers.push({
      name,
      dataType: DT.FLOAT,
      dims,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  initInt64(name: string, data: number[], dims: number[]): string {
    this.names.add(name);
    const buf = new BigInt64Array(data.map((x) => BigInt(x)));
    this.initializers.push({ name, dataType: DT.INT64, dims, rawData: new Uint8Array(buf.buffer) });
    return name;
  }

  /** Shared constant initializers (deduplicated by value). Scalars when `dims` is []. */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.unique(`const_i64_${values.join('_').replace(/-/g, 'm')}${dims.length === 0 ? '_s' : ''}`);
    this.initInt64(name, values, dims);
    this.constCache.set(key, name);
    return name;
  }

  constFloat(values: number[], dims: number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.unique(`const_f32_${this.constCache.size}`);
    this.initFloat(name, Float32Array.from(values), dims);
    this.constCache.set(key, name);
    return name;
  }

  /**
   * Adds a node. `name` is the readable node name (e.g. /model/layers.0/self_attn/Softmax); the output tensor
   * names default to `${name}_output_${i}` like torch exports.
   */
  node(
    opType: string,
    inputs: string[],
    name: string,
    attrs: Record<string, AttrValue> = {},
    opts: { outputs?: string[] | number; domain?: string } = {},
  ): string[] {
    const nodeName = this.unique(name);
    let outputs: string[];
    if (Array.isArray(opts.outputs)) {
      outputs = opts.outputs;
      for (const o of outputs) if (o) this.names.add(o);
    } else {
      const count = opts.outputs ?? 1;
      outputs = [];
      for (let i = 0; i < count; i++) outputs.push(this.unique(`${nodeName}_output_${i}`));
    }
    this.nodes.push({
      name: nodeName,
      opType,
      domain: opts.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => makeAttribute(k, v)),
    });
    return outputs;
  }

  /** Single-output convenience. */
  op(opType: string, inputs: string[], name: string, attrs: Record<string, AttrValue> = {}, domain?: string): string {
    return this.node(opType, inputs, name, attrs, { domain })[0];
  }

  toModel(opts: { graphName: string; opsets: Record<string, number>; producer?: string; docString?: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer ?? '@draft/models',
      producerVersion: '0.0.0',
      docString: opts.docString ?? '',
      opsetImport: Object.entries(opts.opsets).map(([domain, version]) => ({ domain, version })),
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

export interface ReadTensor {
  name: string;
  dims: number[];
  dataType: number;
  data: Float32Array | BigInt64Array | Int32Array;
}

/** Parse an ONNX model file and return its initializers by name (float32 / int64 / int32 raw or typed data). */
export function readInitializers(bytes: Uint8Array): { tensors: Map<string, ReadTensor>; model: onnxProto.onnx.ModelProto } {
  const model = onnx.ModelProto.decode(bytes);
  const tensors = new Map<string, ReadTensor>();
  for (const t of model.graph?.initializer ?? []) {
    const dims = (t.dims ?? []).map((d) => Number(d));
    const n = dims.reduce((a, b) => a * b, 1);
    let data: Float32Array | BigInt64Array | Int32Array;
    const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
    if (t.dataType === DT.FLOAT) {
      if (raw) {
        const copy = new Uint8Array(raw); // aligned copy
        data = new Float32Array(copy.buffer, 0, n);
      } else data = Float32Array.from(t.floatData ?? []);
    } else if (t.dataType === DT.INT64) {
      if (raw) data = new BigInt64Array(new Uint8Array(raw).buffer, 0, n);
      else data = BigInt64Array.from((t.int64Data ?? []).map((x) => BigInt(x.toString())));
    } else if (t.dataType === DT.INT32) {
      if (raw) data = new Int32Array(new Uint8Array(raw).buffer, 0, n);
      else data = Int32Array.from(t.int32Data ?? []);
    } else continue;
    tensors.set(t.name ?? '', { name: t.name ?? '', dims, dataType: t.dataType ?? 0, data });
  }
  return { tensors, model };
}
