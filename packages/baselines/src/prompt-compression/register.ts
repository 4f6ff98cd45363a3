import { globalPolicyRegistry, type PolicyConfig, type PromptCompressorV1, registerPolicy } from '@draft/core';
import { RandomCompressor } from './random.js';
import { RecencyCompressor } from './recency.js';
import { SelfInformationCompressor } from './self-information.js';
import { SpecPrefillCompressor } from './spec-prefill.js';

const COMPRESSORS: readonly [string, (config: PolicyConfig) => PromptCompressorV1, string][] = [
  ['specprefill', SpecPrefillCompressor.fromConfig, 'SpecPrefill (Liu et al. 2025): draft lookahead queries score the prompt; chunks of 32 kept'],
  ['self-information', SelfInformationCompressor.fromConfig, 'Self-information (Selective Context / LLMLingua-1 style): drop the draft LM’s least surprising tokens'],
  ['recency', RecencyCompressor.fromConfig, 'Recency: keep the last C prompt tokens'],
  ['random', RandomCompressor.fromConfig, 'Random: keep C seeded uniformly drawn prompt tokens'],
];

/**
 * Registers the prompt-compression baselines ('specprefill', 'self-information', 'recency', 'random') as
 * 'compressor' policies. Idempotent unless `override`. Returns a function removing what this call registered.
 */
export function registerPromptCompressionBaselines(options: { override?: boolean } = {}): () => void {
  const registry = globalPolicyRegistry();
  const undo: (() => void)[] = [];
  for (const [type, factory, description] of COMPRESSORS) {
    if (!options.override && registry.has(type)) continue;
    undo.push(registerPolicy<'compressor'>(type, factory, { kind: 'compressor', description, override: options.override }));
  }
  return () => {
    for (const u of undo) u();
  };
}
