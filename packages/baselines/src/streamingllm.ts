import {
  type Budget,
  type BudgetOption,
  type CachePolicyV1,
  type CapabilityName,
  contextBudget,
  keepAll,
  type KeptIndices,
  type PolicyConfig,
  requireInteger,
  type SelectionContextV1,
  validateBudgetOption,
} from '@draft/core';
import { selectStreamingLLM } from './select-streamingllm.js';

export interface StreamingLLMOptions {
  /**
   * C per (layer, KV head), window included: a number or a core `Budget`, stored as a `Budget`. Core's pipeline uses it
   * as its default C (its own `budget` option wins); `select` always uses `SelectionContextV1.budget`.
   */
  budget?: BudgetOption;
  /** W: recent prompt positions kept, 0 < W < C. Default 32. */
  windowSize?: number;
}

/**
 * StreamingLLM at prefill as a `CachePolicyV1`: the first C − W prompt entries (sinks) + the window. Reads no
 * queries or keys. For the decode-time variant (4 sinks + a recent window) see `slidingWindowDecode`.
 */
export class StreamingLLMPolicy implements CachePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'streamingllm';
  readonly requires: readonly CapabilityName[] = ['kvSelection'];
  readonly queryWindow = 0;
  readonly usesLookahead = false;
  readonly budget: Budget | undefined;
  readonly windowSize: number;

  constructor(options: StreamingLLMOptions = {}) {
    this.windowSize = requireInteger('windowSize', options.windowSize ?? 32, 1);
    this.budget = validateBudgetOption(options.budget, this.windowSize);
  }

  async select(context: SelectionContextV1): Promise<KeptIndices> {
    const budget = contextBudget(context, this.windowSize);
    if (context.promptLength <= budget) return keepAll(context);
    return selectStreamingLLM({
      promptLength: context.promptLength,
      numLayers: context.numLayers,
      numKvHeads: context.numKvHeads,
      budget,
      windowSize: this.windowSize,
    });
  }

  /** One layer's kept indices (every layer keeps the same sinks and window). */
  async selectLayer(context: SelectionContextV1, _layer: number): Promise<Int32Array[]> {
    return Array.from((await this.select({ ...context, numLayers: 1 }))[0]);
  }

  toConfig(): PolicyConfig {
    return { type: 'streamingllm', ...(this.budget === undefined ? {} : { budget: this.budget }), windowSize: this.windowSize };
  }
}

/** `new StreamingLLMPolicy(options)`. */
export function streamingllm(options: StreamingLLMOptions = {}): StreamingLLMPolicy {
  return new StreamingLLMPolicy(options);
}
