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
  type PolicyConfig,
  requireInteger,
  runAsync,
  type SelectionContextV1,
  throwIfAborted,
  validateBudgetOption,
  validateKernel,
} from '@draft/core';
import { prepareH2O, selectH2OLayer } from './select-h2o.js';

export interface H2OOptions {
  /**
   * C per (layer, KV head), window included: a number or a core `Budget`, stored as a `Budget`. Core's pipeline uses it
   * as its default C (its own `budget` option wins); `select` always uses `SelectionContextV1.budget`.
   */
  budget?: BudgetOption;
  /** W: recent prompt positions always kept, 0 < W < C. Default 32. */
  windowSize?: number;
  /** Optional max-pooling of the scores, odd; default 1 (none, as H2O). */
  kernelSize?: number;
  /** Queries per kernel call. Default 512. */
  queryBlockSize?: number;
}

/**
 * H2O (Zhang et al. 2023) at prefill as a `CachePolicyV1`: accumulated causal attention of every prompt query
 * (sum over group heads × queries), top C − W + the window. Needs every prompt position's queries:
 * `queryWindow: 'all'`, requires 'allQueryCapture'.
 */
export class H2OPolicy implements CachePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'h2o';
  readonly requires: readonly CapabilityName[] = ['kvSelection', 'allQueryCapture'];
  readonly queryWindow = 'all' as const;
  readonly usesLookahead = false;
  readonly budget: Budget | undefined;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly queryBlockSize: number;

  constructor(options: H2OOptions = {}) {
    this.windowSize = requireInteger('windowSize', options.windowSize ?? 32, 1);
    this.budget = validateBudgetOption(options.budget, this.windowSize);
    this.kernelSize = validateKernel(options.kernelSize ?? 1);
    this.queryBlockSize = requireInteger('queryBlockSize', options.queryBlockSize ?? 512, 1);
  }

  async select(context: SelectionContextV1): Promise<KeptIndices> {
    const budget = contextBudget(context, this.windowSize);
    if (context.promptLength <= budget) return keepAll(context);
    const n = context.promptLength;
    if (context.lookaheadLength !== 0 || context.queryCount !== n) {
      throw new InvalidArgumentError({
        argument: 'context.queryCount',
        value: context.queryCount,
        expected: `every prompt position's queries (${n}) and no lookahead (got lookaheadLength ${context.lookaheadLength})`,
      });
    }
    const backend = getKernelBackend();
    const kept: Int32Array[][] = [];
    for (let layer = 0; layer < context.numLayers; layer++) {
      throwIfAborted(context.signal);
      const input = prepareH2O({
        queries: [await context.queries(layer)],
        keys: [await context.keys(layer)],
        numHeads: context.numHeads,
        numKvHeads: context.numKvHeads,
        headDim: context.headDim,
        promptLength: n,
        budget,
        windowSize: this.windowSize,
        kernelSize: this.kernelSize,
        queryBlockSize: this.queryBlockSize,
      });
      kept.push(await runAsync(selectH2OLayer(input, 0, backend), context.signal));
    }
    return kept;
  }

  toConfig(): PolicyConfig {
    return {
      type: 'h2o',
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      queryBlockSize: this.queryBlockSize,
    };
  }
}

/** `new H2OPolicy(options)`. */
export function h2o(options: H2OOptions = {}): H2OPolicy {
  return new H2OPolicy(options);
}
