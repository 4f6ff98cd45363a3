import {
  type CapabilityName,
  type DecodePolicyV1,
  type DecodeStepContextV1,
  type KeptIndices,
  type PolicyConfig,
  requireInteger,
} from '@draft/core';
import { InvalidArgumentError } from '@draft/core';

export interface SlidingWindowDecodeOptions {
  /** Leading cache entries always kept (attention sinks; StreamingLLM uses 4). Default 4. */
  numSinkTokens?: number;
  /** Most recent cache entries kept besides the sinks. Required. */
  windowSize: number;
}

/**
 * StreamingLLM's decode-time variant (Xiao et al. 2024) as a `DecodePolicyV1`: once a (layer, KV head) holds
 * more than numSinkTokens + windowSize entries, keep its first `numSinkTokens` and its last `windowSize`
 * entries. Works per (layer, KV head) on whatever the cache holds (also ragged caches); entries keep their
 * original positions, so new tokens continue at the true next position.
 */
export class SlidingWindowDecode implements DecodePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'sliding-window';
  readonly requires: readonly CapabilityName[] = ['kvSelection'];
  readonly numSinkTokens: number;
  readonly windowSize: number;

  constructor(options: SlidingWindowDecodeOptions) {
    if (options?.windowSize === undefined) {
      throw new InvalidArgumentError({ argument: 'windowSize', value: undefined, expected: 'an integer ≥ 1 (recent entries kept while decoding)' });
    }
    this.numSinkTokens = requireInteger('numSinkTokens', options.numSinkTokens ?? 4, 0);
    this.windowSize = requireInteger('windowSize', options.windowSize, 1);
  }

  async afterStep(context: DecodeStepContextV1): Promise<KeptIndices | null> {
    const cap = this.numSinkTokens + this.windowSize;
    const lengths = context.cache.lengths;
    if (lengths.every((heads) => heads.every((length) => length <= cap))) return null;
    return lengths.map((heads) => heads.map((length) => this.keep(length)));
  }

  /** Indices kept from `length` entries. */
  keep(length: number): Int32Array {
    const cap = this.numSinkTokens + this.windowSize;
    const count = Math.min(length, cap);
    const out = new Int32Array(count);
    if (length <= cap) {
      for (let i = 0; i < count; i++) out[i] = i;
      return out;
    }
    for (let i = 0; i < this.numSinkTokens; i++) out[i] = i;
    for (let i = 0; i < this.windowSize; i++) out[this.numSinkTokens + i] = length - this.windowSize + i;
    return out;
  }

  toConfig(): PolicyConfig {
    return { type: 'sliding-window', numSinkTokens: this.numSinkTokens, windowSize: this.windowSize };
  }
}

/** `new SlidingWindowDecode(options)`. */
export function slidingWindowDecode(options: SlidingWindowDecodeOptions): SlidingWindowDecode {
  return new SlidingWindowDecode(options);
}
