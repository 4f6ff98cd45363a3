import { validateKeptIndices } from '../primitives/kept-indices.js';
import { AbortError, InvalidArgumentError } from '../spec/errors.js';
import type { GenerationOptionsV1 } from '../spec/generation.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1, FinishReason } from '../spec/model.js';
import type { DecodePolicyV1 } from '../spec/policy.js';
import { createSampler } from './sampler.js';
import { createStopCriteria } from './stopping.js';

export interface DecodeLoopOptions {
  model: CausalLMV1;
  /** Cache holding the prompt (after any compaction). Not disposed by the loop. */
  cache: KvCacheV1;
  /** Logits of the last prompt position, (vocabSize). */
  firstLogits: Float32Array;
  generation: GenerationOptionsV1;
  decodePolicy?: DecodePolicyV1;
  /** Prompt tokens n (passed to the decode policy). */
  promptLength: number;
  /**
   * Receives released text pieces, plus a final flush of text held back while it could have been the
   * start of a stop string. Concatenated, the pieces equal the result's `text`. (Used by streams.)
   */
  onText?: (piece: string) => void;
}

export interface DecodeLoopResult {
  /** Generated ids; a stop token is not included. */
  tokens: number[];
  /** Decoded text (special tokens skipped), cut before a stop string. */
  text: string;
  finishReason: FinishReason;
  /** Cache after the last forward step; the caller disposes it (it is `options.cache` when no step ran). */
  cache: KvCacheV1;
  decodeMs: number;
}

/**
 * The autoregressive decode loop shared by every in-process backend (transformers.js `generate` read
 * side by side): sample → stop checks → report → forward the token at the cache's next position.
 *
 * Stops on: an EOS / stop token id (`finishReason 'stop'`, the id is not kept), a stop string (`'stop'`, the
 * text is cut before it), `maxNewTokens` or the model's last position (`'length'`). The last token is not fed
 * back (nothing needs its KV). `signal` is checked before every step; on abort it throws an `AbortError`
 * whose `partial` is a `DecodeLoopResult` with `finishReason: 'abort'` (its cache belongs to the caller).
 * `onToken` receives each generated id with the text it released (may be '' while a possible stop-string
 * prefix or an incomplete character is held back). A decode policy's `afterStep` output is checked like a
 * cache policy's (ascending, distinct, within the cache's `lengths`): PolicyOutputError otherwise, with every
 * cache the loop made disposed.
 */
export async function decodeLoop(options: DecodeLoopOptions): Promise<DecodeLoopResult> {
  const { model, generation, decodePolicy, promptLength } = options;
  if (!(Number.isInteger(generation.maxNewTokens) && generation.maxNewTokens >= 0)) {
    throw new InvalidArgumentError({ argument: 'maxNewTokens', value: generation.maxNewTokens, expected: 'an integer ≥ 0' });
  }
  const sampler = createSampler({
    temperature: generation.temperature,
    topK: generation.topK,
    topP: generation.topP,
    seed: generation.seed,
    presencePenalty: generation.presencePenalty,
    frequencyPenalty: generation.frequencyPenalty,
    repetitionPenalty: generation.repetitionPenalty,
  });
  const stop = createStopCriteria({ eosTokenIds: model.info.eosTokenIds, stopTokenIds: generation.stopTokenIds, stopStrings: generation.stopStrings });
  const tokenizer = model.tokenizer;
  const started = performance.now();
  const tokens: number[] = [];
  let cache = options.cache;
  let logits = options.firstLogits;
  let released = '';
  let text = '';
  let finishReason: FinishReason = 'length';

  const result = (reason: FinishReason): DecodeLoopResult => ({ tokens, text, finishReason: reason, cache, decodeMs: performance.now() - started });
  const replaceCache = (next: KvCacheV1) => {
    if (cache !== options.cache && cache !== next) cache.dispose();
    cache = next;
  };
  const release = (upTo: string, id: number | undefined) => {
    const piece = upTo.startsWith(released) ? upTo.slice(released.length) : '';
    if (upTo.startsWith(released)) released = upTo;
    if (id !== undefined) generation.onToken?.({ id, text: piece });
    if (piece) options.onText?.(piece);
  };

  try {
    for (let step = 0; step < generation.maxNewTokens; step++) {
      if (generation.signal?.aborted) throw new AbortError({ reason: generation.signal.reason, partial: result('abort') });
      const id = sampler.sample(logits, { tokens });
      if (stop.isStopToken(id)) {
        finishReason = 'stop';
        break;
      }
      tokens.push(id);
      const full = tokenizer.decode(tokens, { skipSpecialTokens: true });
      const cut = stop.findStopString(full);
      if (cut >= 0) {
        text = full.slice(0, cut);
        release(text, id);
        finishReason = 'stop';
        break;
      }
      text = full;
      let releasable = full.slice(0, full.length - stop.pendingSuffixLength(full));
      // An incomplete multi-byte character decodes to U+FFFD until its last byte arrives.
      while (releasable.endsWith('\uFFFD')) releasable = releasable.slice(0, -1);
      release(releasable, id);
      if (tokens.length >= generation.maxNewTokens) break;
      if (cache.nextPosition >= model.info.maxPositions) break;
      const forward = await model.forward({ inputIds: [id], cache, signal: generation.signal });
      replaceCache(forward.cache);
      logits = forward.logits;
      if (decodePolicy) {
        const kept = await decodePolicy.afterStep({ cache, step, promptLength });
        if (kept) {
          // A plugin's output: a PolicyOutputError here, not a backend failure inside gather.
          validateKeptIndices(kept, { numLayers: cache.numLayers, numKvHeads: cache.numKvHeads, limit: cache.lengths, source: `decode policy '${decodePolicy.type}'` });
          // The loop's own caches are consumed (freed layer by layer while gathering); the caller's is kept.
          replaceCache(await cache.gather(kept, cache !== options.cache ? { consume: true } : {}));
        }
      }
    }
  } catch (error) {
    if (error instanceof AbortError || (error as { code?: string })?.code === 'ABORTED') {
      throw new AbortError({ reason: generation.signal?.reason ?? (error as AbortError).cause, partial: result('abort') });
    }
    if (cache !== options.cache) cache.dispose();
    throw error;
  }
  release(text, undefined);
  return result(finishReason);
}
