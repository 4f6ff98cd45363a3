import {
  greedyScoringRun,
  InvalidArgumentError,
  type PolicyConfig,
  type PromptCompressionInputV1,
  type PromptCompressorV1,
  pool1d,
  range,
  requireBoolean,
  requireInteger,
  requireOneOf,
  throwIfAborted,
  topK,
  windowScores,
} from '@draft/core';
import { buildResult, type CompressionResult, readInput } from './shared.js';

/**
 * SpecPrefill chunk selection (Liu et al. 2025, "Speculative Prefill", chunked token selection), read for an
 * exact token budget C:
 *
 * 1. The prompt is cut into chunks of S tokens from position 0: chunk c = [cS, min((c+1)S, n)); only the last
 *    chunk may be shorter. A chunk's score is the mean of its tokens' scores.
 * 2. The last chunk is always kept. If it alone holds ≥ C tokens, only its last C positions are kept.
 * 3. The other chunks are taken by descending chunk score (equal scores → lower chunk first) while they fit
 *    whole. The first chunk that does not fit is **trimmed**: it contributes its highest-scoring tokens
 *    (equal scores → lower position) up to exactly C, and selection stops.
 * 4. Result: exactly min(C, n) ascending positions (all of them when C ≥ n).
 */
export function selectSpecPrefillChunks(options: { scores: ArrayLike<number>; budget: number; chunkSize: number }): Int32Array {
  const { scores } = options;
  const n = scores.length;
  if (n < 1) throw new InvalidArgumentError({ argument: 'scores.length', value: n, expected: 'at least one score' });
  const c = requireInteger('budget', options.budget, 1);
  const s = requireInteger('chunkSize', options.chunkSize, 1);
  if (c >= n) return range(0, n);
  const numChunks = Math.ceil(n / s);
  const lastStart = (numChunks - 1) * s;
  const lastLength = n - lastStart;
  if (lastLength >= c) return range(n - c, n);

  const kept: number[] = [];
  for (let p = lastStart; p < n; p++) kept.push(p);
  let remaining = c - lastLength;
  const means = new Float64Array(numChunks - 1);
  for (let k = 0; k < numChunks - 1; k++) {
    let sum = 0;
    for (let p = k * s; p < (k + 1) * s; p++) sum += scores[p];
    means[k] = sum / s;
  }
  for (const k of topK(means, means.length, { order: 'score' })) {
    if (remaining >= s) {
      for (let p = k * s; p < (k + 1) * s; p++) kept.push(p);
      remaining -= s;
    } else {
      for (const offset of topK(scores, remaining, { offset: k * s, length: s })) kept.push(k * s + offset);
      remaining = 0;
    }
    if (remaining === 0) break;
  }
  return Int32Array.from(kept).sort();
}

/** One layer of one SpecPrefill query step. All post-RoPE. */
export interface SpecPrefillLayerInput {
  /** The step's query, (numHeads, 1, headDim). */
  queries: Float32Array;
  /** Keys the query attends to, (numKvHeads, m, headDim), m ≥ n: prompt ++ earlier draft tokens ++ itself. */
  keys: Float32Array;
}

export interface ScoreSpecPrefillInput {
  /** Per query step (the last prompt token, then each fed-back draft token), per layer (all layers). */
  steps: readonly (readonly SpecPrefillLayerInput[])[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** n. */
  promptLength: number;
  /** Odd avg-pool kernel (zero padding k//2, always divided by k); 1 = none. Default 13. */
  kernelSize?: number;
  /** Reduce over layers × heads: 'max' (default, as SpecPrefill) or 'mean'. */
  reduce?: 'max' | 'mean';
}

/**
 * SpecPrefill token importance: per query step, per layer and query head, softmax over all the step's keys,
 * the n prompt columns avg-pooled (kernel k, zero padded, /k); reduced over layers × heads (max by default);
 * then the **mean over query steps**.
 * @returns (n), higher score = keep
 */
export function scoreSpecPrefill(input: ScoreSpecPrefillInput): Float32Array {
  const acc = new SpecPrefillAccumulator(input.promptLength, input.numHeads, input.kernelSize ?? 13, input.reduce ?? 'max');
  if (input.steps.length < 1) throw new InvalidArgumentError({ argument: 'steps.length', value: 0, expected: 'at least one query step' });
  for (const step of input.steps) {
    acc.beginStep();
    for (const layer of step) {
      const m = layer.keys.length / (input.numKvHeads * input.headDim);
      acc.addLayer(
        windowScores(layer.queries, layer.keys, {
          numHeads: input.numHeads,
          numKvHeads: input.numKvHeads,
          headDim: input.headDim,
          queryCount: 1,
          keyCount: m,
          causalTail: true,
        }),
        m,
      );
    }
    acc.endStep();
  }
  return acc.result();
}

class SpecPrefillAccumulator {
  private readonly sum: Float64Array;
  private readonly step: Float64Array;
  private layers = 0;
  private steps = 0;
  readonly kernelSize: number;

