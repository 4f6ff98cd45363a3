/**
 * The KV-cache and logits element types of a decoder graph, and a check that config.json's shape matches
 * its `past_key_values.N.key|value` inputs ([batch, numKvHeads, past, headDim]).
 */
import { ModelLayoutError } from '@draft/core';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type ValueInfo = onnxProto.onnx.IValueInfoProto;

/** Element types the runtime stores and reads. */
export type FloatType = 'float32' | 'float16';

export interface KvIo {
  /** Element type of every past/present KV tensor. */
  kvType: FloatType;
  logitsType: FloatType;
}

const FLOAT_TYPES = new Map<number, FloatType>([
  [onnx.TensorProto.DataType.FLOAT, 'float32'],
  [onnx.TensorProto.DataType.FLOAT16, 'float16'],
]);

/**
 * Reads the KV and logits types of a graph and checks its KV inputs against config.json: one key and value
 * input per layer and no more, with numKvHeads and headDim where the graph fixes them. Throws
 * ModelLayoutError naming both files.
 */
export function readKvIo(
  graph: { input: ValueInfo[]; output: ValueInfo[] },
  expected: { numLayers: number; numKvHeads: number; headDim: number; modelPath: string; configPath: string },
): KvIo {
  const { modelPath, configPath } = expected;
  const inputs = new Map(graph.input.map((v) => [v.name as string, v]));
  const fail = (message: string, details: Record<string, unknown>): never => {
    throw new ModelLayoutError(`${modelPath} does not match ${configPath}: ${message}`, { path: modelPath, details: { config: configPath, ...details } });
  };
  const graphLayers = [...inputs.keys()].filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
  if (graphLayers !== expected.numLayers) {
    fail(`the graph has ${graphLayers} past_key_values.N.key inputs, config.json declares num_hidden_layers = ${expected.numLayers}.`, { graphLayers });
  }
  const typeOf = (v: ValueInfo | undefined, name: string): FloatType => {
    const elem = v?.type?.tensorType?.elemType ?? 0;
    const type = FLOAT_TYPES.get(elem);
    if (!type) throw new ModelLayoutError(`${modelPath}: '${name}' has element type ${elem}; expected float32 or float16.`, { path: modelPath });
    return type;
  };
  let kvType: FloatType | undefined;
  for (let l = 0; l < expected.numLayers; l++) {
    for (const which of ['key', 'value']) {
      const name = `past_key_values.${l}.${which}`;
      const v = inputs.get(name);
      if (!v) fail(`the graph lacks input '${name}'.`, { input: name });
      const type = typeOf(v, name);
      if (kvType && type !== kvType) throw new ModelLayoutError(`${modelPath}: KV inputs mix float32 and float16 ('${name}' is ${type}).`, { path: modelPath });
      kvType = type;
      const dims = v?.type?.tensorType?.shape?.dim ?? [];
      const fixed = (i: number) => (dims[i]?.dimValue !== undefined && dims[i]?.dimValue !== null ? Number(dims[i].dimValue) : undefined);
      if (dims.length !== 4) fail(`'${name}' has rank ${dims.length}; expected [batch, num_key_value_heads, past, head_dim].`, { input: name });
      const heads = fixed(1);
      const headDim = fixed(3);
      if (heads !== undefined && heads !== expected.numKvHeads) {
        fail(`'${name}' has ${heads} KV heads, config.json declares num_key_value_heads = ${expected.numKvHeads}.`, { input: name, graphKvHeads: heads });
      }
      if (headDim !== undefined && headDim !== expected.headDim) {
        fail(`'${name}' has head dim ${headDim}, config.json implies head_dim = ${expected.headDim}.`, { input: name, graphHeadDim: headDim });
      }
    }
  }
  const logits = graph.output.find((o) => o.name === 'logits');
  if (!logits) throw new ModelLayoutError(`${modelPath} has no 'logits' output.`, { path: modelPath });
  return { kvType: kvType ?? 'float32', logitsType: typeOf(logits, 'logits') };
}
