/**
 * Attention twins: one set of weights written as a decomposed graph and as fused
 * com.microsoft.GroupQueryAttention graphs with each way of delivering positions. Every method must give the
 * same tokens on all of them (the runtime either fixes a graph's positions or refuses it).
 */
import { join } from 'node:path';
import { TINY_SIZES } from './fixtures.js';
import type { ModelSpec } from './spec.js';
import { writeDecoderModel } from './writer.js';

export type TwinName = 'decomposed' | 'gqa-wired' | 'gqa-unwired' | 'gqa-absent';
export const TWIN_NAMES: readonly TwinName[] = ['decomposed', 'gqa-wired', 'gqa-unwired', 'gqa-absent'];

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

/** Writes the four twins as sub-folders of `dir`; returns their paths by name. Deterministic, ~1 s. */
export function writeAttentionTwins(dir: string, base: ModelSpec = TWIN_SPEC): Record<TwinName, string> {
  const out = {} as Record<TwinName, string>;
  for (const name of TWIN_NAMES) {
    const spec: ModelSpec =
      name === 'decomposed' ? { ...base, attention: 'decomposed' } : { ...base, attention: 'gqa', gqaPositionIds: name.slice(4) as 'wired' | 'unwired' | 'absent' };
    out[name] = writeDecoderModel({ dir: join(dir, name), spec }).dir;
  }
  return out;
}
