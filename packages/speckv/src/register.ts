import { optionsFromConfig, type PolicyConfig, registerPolicy } from '@draft/core';
import { DraftLookahead, type DraftLookaheadOptions } from './draft-lookahead.js';
import { SpecKVPolicy, type SpecKVOptions } from './speckv-policy.js';

const SPECKV_KEYS = ['budget', 'windowSize', 'kernelSize', 'poolType', 'reduce'];

/** Config -> policy factories of this package, for a CLI or a custom registry. Side-effect free. */
export const policies = Object.freeze({
  speckv: (config: PolicyConfig) => new SpecKVPolicy(optionsFromConfig<SpecKVOptions>(config, SPECKV_KEYS, { reduceOp: 'reduce' })),
  'draft-lookahead': (config: PolicyConfig) => new DraftLookahead(optionsFromConfig<DraftLookaheadOptions>(config, ['maxNewTokens', 'reuseDraftTokens'])),
});

/**
 * Registers `speckv` (cache policy) and `draft-lookahead` (lookahead provider) with core's process-wide policy
 * registry, so `createPolicy({ type: 'speckv', windowSize: 32 })` works. A second call throws
 * DuplicatePolicyError unless `override: true`. Returns a function that removes both registrations.
 */
export function registerSpecKV(options: { override?: boolean } = {}): () => void {
  const undo = [
    registerPolicy('speckv', policies.speckv, {
      kind: 'cache',
      description: 'SpecKV (Galim et al. 2025): target attention from draft lookahead + window queries, max-reduce, max-pool',
      override: options.override,
    }),
    registerPolicy('draft-lookahead', policies['draft-lookahead'], {
      kind: 'lookahead',
      description: "SpecKV lookahead: the draft's greedy answer (EOS kept; crosses as text between tokenizers)",
      override: options.override,
    }),
  ];
  return () => {
    for (const u of undo) u();
  };
}
