/**
 * fp32 → `model_fp16.onnx` as Optimum fp16 exports are: weights, activations, past/present KV and logits in
 * float16; int64 inputs (ids, mask, positions) unchanged. Float constants beyond ±65504 (the additive mask's
 * "−3.4e38") clamp to the float16 range.
 */
import onnxProto from 'onnx-proto';
import { graphOf, type ModelProto } from './convert-graph.js';
import { DT, readInitializers } from './onnx-builder.js';
import { halfBitsToFloat, toHalfArray } from './float16.js';

const { onnx } = onnxProto;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
export const FLOAT16 = 10;

function halfTensor(t: TensorProto, values: ArrayLike<number>): void {
  const half = toHalfArray(values);
  t.dataType = FLOAT16;
  t.floatData = [];
  t.rawData = new Uint8Array(half.buffer);
}

/** Float32 values of a tensor held as raw data or float_data. */
function floats(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) return new Float32Array(Uint8Array.from(t.rawData).buffer);
  return Float32Array.from(t.floatData ?? []);
}

/** Returns a copy of `fp32` (serialized ModelProto) computing in float16. */
export function convertToFp16(fp32: Uint8Array): { bytes: Uint8Array; model: ModelProto } {
  const { tensors, model } = readInitializers(fp32);
  const graph = graphOf(model);
  for (const t of graph.initializer) {
    if (t.dataType === DT.FLOAT) halfTensor(t as TensorProto, (tensors.get(t.name as string)?.data as Float32Array) ?? floats(t as TensorProto));
  }
  for (const node of graph.node) {
    for (const a of node.attribute) {
      if (node.opType === 'Cast' && a.name === 'to' && Number(a.i) === DT.FLOAT) a.i = FLOAT16;
      if ((node.opType === 'Constant' || node.opType === 'ConstantOfShape') && a.name === 'value' && a.t?.dataType === DT.FLOAT) {
        halfTensor(a.t as TensorProto, floats(a.t as TensorProto));
      }
    }
  }
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) {
    const tensorType = v.type?.tensorType;
    if (tensorType?.elemType === DT.FLOAT) tensorType.elemType = FLOAT16;
  }
  return { bytes: onnx.ModelProto.encode(model).finish(), model };
}

/**
 * Returns a copy of `fp32` (serialized ModelProto) whose float32 initializers hold the float16 values nearest to
 * theirs (ties to even), still stored and computed as float32: the fp32 twin of `convertToFp16`'s weights, for
 * checking an engine that widens fp16 weights against one that reads float32.
 */
export function roundWeightsToHalf(fp32: Uint8Array): Uint8Array {
  const { tensors, model } = readInitializers(fp32);
  const graph = graphOf(model);
  for (const t of graph.initializer) {
    if (t.dataType !== DT.FLOAT) continue;
    const values = (tensors.get(t.name as string)?.data as Float32Array) ?? floats(t as TensorProto);
    const half = toHalfArray(values);
    const rounded = new Float32Array(half.length);
    for (let i = 0; i < half.length; i++) rounded[i] = halfBitsToFloat(half[i]);
    (t as TensorProto).floatData = [];
    (t as TensorProto).rawData = new Uint8Array(rounded.buffer);
  }
  return onnx.ModelProto.encode(model).finish();
}
