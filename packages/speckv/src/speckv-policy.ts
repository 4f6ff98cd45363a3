import {
  type Budget,
  type BudgetOption,
  type CachePolicyV1,
  type CapabilityName,
  contextBudget,
  getKernelBackend,
  keepAll,
  type KeptIndices,
  type PolicyConfig,
  type PoolType,
  type ReduceOp,
  requireInteger,
  requireOneOf,
  runAsync,
  type SelectionContextV1,
  selectUniformWindowLayer,
  throwIfAborted,
  readWindowLayer,
  validateBudgetOption,
  validateKernel,
} from '@draft/core';
import { SPECKV_DEFAULTS } from './select-speckv.js';

export interface SpecKVOptions {
  /**
   * C: entries kept per (layer, KV head), window included (`max_capacity_prompt`), as a number or a core
   * `Budget` (`{ tokens }`, `{ keepRatio }`, `{ compressionRatio }` resolved against each prompt); stored as a
   * `Budget`. It is the **default** for core's pipeline, whose own `budget` option wins; `select` always uses
   * `SelectionContextV1.budget`, so the pipeline's n ≤ C check and the selection agree. Default: the
   * pipeline's (256, ALGORITHMS.md).
   */
  budget?: BudgetOption;
  /** W: trailing prompt positions always kept, 0 < W < C (`window_size`). Default 32. */
  windowSize?: number;
  /** Pooling kernel k, odd; 1 = no pooling (`kernel_size`). Default 7. */
  kernelSize?: number;
  /** 'max' (default, −inf padding) or 'avg' (zero padding, divides by k) (`pooling`). */
  poolType?: PoolType;
  /** Reduce over group heads × window queries. Default 'max'. */
  reduce?: ReduceOp;
}

export interface SpecKVConfig extends PolicyConfig {
  type: 'speckv';
  budget?: Budget;
  windowSize: number;
  kernelSize: number;
  poolType: PoolType;
  reduce: ReduceOp;
}

/**
 * SpecKV as a `CachePolicyV1` (Galim et al. 2025, §3): scores the prompt's KV with the target's attention
 * from the last W + 1 prompt queries plus the draft's lookahead queries, per (layer, KV head), and keeps the
 * top C − W + the window. Pair it with `DraftLookahead`. Layers are read and scored one at a time (peak
 * memory: one layer's keys); scoring, pooling and top-k run on `getKernelBackend()`.
 */
export class SpecKVPolicy implements CachePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'speckv';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'queryCapture'];
  readonly usesLookahead: boolean = true;
  readonly queryWindow: number;
  readonly budget: Budget | undefined;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly poolType: PoolType;
  readonly reduce: ReduceOp;

  constructor(options: SpecKVOptions = {}) {
    this.windowSize = requireInteger('windowSize', options.windowSize ?? SPECKV_DEFAULTS.windowSize, 1);
    this.budget = validateBudgetOption(options.budget, this.windowSize);
    this.kernelSize = validateKernel(options.kernelSize ?? SPECKV_DEFAULTS.kernelSize);
    this.poolType = requireOneOf('poolType', options.poolType ?? SPECKV_DEFAULTS.poolType, ['max', 'avg'] as const);
    this.reduce = requireOneOf('reduce', options.reduce ?? SPECKV_DEFAULTS.reduce, ['max', 'mean', 'sum'] as const);
    this.queryWindow = this.windowSize + 1;
  }

  async select(context: SelectionContextV1): Promise<KeptIndices> {
    const kept: Int32Array[][] = [];
    for (let layer = 0; layer < context.numLayers; layer++) kept.push(await this.selectLayer(context, layer));
    return kept;
  }

  /** One layer's kept indices (SpecKV is layer-local: one layer's window + lookahead queries and keys). */
  async selectLayer(context: SelectionContextV1, layer: number): Promise<Int32Array[]> {
    const budget = contextBudget(context, this.windowSize);
    if (context.promptLength <= budget) return keepAll(context)[layer];
    throwIfAborted(context.signal);
    const input = await readWindowLayer(context, layer, {
      budget,
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      poolType: this.poolType,
      reduce: this.reduce,
    });
    return runAsync(selectUniformWindowLayer(input, 0, getKernelBackend()), context.signal);
  }

  toConfig(): SpecKVConfig {
    return {
      type: 'speckv',
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      poolType: this.poolType,
      reduce: this.reduce,
    };
  }
}

/** `new SpecKVPolicy(options)`. */
export function speckv(options: SpecKVOptions = {}): SpecKVPolicy {
  return new SpecKVPolicy(options);
}
