/**
 * fp32 → dynamic 8-bit (`model_quantized.onnx`, `model_int8.onnx`, `model_uint8.onnx`), the ONNX Runtime
 * `quantize_dynamic` pattern: each MatMul with a constant weight becomes
 *   DynamicQuantizeLinear(x) → MatMulInteger(xq, Wq, xZeroPoint, wZeroPoint) → Cast(float) · (xScale · wScale)
 * with per-output-column weight scales (int8: symmetric, zero point 0; uint8: asymmetric).
 */
import onnxProto from 'onnx-proto';
import { graphOf, matMulWeight, type ModelProto, type NodeProto, producers, pruneUnused } from './convert-graph.js';
import { DT, readInitializers } from './onnx-builder.js';

const { onnx } = onnxProto;
const UINT8 = 2;
const INT8 = 3;

export type WeightType = 'int8' | 'uint8';

/** Quantizes an (N, K) matrix per row n into MatMulInteger's B layout [K, N]. */
export function quantizeColumns(weight: Float32Array, n: number, k: number, type: WeightType): { codes: Uint8Array | Int8Array; scales: Float32Array; zeroPoints: Uint8Array | Int8Array } {
  const codes = type === 'int8' ? new Int8Array(k * n) : new Uint8Array(k * n);
  const zeroPoints = type === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  const scales = new Float32Array(n);
  for (let col = 0; col < n; col++) {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < k; i++) {
      lo = Math.min(lo, weight[col * k + i]);
      hi = Math.max(hi, weight[col * k + i]);
    }
    let scale: number;
    let zp = 0;
    if (type === 'int8') scale = Math.max(-lo, hi) / 127 || 1;
    else {
      scale = (hi - lo) / 255 || 1;
      zp = Math.min(255, Math.max(0, Math.round(-lo / scale)));
    }
    scales[col] = scale;
    zeroPoints[col] = zp;
    const [min, max] = type === 'int8' ? [-127, 127] : [0, 255];
    for (let i = 0; i < k; i++) codes[i * n + col] = Math.min(max, Math.max(min, Math.round(weight[col * k + i] / scale) + zp));
  }
  return { codes, scales, zeroPoints };
}

/** Returns a copy of `fp32` (serialized ModelProto) with constant-weight MatMuls dynamically quantized. */
export function convertToInt8(fp32: Uint8Array, options: { weightType?: WeightType } = {}): { bytes: Uint8Array; model: ModelProto; replaced: number } {
  const type = options.weightType ?? 'int8';
  const { tensors, model } = readInitializers(fp32);
  const graph = graphOf(model);
  const producer = producers(graph);
  const nodes: NodeProto[] = [];
  let replaced = 0;
  for (const node of graph.node) {
    const w = matMulWeight(node, tensors, producer);
    if (!w) {
      nodes.push(node);
      continue;
    }
    const q = quantizeColumns(w.weight, w.n, w.k, type);
    const base = `${node.name || node.output[0]}/${type}`;
    const raw = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const elem = type === 'int8' ? INT8 : UINT8;
    graph.initializer.push(
      onnx.TensorProto.create({ name: `${base}/B`, dataType: elem, dims: [w.k, w.n], rawData: raw(q.codes) }),
      onnx.TensorProto.create({ name: `${base}/B_zero_point`, dataType: elem, dims: [w.n], rawData: raw(q.zeroPoints) }),
      onnx.TensorProto.create({ name: `${base}/B_scale`, dataType: DT.FLOAT, dims: [w.n], rawData: raw(q.scales) }),
    );
    const t = (suffix: string) => `${base}/${suffix}`;
    const make = (opType: string, input: string[], output: string[], attribute: onnxProto.onnx.IAttributeProto[] = []) =>
      onnx.NodeProto.create({ name: `${base}/${opType}`, opType, input, output, attribute });
    nodes.push(
      make('DynamicQuantizeLinear', [node.input[0]], [t('x_q'), t('x_scale'), t('x_zero_point')]),
      make('MatMulInteger', [t('x_q'), `${base}/B`, t('x_zero_point'), `${base}/B_zero_point`], [t('y_int32')]),
      make('Cast', [t('y_int32')], [t('y_float')], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: DT.FLOAT }]),
      make('Mul', [t('x_scale'), `${base}/B_scale`], [t('scale')]),
      onnx.NodeProto.create({ name: `${base}/Mul_out`, opType: 'Mul', input: [t('y_float'), t('scale')], output: node.output }),
    );
    replaced++;
  }
  graph.node = nodes;
  pruneUnused(graph);
  return { bytes: onnx.ModelProto.encode(model).finish(), model, replaced };
}
