import type { CapabilityName, KernelBackendV1, KernelProgram, PolicyConfig, ValidatedWindowInput } from '@draft/core';
import { WindowPolicy, type WindowPolicyOptions } from './internal/window-policy.js';
import { ADAKV_DEFAULT_ALPHA, selectAdaKVLayer, validateAlpha } from './select-adakv.js';

export interface AdaKVOptions extends WindowPolicyOptions {
  /** Floor α in [0, 1] (`floor_alpha`). Default 0.2. */
  alpha?: number;
}

/**
 * AdaKV (Ada-SnapKV, Feng et al. 2024) as a `CachePolicyV1`: SnapKV scores; per layer a global top
 * Hkv·(C − W) decides how much each KV head keeps (blended with the floor α). KV heads keep different counts:
 * requires 'raggedKvHeads' — the pipeline rejects a backend without it with an UnsupportedCapabilityError.
 */
export class AdaKVPolicy extends WindowPolicy {
  readonly type: string = 'adakv';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'queryCapture', 'raggedKvHeads'];
  readonly usesLookahead: boolean = false;
  readonly alpha: number;
  protected readonly reduceOp = 'mean' as const;

  constructor(options: AdaKVOptions = {}) {
    super(options);
    this.alpha = validateAlpha(options.alpha ?? ADAKV_DEFAULT_ALPHA);
  }

  protected layerProgram(input: ValidatedWindowInput, _layer: number, _numLayers: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
    return selectAdaKVLayer(input, 0, this.alpha, backend);
  }

  override toConfig(): PolicyConfig {
    return { ...super.toConfig(), alpha: this.alpha };
  }
}

/** `new AdaKVPolicy(options)`. */
export function adakv(options: AdaKVOptions = {}): AdaKVPolicy {
  return new AdaKVPolicy(options);
}