  constructor(
    readonly n: number,
    readonly numHeads: number,
    kernelSize: number,
    readonly reduce: 'max' | 'mean',
  ) {
    requireInteger('promptLength', n, 1);
    this.kernelSize = requireInteger('kernelSize', kernelSize, 1);
    if (this.kernelSize % 2 === 0) {
      throw new InvalidArgumentError({ argument: 'kernelSize', value: kernelSize, expected: 'an odd integer ≥ 1 (1 = no pooling)' });
    }
    requireOneOf('reduce', reduce, ['max', 'mean'] as const);
    this.sum = new Float64Array(n);
    this.step = new Float64Array(n);
  }

  beginStep(): void {
    this.step.fill(this.reduce === 'max' ? -Infinity : 0);
    this.layers = 0;
  }

  /** probs: (numHeads, 1, m) softmax rows; only the first n columns (the prompt) are pooled and kept. */
  addLayer(probs: Float32Array, m: number): void {
    const { n, numHeads } = this;
    if (!Number.isInteger(m) || m < n) throw new InvalidArgumentError({ argument: 'keys', value: m, expected: `≥ promptLength (${n}) keys` });
    const rows = new Float32Array(numHeads * n);
    for (let h = 0; h < numHeads; h++) rows.set(probs.subarray(h * m, h * m + n), h * n);
    const pooled = pool1d(rows, { kernel: this.kernelSize, type: 'avg', padding: 'same', rows: numHeads });
    for (let h = 0; h < numHeads; h++) {
      for (let j = 0; j < n; j++) {
        const v = pooled[h * n + j];
        if (this.reduce === 'max') {
          if (v > this.step[j]) this.step[j] = v;
        } else this.step[j] += v;
      }
    }
    this.layers++;
  }

  endStep(): void {
    const div = this.reduce === 'mean' ? this.layers * this.numHeads : 1;
    for (let j = 0; j < this.n; j++) this.sum[j] += this.step[j] / div;
    this.steps++;
  }

  result(): Float32Array {
    const out = new Float32Array(this.n);
    for (let j = 0; j < this.n; j++) out[j] = this.sum[j] / this.steps;
    return out;
  }
}

export interface SpecPrefillOptions {
  /** Draft tokens generated; query steps = the last prompt token + the Lk − 1 fed-back tokens. Default 8. */
  lookaheadTokens?: number;
  /** Odd avg-pool kernel over the prompt columns (1 = none). Default 13. */
  kernelSize?: number;
  /** Tokens per selection chunk. Default 32. */
  chunkSize?: number;
  /** Reduce over layers × heads: 'max' (default, SpecPrefill) or 'mean'. */
  reduce?: 'max' | 'mean';
  /** Return `positionIds` = kept original positions. Default **true** (SpecPrefill keeps positions). */
  keepOriginalPositions?: boolean;
}

export interface SpecPrefillConfig extends PolicyConfig {
  type: 'specprefill';
  lookaheadTokens: number;
  kernelSize: number;
  chunkSize: number;
  reduce: 'max' | 'mean';
  keepOriginalPositions: boolean;
}

/**
 * SpecPrefill (Liu et al. 2025) as a prompt compressor: the draft prefills the prompt and greedily writes Lk
 * lookahead tokens (default 8); the query of the last prompt token and of each fed-back lookahead token
 * scores the prompt keys in every layer (`scoreSpecPrefill`), and whole chunks of 32 tokens are kept
 * (`selectSpecPrefillChunks`) with their original positions. A prompt with n ≤ C passes through.
 */
export class SpecPrefillCompressor implements PromptCompressorV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'specprefill';
  readonly needs = 'draft' as const;
  readonly lookaheadTokens: number;
  readonly kernelSize: number;
  readonly chunkSize: number;
  readonly reduce: 'max' | 'mean';
  readonly keepOriginalPositions: boolean;

