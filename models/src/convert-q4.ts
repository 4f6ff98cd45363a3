/**
 * fp32 → `model_q4.onnx`: every MatMul with a constant weight becomes com.microsoft.MatMulNBits (4-bit,
 * asymmetric, one scale and zero point per block of 32 along K), as transformers.js q4 exports do.
 *
 * MatMulNBits layout (ORT contrib spec): B uint8 [N, kBlocks, blockSize/2], element k of a block in the low
 * nibble when k is even; scales float [N · kBlocks]; zero points uint8 [N · ⌈kBlocks/2⌉], block 2j in the low
 * nibble of byte j of its row. Dequantised weight: (code − zeroPoint) · scale.
 */
import onnxProto from 'onnx-proto';
import { ensureOpset, graphOf, matMulWeight, type ModelProto, producers, pruneUnused } from './convert-graph.js';
import { DT, readInitializers } from './onnx-builder.js';

const { onnx } = onnxProto;
const UINT8 = 2;

export interface QuantizedBlocks {
  /** [N, kBlocks, blockSize / 2] packed codes. */
  packed: Uint8Array;
  scales: Float32Array;
  /** [N, ⌈kBlocks / 2⌉] packed zero points. */
  zeroPoints: Uint8Array;
  kBlocks: number;
}

/** Quantizes an (N, K) matrix to 4-bit blocks along K; the last block is zero-padded. */
export function quantizeQ4(weight: Float32Array, n: number, k: number, blockSize = 32): QuantizedBlocks {
  const kBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const zpRow = Math.ceil(kBlocks / 2);
  const packed = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  const zeroPoints = new Uint8Array(n * zpRow);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = row * k + b * blockSize;
      const end = row * k + Math.min(k, (b + 1) * blockSize);
      // The range always holds 0 so that zero (and the padding) is exact.
      let lo = 0;
      let hi = 0;
      for (let i = start; i < end; i++) {
        lo = Math.min(lo, weight[i]);
        hi = Math.max(hi, weight[i]);
      }
      const scale = hi > lo ? (hi - lo) / 15 : 1;
      const zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      scales[row * kBlocks + b] = scale;
      zeroPoints[row * zpRow + (b >> 1)] |= zp << ((b & 1) * 4);
      for (let j = 0; j < blockSize; j++) {
        const i = start + j;
        const code = i < end ? Math.min(15, Math.max(0, Math.round(weight[i] / scale) + zp)) : zp;
        packed[(row * kBlocks + b) * blob + (j >> 1)] |= code << ((j & 1) * 4);
      }
    }
  }
  return { packed, scales, zeroPoints, kBlocks };
}

/** Returns a copy of `fp32` (serialized ModelProto) with constant-weight MatMuls as MatMulNBits. */
export function convertToQ4(fp32: Uint8Array, options: { blockSize?: number } = {}): { bytes: Uint8Array; model: ModelProto; replaced: number } {
  const blockSize = options.blockSize ?? 32;
  const { tensors, model } = readInitializers(fp32);
  const graph = graphOf(model);
  const producer = producers(graph);
  let replaced = 0;
  graph.node = graph.node.map((node) => {
    const w = matMulWeight(node, tensors, producer);
    if (!w) return node;
    const q = quantizeQ4(w.weight, w.n, w.k, blockSize);
    const base = `${node.name || node.output[0]}/q4`;
    graph.initializer.push(
      onnx.TensorProto.create({ name: `${base}/B`, dataType: UINT8, dims: [w.n, q.kBlocks, blockSize / 2], rawData: q.packed }),
      onnx.TensorProto.create({ name: `${base}/scales`, dataType: DT.FLOAT, dims: [w.n * q.kBlocks], rawData: new Uint8Array(q.scales.buffer) }),
      onnx.TensorProto.create({ name: `${base}/zero_points`, dataType: UINT8, dims: [q.zeroPoints.length], rawData: q.zeroPoints }),
    );
    replaced++;
    const attr = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
    return onnx.NodeProto.create({
      name: `${node.name}/MatMulNBits`,
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      input: [node.input[0], `${base}/B`, `${base}/scales`, `${base}/zero_points`],
      output: node.output,
      attribute: [attr('K', w.k), attr('N', w.n), attr('bits', 4), attr('block_size', blockSize)],
    });
  });
  pruneUnused(graph);
  ensureOpset(model, 'com.microsoft', 1);
  return { bytes: onnx.ModelProto.encode(model).finish(), model, replaced };
}
