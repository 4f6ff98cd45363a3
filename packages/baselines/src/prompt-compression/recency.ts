import {
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

/** Keeps the last min(C, n) positions n − C … n − 1. */
export function selectRecency(options: { promptLength: number; budget: number }): Int32Array {
  const n = requireInteger('promptLength', options.promptLength, 1);
  const c = requireInteger('budget', options.budget, 1);
  const keep = Math.min(c, n);
  return range(n - keep, n);
}

export interface RecencyOptions {
  /** Return `positionIds` = the kept original positions. Default false (re-indexed). */
  keepOriginalPositions?: boolean;
  /** Detokenises the kept ids when the call brings no draft. */
  tokenizer?: TokenizerV1;
}

export interface RecencyConfig extends PolicyConfig {
  type: 'recency';
  keepOriginalPositions: boolean;
}

/** Recency baseline: keep the last C prompt tokens (the question usually sits at the end). Needs no model. */
export class RecencyCompressor implements PromptCompressorV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'recency';
  readonly needs = 'none' as const;
  readonly keepOriginalPositions: boolean;
  private readonly tokenizer: TokenizerV1 | undefined;

  constructor(options: RecencyOptions = {}) {
    this.keepOriginalPositions = requireBoolean('keepOriginalPositions', options.keepOriginalPositions ?? false);
    this.tokenizer = options.tokenizer;
  }

  static fromConfig(config: PolicyConfig): RecencyCompressor {
    const { type: _type, ...options } = config;
    return new RecencyCompressor(options as RecencyOptions);
  }

  async compress(input: PromptCompressionInputV1): Promise<CompressionResult> {
    const { ids, budget } = readInput(input);
    throwIfAborted(input.signal);
    const kept = selectRecency({ promptLength: ids.length, budget });
    return buildResult({ input, ids, kept, tokenizer: this.tokenizer ?? input.draft?.tokenizer, keepOriginalPositions: this.keepOriginalPositions });
  }

  toConfig(): RecencyConfig {
    return { type: 'recency', keepOriginalPositions: this.keepOriginalPositions };
  }
}