  constructor(options: SpecPrefillOptions = {}) {
    this.lookaheadTokens = requireInteger('lookaheadTokens', options.lookaheadTokens ?? 8, 1);
    this.kernelSize = requireInteger('kernelSize', options.kernelSize ?? 13, 1);
    if (this.kernelSize % 2 === 0) {
      throw new InvalidArgumentError({ argument: 'kernelSize', value: this.kernelSize, expected: 'an odd integer ≥ 1 (1 = no pooling)' });
    }
    this.chunkSize = requireInteger('chunkSize', options.chunkSize ?? 32, 1);
    this.reduce = requireOneOf('reduce', options.reduce ?? 'max', ['max', 'mean'] as const);
    this.keepOriginalPositions = requireBoolean('keepOriginalPositions', options.keepOriginalPositions ?? true);
  }

  static fromConfig(config: PolicyConfig): SpecPrefillCompressor {
    const { type: _type, ...options } = config;
    return new SpecPrefillCompressor(options as SpecPrefillOptions);
  }

  async compress(input: PromptCompressionInputV1): Promise<CompressionResult> {
    const { ids, budget } = readInput(input);
    const n = ids.length;
    const lookaheadTokens = requireInteger('lookaheadTokens', input.lookaheadTokens ?? this.lookaheadTokens, 1);
    throwIfAborted(input.signal);
    if (n <= budget) return buildResult({ input, ids, kept: range(0, n), keepOriginalPositions: this.keepOriginalPositions });
    const draft = input.draft;
    if (!draft) throw new InvalidArgumentError({ argument: 'draft', value: draft, expected: 'a draft CausalLMV1 (SpecPrefill scores with a draft)' });
    const { numLayers, numHeads, numKvHeads, headDim } = draft.info;
    const acc = new SpecPrefillAccumulator(n, numHeads, this.kernelSize, this.reduce);
    // The query of the last prompt token, then of each fed-back lookahead token, scores every key so far.
    const { tokens } = await greedyScoringRun({
      model: draft,
      inputIds: ids,
      maxNewTokens: lookaheadTokens,
      prefillQueries: 1,
      signal: input.signal,
      onProgress: input.onProgress,
      stage: 'compress',
      component: 'SpecPrefillCompressor',
      async score({ queries, cache }) {
        acc.beginStep();
        for (let l = 0; l < numLayers; l++) {
          const keys = await cache.readKeys(l);
          const m = keys.length / (numKvHeads * headDim);
          acc.addLayer(windowScores(queries[l], keys, { numHeads, numKvHeads, headDim, queryCount: 1, keyCount: m, causalTail: true }), m);
        }
        acc.endStep();
      },
    });
    throwIfAborted(input.signal);
    const kept = selectSpecPrefillChunks({ scores: acc.result(), budget, chunkSize: this.chunkSize });
    return buildResult({
      input,
      ids,
      kept,
      tokenizer: draft.tokenizer,
      keepOriginalPositions: this.keepOriginalPositions,
      draftTokenIds: tokens,
    });
  }

  toConfig(): SpecPrefillConfig {
    return {
      type: 'specprefill',
      lookaheadTokens: this.lookaheadTokens,
      kernelSize: this.kernelSize,
      chunkSize: this.chunkSize,
      reduce: this.reduce,
      keepOriginalPositions: this.keepOriginalPositions,
    };
  }
}
