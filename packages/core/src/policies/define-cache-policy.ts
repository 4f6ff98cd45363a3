import { validateKeptIndices } from '../primitives/kept-indices.js';
import type { CapabilityName } from '../spec/capabilities.js';
import type { KeptIndices } from '../spec/common.js';
import type { CachePolicyV1, PolicyConfig, SelectionContextV1 } from '../spec/policy.js';

export interface DefineCachePolicyOptions {
  type: string;
  /** Capabilities the target must offer. Default: ['tokenIds', 'queryCapture', 'kvSelection']. */
  requires?: readonly CapabilityName[];
  /** Trailing prompt positions whose queries scoring needs, or 'all'. */
  queryWindow: number | 'all';
  /** Default false. */
  usesLookahead?: boolean;
  /** The selection itself: per (layer, KV head) ascending distinct indices in [0, n − 1). */
  select(context: SelectionContextV1): Promise<KeptIndices> | KeptIndices;
  /** Serialisable options, echoed by `toConfig()` after `type`. */
  config?: Record<string, unknown>;
}

export const DEFAULT_CACHE_POLICY_REQUIRES: readonly CapabilityName[] = Object.freeze(['tokenIds', 'queryCapture', 'kvSelection'] as const);

/**
 * Builds a CachePolicyV1 from a plain select function: fills `specificationVersion`, and checks every result
 * with `validateKeptIndices` (numLayers × numKvHeads ascending distinct indices in [0, n − 1)), so a buggy
 * plugin fails with a PolicyOutputError naming itself instead of corrupting the cache.
 */
export function defineCachePolicy(options: DefineCachePolicyOptions): CachePolicyV1 {
  const { type, select } = options;
  const requires = Object.freeze([...(options.requires ?? DEFAULT_CACHE_POLICY_REQUIRES)]);
  const config = Object.freeze({ ...options.config });
  return Object.freeze({
    specificationVersion: 'v1' as const,
    type,
    requires,
    queryWindow: options.queryWindow,
    usesLookahead: options.usesLookahead ?? false,
    async select(context: SelectionContextV1): Promise<KeptIndices> {
      const kept = await select(context);
      validateKeptIndices(kept, {
        numLayers: context.numLayers,
        numKvHeads: context.numKvHeads,
        limit: context.promptLength - 1,
        source: `cache policy '${type}'`,
      });
      return kept;
    },
    toConfig(): PolicyConfig {
      return { ...config, type };
    },
  });
}
