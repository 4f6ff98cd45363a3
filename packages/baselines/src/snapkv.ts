import {
  type CapabilityName,
  type KernelBackendV1,
  type KernelProgram,
  type PolicyConfig,
  selectUniformWindowLayer,
  type ValidatedWindowInput,
} from '@draft/core';
import { WindowPolicy, type WindowPolicyOptions } from './internal/window-policy.js';

export type SnapKVOptions = WindowPolicyOptions;

/**
 * SnapKV (Li et al. 2024) as a `CachePolicyV1`: the last W + 1 prompt queries score the candidates, mean over
 * (group heads × queries), pooled (max k = 7 by default; the original avg k = 5 via options), top C − W + the
 * window. No lookahead. See `selectSnapKV` for the exact semantics.
 */
export class SnapKVPolicy extends WindowPolicy {
  readonly type: string = 'snapkv';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'queryCapture'];
  readonly usesLookahead: boolean = false;
  protected readonly reduceOp = 'mean' as const;

  constructor(options: SnapKVOptions = {}) {
    super(options);
  }

  protected layerProgram(input: ValidatedWindowInput, _layer: number, _numLayers: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
    return selectUniformWindowLayer(input, 0, backend);
  }
}

export interface SnapKVConfig extends PolicyConfig {
  type: 'snapkv';
}

/** `new SnapKVPolicy(options)`. */
export function snapkv(options: SnapKVOptions = {}): SnapKVPolicy {
  return new SnapKVPolicy(options);
}
