import {
  InvalidArgumentError,
  type KvCacheV1,
  type PolicyConfig,
  type PromptCompressionInputV1,
  type PromptCompressorV1,
  range,
  requireBoolean,
  requireInteger,
  throwIfAborted,
  topK,
} from '@draft/core';
import { buildResult, type CompressionResult, readInput } from './shared.js';

/**
 * Token surprisal −ln p(x_{i+1} | x_≤i) from logits rows: row r predicts `targets[r]`.
 * @param logits (rows, vocabSize)
 * @returns (rows), in nats; log-softmax accumulated in float64
 */
export function surprisal(logits: Float32Array, targets: ArrayLike<number>, vocabSize: number): Float64Array {
  const rows = targets.length;
  if (logits.length !== rows * vocabSize) {
    throw new InvalidArgumentError({ argument: 'logits.length', value: logits.length, expected: `rows·vocabSize = ${rows * vocabSize}` });
  }
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const off = r * vocabSize;
    let max = -Infinity;
    for (let v = 0; v < vocabSize; v++) if (logits[off + v] > max) max = logits[off + v];
    let sum = 0;
    for (let v = 0; v < vocabSize; v++) sum += Math.exp(logits[off + v] - max);
    out[r] = -(logits[off + targets[r]] - max - Math.log(sum));
  }
  return out;
}

/**
 * Self-information selection: the last w = min(W, C) positions are always kept, then the C − w highest
 * scores among positions 0 … n−w−1 (equal scores → lower position); ascending; exactly min(C, n) positions.
 * Pass +∞ for position 0 (no context to predict it from) to keep it whenever C > w.
 */
export function selectSelfInformation(options: { scores: ArrayLike<number>; budget: number; windowSize: number }): Int32Array {
  const n = options.scores.length;
  if (n < 1) throw new InvalidArgumentError({ argument: 'scores.length', value: n, expected: 'at least one score' });
  const c = requireInteger('budget', options.budget, 1);
  const w = Math.min(requireInteger('windowSize', options.windowSize, 0), c, n);
  if (c >= n) return range(0, n);
  const head = topK(options.scores, c - w, { offset: 0, length: n - w });
  const out = new Int32Array(c);
  out.set(head);
  out.set(range(n - w, n), head.length);
  return out;
}

export interface SelfInformationOptions {
  /**
   * W: trailing prompt tokens always kept (the question usually ends the prompt; LLMLingua keeps the question
   * uncompressed). Default 64 = SpecPC's window, so the two differ only in how they score. 0 disables.
   */
  windowSize?: number;
  /** Draft forward chunk (tokens per call; bounds the (chunk, vocab) logits held). Default 512. */
  forwardChunkSize?: number;
  keepOriginalPositions?: boolean;
}

export interface SelfInformationConfig extends PolicyConfig {
  type: 'self-information';
  windowSize: number;
  forwardChunkSize: number;
  keepOriginalPositions: boolean;
}

/**
 * Self-information prompt compression (Li et al. 2023 "Selective Context"; the token-level LLMLingua-1 score,
 * Jiang et al. 2023, without its iterative budget controller): the draft LM reads the prompt once
 * (`logits: 'all'`, in chunks over the cache); token i scores −ln p_draft(x_i | x_<i) (position 0: +∞). The
 * C − w most surprising tokens are kept with the last w = min(W, C) tokens; low-surprise (predictable) tokens
 * are dropped. Positions re-indexed by default.
 */
export class SelfInformationCompressor implements PromptCompressorV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'self-information';
  readonly needs = 'draft' as const;
  readonly windowSize: number;
  readonly forwardChunkSize: number;
  readonly keepOriginalPositions: boolean;

  constructor(options: SelfInformationOptions = {}) {
    this.windowSize = requireInteger('windowSize', options.windowSize ?? 64, 0);
    this.forwardChunkSize = requireInteger('forwardChunkSize', options.forwardChunkSize ?? 512, 1);
    this.keepOriginalPositions = requireBoolean('keepOriginalPositions', options.keepOriginalPositions ?? false);
  }

  static fromConfig(config: PolicyConfig): SelfInformationCompressor {
    const { type: _type, ...options } = config;
    return new SelfInformationCompressor(options as SelfInformationOptions);
  }

  async compress(input: PromptCompressionInputV1): Promise<CompressionResult> {
    const { ids, budget } = readInput(input);
    const n = ids.length;
    throwIfAborted(input.signal);
    if (n <= budget) return buildResult({ input, ids, kept: range(0, n), keepOriginalPositions: this.keepOriginalPositions });
    const draft = input.draft;
    if (!draft) throw new InvalidArgumentError({ argument: 'draft', value: draft, expected: 'a draft CausalLMV1 (self-information needs an LM)' });
    const vocab = draft.info.vocabSize;
    const scores = new Float64Array(n);
    scores[0] = Infinity;
    let cache: KvCacheV1 | undefined;
    const chunks = Math.ceil(n / this.forwardChunkSize);
    try {
      for (let c = 0; c < chunks; c++) {
        throwIfAborted(input.signal);
        const start = c * this.forwardChunkSize;
        const end = Math.min(n, start + this.forwardChunkSize);
        const out = await draft.forward({
          inputIds: ids.slice(start, end),
          positionIds: range(start, end),
          cache,
          logits: 'all',
          signal: input.signal,
        });
        cache?.dispose();
        cache = out.cache;
        // Row r predicts token start + r + 1; the last prompt token's prediction is not needed.
        const rows = Math.min(end, n - 1) - start;
        if (rows > 0) {
          const s = surprisal(out.logits.subarray(0, rows * vocab), ids.slice(start + 1, start + 1 + rows), vocab);
          scores.set(s, start + 1);
        }
        input.onProgress?.({ stage: 'compress', completed: c + 1, total: chunks });
      }
    } finally {
      cache?.dispose();
    }
    const kept = selectSelfInformation({ scores, budget, windowSize: this.windowSize });
    return buildResult({ input, ids, kept, tokenizer: draft.tokenizer, keepOriginalPositions: this.keepOriginalPositions });
  }

  toConfig(): SelfInformationConfig {
    return {
      type: 'self-information',
      windowSize: this.windowSize,
      forwardChunkSize: this.forwardChunkSize,
      keepOriginalPositions: this.keepOriginalPositions,
    };
  }
}
