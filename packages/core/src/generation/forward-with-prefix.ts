import { range } from '../primitives/kept-indices.js';
import type { CallOptions } from '../spec/common.js';
import { InvalidArgumentError, UnsupportedCapabilityError } from '../spec/errors.js';
import type { CausalLMV1, ForwardResultV1 } from '../spec/model.js';
import type { PrefixCacheV1 } from '../spec/prefix-cache.js';

/** Options of `forwardWithPrefix`. */
export interface ForwardWithPrefixOptions extends CallOptions {
  model: CausalLMV1;
  /** The whole prompt, at positions 0 … n − 1. */
  inputIds: readonly number[];
  /** KV of the prompt's first tokens (left intact). */
  prefix?: PrefixCacheV1;
  /** As `ForwardRequestV1.captureQueries`, counted over the whole prompt (stored prefix queries fill the part before the new tokens). */
  captureQueries?: number | 'all';
  chunkSize?: number;
  /**
   * What to do when the prefix cannot serve this prompt (the prompt does not extend it, or the query window
   * reaches further back than the stored queries): 'error' throws, 'full' runs the whole prompt (same result,
   * no saving). Default 'error'.
   */
  onMismatch?: 'error' | 'full';
  /** Names the caller in errors. */
  component?: string;
}

/** A forward over the whole prompt; `reusedTokens` of it came from the prefix (0 when it was run in full). */
export interface ForwardWithPrefixResult extends ForwardResultV1 {
  reusedTokens: number;
}

/** Whether `ids` starts with the prefix's tokens and has at least one token after them. */
export function prefixApplies(prefix: PrefixCacheV1, ids: readonly number[]): boolean {
  const k = prefix.inputIds.length;
  if (k === 0 || ids.length <= k) return false;
  for (let i = 0; i < k; i++) if (ids[i] !== prefix.inputIds[i]) return false;
  return true;
}

/** Stored prefix positions whose queries a window of `capture` over a prompt of `n` tokens needs beyond the new ones. */
function queriesFromPrefix(capture: number | 'all' | undefined, n: number, k: number): number {
  if (capture === undefined || capture === 0) return 0;
  const w = capture === 'all' ? n : capture;
  return Math.max(0, w - (n - k));
}

/**
 * Runs `model.forward` over the whole prompt `inputIds` as if from scratch, reusing `prefix` (positions 0 … k − 1)
 * when the prompt extends it: only tokens k … n − 1 are run, at their own positions, over the prefix cache.
 * The result is the one a full forward gives: the logits of the last position, a cache over all n tokens, and
 * (with `captureQueries`) the queries of the last w positions (numHeads, w, headDim), the ones before the new
 * tokens taken from `prefix.queries`. Differences from a full forward are float rounding of the two runs only.
 */
export async function forwardWithPrefix(options: ForwardWithPrefixOptions): Promise<ForwardWithPrefixResult> {
  const { model, inputIds, prefix, captureQueries, signal, onProgress, chunkSize } = options;
  const n = inputIds.length;
  const full = async (): Promise<ForwardWithPrefixResult> => ({
    ...(await model.forward({ inputIds, positionIds: range(0, n), captureQueries, signal, onProgress, chunkSize })),
    reusedTokens: 0,
  });
  if (!prefix) return full();
  const component = options.component ?? `model '${model.name}'`;
  const k = prefix.inputIds.length;
  if (!prefixApplies(prefix, inputIds)) {
    if (options.onMismatch === 'full') return full();
    throw new InvalidArgumentError({
      argument: 'prefix',
      value: `${k} stored tokens`,
      expected: `a prefix of the ${n}-token prompt of ${component}, followed by at least one new token`,
    });
  }
  const cache = prefix.cache;
  if (cache.nextPosition !== k || cache.lengths.some((heads) => heads.some((len) => len !== k))) {
    throw new InvalidArgumentError({ argument: 'prefix.cache', value: `nextPosition ${cache.nextPosition}`, expected: `a cache of exactly the ${k} prefix tokens at positions 0 … ${k - 1}` });
  }
  const fromPrefix = queriesFromPrefix(captureQueries, n, k);
  const stored = prefix.queries ? prefix.queryCount : 0;
  if (fromPrefix > stored) {
    if (options.onMismatch === 'full') return full();
    throw new UnsupportedCapabilityError({
      capability: 'prefixQueries',
      component,
      message:
        `${component} needs the queries of the last ${fromPrefix} prefix positions (a query window of ${captureQueries === 'all' ? 'all' : captureQueries} positions over ` +
        `${n - k} new tokens), but the prefix stores ${stored}. Store more queries when building the cache (or 'all'), or ask a longer question.`,
    });
  }
  const fresh = n - k;
  const capture = captureQueries === undefined || captureQueries === 0 ? undefined : Math.min(fresh, captureQueries === 'all' ? n : captureQueries);
  const result = await model.forward({ inputIds: inputIds.slice(k), positionIds: range(k, n), cache, captureQueries: capture, signal, onProgress, chunkSize });
  if (fromPrefix === 0 || !result.queries) return { ...result, reusedTokens: k };
  // Window = stored queries of prefix positions k − fromPrefix … k − 1, then the new tokens' queries.
  const { numHeads, headDim } = model.info;
  const w = fromPrefix + fresh;
  const queries = result.queries.map((captured, layer) => {
    const storedLayer = (prefix.queries as readonly Float32Array[])[layer];
    const out = new Float32Array(numHeads * w * headDim);
    for (let h = 0; h < numHeads; h++) {
      const src = (h * stored + (stored - fromPrefix)) * headDim;
      out.set(storedLayer.subarray(src, src + fromPrefix * headDim), h * w * headDim);
      out.set(captured.subarray(h * fresh * headDim, (h + 1) * fresh * headDim), (h * w + fromPrefix) * headDim);
    }
    return out;
  });
  return { ...result, queries, reusedTokens: k };
}
