import {
  mulberry32,
  type PolicyConfig,
  type PromptCompressionInputV1,
  type PromptCompressorV1,
  range,
  requireBoolean,
  requireInteger,
  throwIfAborted,
  type TokenizerV1,
} from '@draft/core';
import { buildResult, type CompressionResult, readInput } from './shared.js';

/**
 * min(C, n) distinct positions drawn uniformly without replacement, ascending: a partial Fisher–Yates shuffle of
 * 0 … n−1 driven by core's mulberry32(seed) — for i = 0 … C−1, j = i + ⌊u·(n − i)⌋, swap(i, j) — then sorted.
 * The same seed gives the same selection for the same n and C.
 */
export function selectRandom(options: { promptLength: number; budget: number; seed: number }): Int32Array {
  const n = requireInteger('promptLength', options.promptLength, 1);
  const c = requireInteger('budget', options.budget, 1);
  if (!Number.isInteger(options.seed)) requireInteger('seed', options.seed, Number.MIN_SAFE_INTEGER);
  if (c >= n) return range(0, n);
  const random = mulberry32(options.seed);
  const order = range(0, n);
  for (let i = 0; i < c; i++) {
    const j = i + Math.floor(random() * (n - i));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order.slice(0, c).sort();
}

export interface RandomOptions {
  /** PRNG seed (integer). Default 0. Every call starts from this seed: equal prompts get equal selections. */
  seed?: number;
  keepOriginalPositions?: boolean;
  /** Detokenises the kept ids when the call brings no draft. */
  tokenizer?: TokenizerV1;
}

export interface RandomConfig extends PolicyConfig {
  type: 'random';
  seed: number;
  keepOriginalPositions: boolean;
}

/** Random baseline: keep C uniformly drawn prompt tokens (seeded), in prompt order. Needs no model. */
export class RandomCompressor implements PromptCompressorV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'random';
  readonly needs = 'none' as const;
  readonly seed: number;
  readonly keepOriginalPositions: boolean;
  private readonly tokenizer: TokenizerV1 | undefined;

  constructor(options: RandomOptions = {}) {
    this.seed = requireInteger('seed', options.seed ?? 0, Number.MIN_SAFE_INTEGER);
    this.keepOriginalPositions = requireBoolean('keepOriginalPositions', options.keepOriginalPositions ?? false);
    this.tokenizer = options.tokenizer;
  }

  static fromConfig(config: PolicyConfig): RandomCompressor {
    const { type: _type, ...options } = config;
    return new RandomCompressor(options as RandomOptions);
  }

  async compress(input: PromptCompressionInputV1): Promise<CompressionResult> {
    const { ids, budget } = readInput(input);
    throwIfAborted(input.signal);
    const kept = selectRandom({ promptLength: ids.length, budget, seed: this.seed });
    return buildResult({ input, ids, kept, tokenizer: this.tokenizer ?? input.draft?.tokenizer, keepOriginalPositions: this.keepOriginalPositions });
  }

  toConfig(): RandomConfig {
    return { type: 'random', seed: this.seed, keepOriginalPositions: this.keepOriginalPositions };
  }
}
