/**
 * Attention twins: one set of weights written in every attention style real exports use — a decomposed
 * graph and fused graphs (GroupQueryAttention with positions wired, not wired, or absent from the graph;
 * packed QKV; RotaryEmbedding nodes before GQA; the ONNX opset-23 Attention op; MultiHeadAttention). Every
 * method must give the same tokens on all of them (the runtime either fixes a graph's positions or refuses it).
 */
import { join } from 'node:path';
import { TINY_SIZES } from './fixtures.js';
import type { AttentionVariant, ModelSpec } from './spec.js';
import { writeDecoderModel } from './writer.js';

export type TwinName = 'decomposed' | 'gqa-wired' | 'gqa-unwired' | 'gqa-absent' | 'gqa-packed' | 'gqa-rotary-node' | 'attention23' | 'mha';

/** The twins of TWIN_SPEC (grouped KV heads). MultiHeadAttention has none: see MHA_TWIN_SPEC. */
export const TWIN_NAMES: readonly TwinName[] = ['decomposed', 'gqa-wired', 'gqa-unwired', 'gqa-absent', 'gqa-packed', 'gqa-rotary-node', 'attention23'];

/** The twins' shared shape: tiny-llama's sizes and seed, enough positions for 2K prompts. */
export const TWIN_SPEC: ModelSpec = {
  architecture: 'llama',
  attention: 'decomposed',
  ...TINY_SIZES,
  maxPositions: 2048,
  tieWordEmbeddings: false,
  seed: 1,
  weightScale: 0.2,
};

/** Twin shape for `decomposed` vs `mha`: as TWIN_SPEC with one KV head per query head. */
export const MHA_TWIN_SPEC: ModelSpec = { ...TWIN_SPEC, numKvHeads: TWIN_SPEC.numHeads };

function twinSpec(base: ModelSpec, name: TwinName): ModelSpec {
  if (name.startsWith('gqa-') && ['wired', 'unwired', 'absent'].includes(name.slice(4))) {
    return { ...base, attention: 'gqa', gqaPositionIds: name.slice(4) as 'wired' | 'unwired' | 'absent' };
  }
  return { ...base, attention: name as AttentionVariant };
}

/** Writes the named twins (default TWIN_NAMES) as sub-folders of `dir`; returns their paths. Deterministic, < 1 s each. */
export function writeAttentionTwins(dir: string, base: ModelSpec = TWIN_SPEC, names: readonly TwinName[] = TWIN_NAMES): Record<TwinName, string> {
  const out = {} as Record<TwinName, string>;
  for (const name of names) out[name] = writeDecoderModel({ dir: join(dir, name), spec: twinSpec(base, name) }).dir;
  return out;
}
