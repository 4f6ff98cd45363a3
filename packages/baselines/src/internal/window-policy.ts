import {
  type Budget,
  type BudgetOption,
  type CachePolicyV1,
  type CapabilityName,
  contextBudget,
  getKernelBackend,
  InvalidArgumentError,
  keepAll,
  type KeptIndices,
  type KernelBackendV1,
  type KernelProgram,
  type PolicyConfig,
  type PoolType,
  type ReduceOp,
  requireInteger,
  requireOneOf,
  runAsync,
  type SelectionContextV1,
  throwIfAborted,
  readWindowLayer,
  validateBudgetOption,
  type ValidatedWindowInput,
  validateKernel,
} from '@draft/core';

export interface WindowPolicyOptions {
  /**
   * C per (layer, KV head), window included (`max_capacity_prompt`): a number or a core `Budget` (ratios
   * resolve per prompt), stored as a `Budget`. Core's pipeline uses it as its default C (the pipeline's own
   * `budget` option wins, else 256); `select` always uses `SelectionContextV1.budget`, so the pipeline's
   * n ≤ C check and the selection agree.
   */
  budget?: BudgetOption;
  /** W: trailing prompt positions always kept, 0 < W < C (`window_size`). Default 32. */
  windowSize?: number;
  /** Pooling kernel, odd; 1 = none (`kernel_size`). Default 7. */
  kernelSize?: number;
  /** 'max' (default) or 'avg' (`pooling`). */
  poolType?: PoolType;
}

/**
 * Shared body of the window-scored policies (SnapKV, PyramidKV, AdaKV, LAQ++): option validation at
 * construction, budget resolution, n ≤ C pass-through, one layer read and scored at a time on
 * `getKernelBackend()`, abort checks between layers. Subclasses give the per-layer program.
 */
export abstract class WindowPolicy implements CachePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  abstract readonly type: string;
  abstract readonly requires: readonly CapabilityName[];
  abstract readonly usesLookahead: boolean;
  readonly queryWindow: number;
  readonly budget: Budget | undefined;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly poolType: PoolType;
  protected abstract readonly reduceOp: ReduceOp;

  constructor(options: WindowPolicyOptions) {
    this.windowSize = requireInteger('windowSize', options.windowSize ?? 32, 1);
    this.budget = validateBudgetOption(options.budget, this.windowSize);
    this.kernelSize = validateKernel(options.kernelSize ?? 7);
    this.poolType = requireOneOf('poolType', options.poolType ?? 'max', ['max', 'avg'] as const);
    this.queryWindow = this.windowSize + 1;
  }

  protected abstract layerProgram(input: ValidatedWindowInput, layer: number, numLayers: number, backend: KernelBackendV1): KernelProgram<Int32Array[]>;

  async select(context: SelectionContextV1): Promise<KeptIndices> {
    const kept: Int32Array[][] = [];
    for (let layer = 0; layer < context.numLayers; layer++) kept.push(await this.selectLayer(context, layer));
    return kept;
  }

  /** One layer's kept indices: these policies are layer-local (one layer's window queries and keys). */
  async selectLayer(context: SelectionContextV1, layer: number): Promise<Int32Array[]> {
    const budget = contextBudget(context, this.windowSize);
    if (context.promptLength <= budget) return keepAll(context)[layer];
    const lookahead = context.lookaheadLength;
    if (!this.usesLookahead && lookahead !== 0) {
      throw new InvalidArgumentError({
        argument: 'context.lookaheadLength',
        value: lookahead,
        expected: `0: '${this.type}' scores with the prompt window only (usesLookahead is false)`,
      });
    }
    throwIfAborted(context.signal);
    const input = await readWindowLayer(context, layer, {
      budget,
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      poolType: this.poolType,
      reduce: this.reduceOp,
    });
    return runAsync(this.layerProgram(input, layer, context.numLayers, getKernelBackend()), context.signal);
  }

  toConfig(): PolicyConfig {
    return {
      type: this.type,
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      poolType: this.poolType,
    };
  }
}
