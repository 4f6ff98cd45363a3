import {
  type CapabilityName,
  type KernelBackendV1,
  type KernelProgram,
  type PolicyConfig,
  requireInteger,
  type ValidatedWindowInput,
} from '@draft/core';
import { WindowPolicy, type WindowPolicyOptions } from './internal/window-policy.js';
import { PYRAMIDKV_DEFAULT_BETA, pyramidLayerBudgets, selectPyramidLayer } from './select-pyramidkv.js';

export interface PyramidKVOptions extends WindowPolicyOptions {
  /** β, integer ≥ 1: the top layer's share is (C − W)/β. Default 20. */
  beta?: number;
}

/**
 * PyramidKV (Cai et al. 2024) as a `CachePolicyV1`: SnapKV scoring with a per-layer budget that falls
 * linearly from ≈ 2(C − W) (layer 0) to (C − W)/β (last layer); see `pyramidLayerBudgets`. Layers hold
 * different lengths: requires 'raggedLayers'.
 */
export class PyramidKVPolicy extends WindowPolicy {
  readonly type: string = 'pyramidkv';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'queryCapture', 'raggedLayers'];
  readonly usesLookahead: boolean = false;
  readonly beta: number;
  protected readonly reduceOp = 'mean' as const;

  constructor(options: PyramidKVOptions = {}) {
    super(options);
    this.beta = requireInteger('beta', options.beta ?? PYRAMIDKV_DEFAULT_BETA, 1);
  }

  protected layerProgram(input: ValidatedWindowInput, layer: number, numLayers: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
    const shares = pyramidLayerBudgets({ numLayers, budget: input.budget, windowSize: input.windowSize, beta: this.beta });
    return selectPyramidLayer(input, 0, shares[layer], backend);
  }

  override toConfig(): PolicyConfig {
    return { ...super.toConfig(), beta: this.beta };
  }
}

/** `new PyramidKVPolicy(options)`. */
export function pyramidkv(options: PyramidKVOptions = {}): PyramidKVPolicy {
  return new PyramidKVPolicy(options);
}
