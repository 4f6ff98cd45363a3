import { validateKeptIndices } from '../primitives/kept-indices.js';
import { InvalidArgumentError } from '../spec/errors.js';
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
  /** The selection itself: per (layer, KV head) ascending distinct indices in [0, n − 1). Give this, `selectLayer`, or both. */
  select?(context: SelectionContextV1): Promise<KeptIndices> | KeptIndices;
  /**
   * A layer-local selection: one layer's kept indices per KV head, reading only that layer's queries and keys.
   * Lets a target with `prefillSelect` select inside its layer loop (one layer's full KV at a time); `select`
   * defaults to calling it for every layer.
   */
  selectLayer?(context: SelectionContextV1, layer: number): Promise<readonly Int32Array[]> | readonly Int32Array[];
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
  const { type } = options;
  const layerFn = options.selectLayer;
  if (!options.select && !layerFn) throw new InvalidArgumentError({ argument: 'select', value: undefined, expected: 'a select or a selectLayer function' });
  const source = `cache policy '${type}'`;
  const select =
    options.select ??
    (async (context: SelectionContextV1): Promise<KeptIndices> => {
      const kept: (readonly Int32Array[])[] = [];
      for (let layer = 0; layer < context.numLayers; layer++) kept.push(await (layerFn as NonNullable<typeof layerFn>)(context, layer));
      return kept;
    });
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
        source,
      });
      return kept;
    },
    ...(layerFn
      ? {
          async selectLayer(context: SelectionContextV1, layer: number): Promise<Int32Array[]> {
            const heads = await layerFn(context, layer);
            validateKeptIndices([heads], { numLayers: 1, numKvHeads: context.numKvHeads, limit: context.promptLength - 1, source });
            return Array.from(heads);
          },
        }
      : {}),
    toConfig(): PolicyConfig {
      return { ...config, type };
    },
  });
}
