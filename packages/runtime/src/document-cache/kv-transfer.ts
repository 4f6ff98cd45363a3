import { range } from '@draft/core';
import type { OrtCausalLM } from '../causal-lm.js';
import { OrtKvCache } from '../kv-cache.js';
import type { ExportedKv } from '../worker-protocol.js';

/** Copies of every layer's keys and values of `cache`, in the graph's element type (float16 as raw bits). */
export function exportKv(model: OrtCausalLM, cache: OrtKvCache): Promise<ExportedKv> {
  return model.kvContext.client.request<ExportedKv>({ type: 'export', cache: cache.handle });
}

/**
 * A cache of `model` holding stored tensors, per layer (numKvHeads, length, headDim), at positions 0 … length − 1.
 * The arrays are transferred to the model's worker (unusable here afterwards).
 */
export async function importKv(
  model: OrtCausalLM,
  tensors: { keys: (Float32Array | Uint16Array)[]; values: (Float32Array | Uint16Array)[]; length: number },
): Promise<OrtKvCache> {
  const context = model.kvContext;
  const transfer = [...tensors.keys, ...tensors.values].map((t) => t.buffer as ArrayBuffer);
  const handle = await context.client.request<number>({ type: 'import', keys: tensors.keys, values: tensors.values, length: tensors.length }, { transfer });
  return OrtKvCache.fresh(context, handle, range(0, tensors.length));
}
