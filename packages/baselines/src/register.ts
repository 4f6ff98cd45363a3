import { createPolicy, optionsFromConfig, type PolicyConfig, type PolicyKind, registerPolicy } from '@draft/core';
import { AdaKVPolicy } from './adakv.js';
import { H2OPolicy } from './h2o.js';
import { LAQPolicy } from './laq.js';
import { PeriodicRescore } from './periodic-rescore.js';
import { PyramidKVPolicy } from './pyramidkv.js';
import { SlidingWindowDecode } from './sliding-window-decode.js';
import { SnapKVPolicy } from './snapkv.js';
import { StreamingLLMPolicy } from './streamingllm.js';
import { TargetPseudoLookahead } from './target-pseudo-lookahead.js';

const WINDOW = ['budget', 'windowSize', 'kernelSize', 'poolType'];
/** core's `fromReferenceConfig` names the reduce op `reduceOp`. */
const ALIASES = { reduceOp: 'reduce' };

/** Config -> instance factories of this package (side-effect free), for a CLI or a custom registry. */
export const policies = Object.freeze({
  snapkv: (c: PolicyConfig) => new SnapKVPolicy(optionsFromConfig(c, WINDOW)),
  pyramidkv: (c: PolicyConfig) => new PyramidKVPolicy(optionsFromConfig(c, [...WINDOW, 'beta'])),
  adakv: (c: PolicyConfig) => new AdaKVPolicy(optionsFromConfig(c, [...WINDOW, 'alpha'])),
  laq: (c: PolicyConfig) => new LAQPolicy(optionsFromConfig(c, [...WINDOW, 'reduce'], ALIASES)),
  streamingllm: (c: PolicyConfig) => new StreamingLLMPolicy(optionsFromConfig(c, ['budget', 'windowSize'])),
  h2o: (c: PolicyConfig) => new H2OPolicy(optionsFromConfig(c, ['budget', 'windowSize', 'kernelSize', 'queryBlockSize'])),
  'target-pseudo-lookahead': (c: PolicyConfig) => new TargetPseudoLookahead(optionsFromConfig(c, [...WINDOW, 'maxNewTokens'])),
  'sliding-window': (c: PolicyConfig) => new SlidingWindowDecode(optionsFromConfig(c, ['numSinkTokens', 'windowSize'])),
  'periodic-rescore': (c: PolicyConfig) => {
    const { every, policy } = optionsFromConfig<{ every: number; policy: PolicyConfig }>(c, ['every', 'policy']);
    return new PeriodicRescore({ every, policy: createPolicy(policy, { kind: 'decode' }) });
  },
});

const KINDS: Record<keyof typeof policies, { kind: PolicyKind; description: string }> = {
  snapkv: { kind: 'cache', description: 'SnapKV (Li et al. 2024): last-window queries, mean over heads × queries, pooled' },
  pyramidkv: { kind: 'cache', description: 'PyramidKV (Cai et al. 2024): SnapKV scores, per-layer budgets falling with depth (β = 20)' },
  adakv: { kind: 'cache', description: 'AdaKV (Feng et al. 2024): SnapKV scores, per-head budgets from a global top-k (α = 0.2)' },
  laq: { kind: 'cache', description: "LAQ++: SpecKV's selection with the target's own pseudo-lookahead" },
  streamingllm: { kind: 'cache', description: 'StreamingLLM (Xiao et al. 2024): first C − W prompt entries + the window' },
  h2o: { kind: 'cache', description: 'H2O (Zhang et al. 2023): accumulated causal attention of all prompt queries' },
  'target-pseudo-lookahead': { kind: 'lookahead', description: 'LAQ++ lookahead: the target answers a few tokens with a SnapKV cache' },
  'sliding-window': { kind: 'decode', description: 'StreamingLLM decode: attention sinks + a recent window' },
  'periodic-rescore': { kind: 'decode', description: 'Runs a decode policy every N steps' },
};

/**
 * Registers every baseline with core's process-wide policy registry (`createPolicy({ type: 'snapkv' })`).
 * A second call throws DuplicatePolicyError unless `override: true`. Returns a function removing them all.
 */
export function registerBaselines(options: { override?: boolean } = {}): () => void {
  const undo: (() => void)[] = [];
  try {
    for (const [type, factory] of Object.entries(policies)) {
      const { kind, description } = KINDS[type as keyof typeof policies];
      undo.push(registerPolicy(type, factory, { kind, description, override: options.override }));
    }
  } catch (error) {
    for (const u of undo) u();
    throw error;
  }
  return () => {
    for (const u of undo) u();
  };
}
