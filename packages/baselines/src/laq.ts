import {
  type CapabilityName,
  type KernelBackendV1,
  type KernelProgram,
  type PolicyConfig,
  type ReduceOp,
  requireOneOf,
  selectUniformWindowLayer,
  type ValidatedWindowInput,
} from '@draft/core';
import { WindowPolicy, type WindowPolicyOptions } from './internal/window-policy.js';

export interface LAQOptions extends WindowPolicyOptions {
  /** Reduce over group heads × window and pseudo-lookahead queries. Default 'max' (as SpecKV). */
  reduce?: ReduceOp;
}

/**
 * LAQ++ as a `CachePolicyV1`: SpecKV's selection with the target's own pseudo-lookahead (pair it with
 * `TargetPseudoLookahead`); see `selectLAQ`.
 */
export class LAQPolicy extends WindowPolicy {
  readonly type: string = 'laq';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'queryCapture'];
  readonly usesLookahead: boolean = true;
  protected readonly reduceOp: ReduceOp;

  constructor(options: LAQOptions = {}) {
    super(options);
    this.reduceOp = requireOneOf('reduce', options.reduce ?? 'max', ['max', 'mean', 'sum'] as const);
  }

  get reduce(): ReduceOp {
    return this.reduceOp;
  }

  protected layerProgram(input: ValidatedWindowInput, _layer: number, _numLayers: number, backend: KernelBackendV1): KernelProgram<Int32Array[]> {
    return selectUniformWindowLayer(input, 0, backend);
  }

  override toConfig(): PolicyConfig {
    return { ...super.toConfig(), reduce: this.reduceOp };
  }
}

/** `new LAQPolicy(options)`. */
export function laq(options: LAQOptions = {}): LAQPolicy {
  return new LAQPolicy(options);
}
