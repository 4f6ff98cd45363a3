import { validateKeptIndices } from '../primitives/kept-indices.js';
import { DraftError, PolicyOutputError, PromptNotRepresentableError, throwIfAborted, UnsupportedCapabilityError } from '../spec/errors.js';
import type { CallOptions } from '../spec/common.js';
import type { CausalLMV1 } from '../spec/model.js';
import type { PromptCompressionResultV1, PromptCompressorV1 } from '../spec/policy.js';
import type { TokenEncodingV1, TokenizerV1 } from '../spec/tokenizer.js';

/** Default for `PipelineOptions.maxUnknownTokenFraction`: a prompt mostly unknown to the draft is refused. */
export const DEFAULT_MAX_UNKNOWN_TOKEN_FRACTION = 0.5;

/**
 * Cross-tokenizer budget calibration: a round is accepted once the target sees between
 * (1 − CROSS_BUDGET_TOLERANCE)·C and C tokens; at most CROSS_BUDGET_MAX_ROUNDS compressor calls.
 */
export const CROSS_BUDGET_TOLERANCE = 0.1;
export const CROSS_BUDGET_MAX_ROUNDS = 4;

/** Calls a compressor with a budget in draft tokens and checks its result against the prompt's draft ids. */
export async function runCompressor(
  compressor: PromptCompressorV1,
  input: { draft?: CausalLMV1; text: string; draftIds: readonly number[]; budget: number } & CallOptions,
): Promise<PromptCompressionResultV1> {
  const { draftIds, budget } = input;
  const n = draftIds.length;
  // No `lookaheadTokens`: the pipeline's `lookaheadTokens` is SpecKV's L (stage 2); a compressor drafts with its
  // own configured lookahead (SpecPC Lk = 1, SpecPrefill 8, SpecKV-PC 20).
  const result = await compressor.compress({
    inputIds: draftIds,
    text: input.text,
    budget,
    draft: input.draft,
    signal: input.signal,
    onProgress: input.onProgress,
  });
  const source = `prompt compressor '${compressor.type}'`;
  validateKeptIndices([[result.keptIndices]], { numLayers: 1, numKvHeads: 1, limit: n, source });
  if (result.keptIndices.length > budget) {
    throw new PolicyOutputError(`${source} kept ${result.keptIndices.length} tokens; the budget is ${budget}.`, { details: { kept: result.keptIndices.length, budget } });
  }
  if (result.inputIds.length !== result.keptIndices.length) {
    throw new PolicyOutputError(`${source} returned ${result.inputIds.length} ids for ${result.keptIndices.length} kept indices.`);
  }
  return result;
}

/**
 * The original text a compressor kept, for a target that re-tokenises it. Kept tokens are grouped into runs of
 * consecutive indices; a run is the original text from its first token's start to its last token's end (so
 * punctuation, spacing and characters split across byte-level tokens come back exactly). Runs are joined with
 * the original whitespace that preceded each of them (none before the first), so the result is a concatenation
 * of substrings of `text` in order and words of separate runs never fuse. Tokens without text (special tokens
 * a post-processor added) contribute nothing.
 * @param offsets per draft token, `[start, end)` in `text` (`TokenEncodingV1.offsets`)
 * @param kept ascending draft token indices
 */
export function keptText(text: string, offsets: readonly (readonly [number, number])[], kept: ArrayLike<number>): string {
  let out = '';
  let emittedEnd = -1; // end of the text emitted so far, in `text`
  for (let k = 0; k < kept.length; ) {
    let last = k;
    while (last + 1 < kept.length && kept[last + 1] === kept[last] + 1) last++;
    let start = Number.POSITIVE_INFINITY;
    let end = -1;
    for (let j = k; j <= last; j++) {
      const [s, e] = offsets[kept[j]];
      if (e > s) {
        start = Math.min(start, s);
        end = Math.max(end, e);
      }
    }
    k = last + 1;
    if (end < 0) continue;
    // Byte-level tokens of one character share its span: never emit a character twice.
    start = Math.max(start, emittedEnd);
    if (end <= start) continue;
    if (emittedEnd >= 0) {
      const gap = text.slice(emittedEnd, start);
      out += gap.slice(gap.length - gap.match(/\s*$/u)![0].length);
    }
    out += text.slice(start, end);
    emittedEnd = end;
  }
  return out;
}

/**
 * The prompt in the draft's tokens with their spans, refused before any model runs when the draft cannot
 * carry it across: its tokenizer has no `encodeWithOffsets`, or more than `maxUnknownTokenFraction` of the
 * tokens are its unknown token (a WordLevel draft maps every out-of-vocabulary word to it, so its scores would
 * be noise and the kept text arbitrary).
 */
export function draftEncoding(options: { draft: CausalLMV1; target: string; component: string; text: string; maxUnknownTokenFraction: number }): TokenEncodingV1 {
  const { draft, text } = options;
  const tokenizer: TokenizerV1 = draft.tokenizer;
  if (!tokenizer.encodeWithOffsets) {
    throw new UnsupportedCapabilityError({
      capability: 'tokenOffsets',
      component: options.component,
      message: `${options.component} with draft '${draft.name}' in front of target '${options.target}' (another tokenizer) hands the target the kept original text, which needs the draft tokenizer's encodeWithOffsets; @draft/runtime's tokenizers have it.`,
    });
  }
  const encoding = tokenizer.encodeWithOffsets(text);
  const unk = tokenizer.unknownTokenId;
  if (unk !== undefined && encoding.ids.length > 0) {
    const unknown: number[] = [];
    for (let i = 0; i < encoding.ids.length; i++) if (encoding.ids[i] === unk) unknown.push(i);
    if (unknown.length / encoding.ids.length > options.maxUnknownTokenFraction) {
      const examples = [...new Set(unknown.map((i) => text.slice(...encoding.offsets[i])).filter((w) => w.length > 0))].slice(0, 3);
      throw new PromptNotRepresentableError({
        model: draft.name,
        promptTokens: encoding.ids.length,
        unknownTokens: unknown.length,
        maxUnknownFraction: options.maxUnknownTokenFraction,
        examples,
      });
    }
  }
  return encoding;
}

export interface CrossCompressionResult {
  /** The accepted round's compressor result (draft vocabulary). */
  result: PromptCompressionResultV1;
  /** The kept original text (`keptText`). */
  text: string;
  /** `text` in the target's ids (special tokens added, as the full prompt's). */
  targetIds: number[];
  /** The draft-token budget of the accepted round. */
  draftBudget: number;
  /** Compressor calls made. */
  rounds: number;
  /** Draft tokens generated over all rounds. */
  draftTokens: number;
}

/**
 * Prompt compression when draft and target tokenizers differ. The budget C is in **target** tokens: the
 * target should see about C tokens of the original text. Rule:
 * 1. The draft budget starts at c = round(C · n_draft / n_target), the prompt's token-count ratio.
 * 2. The compressor keeps c draft tokens; their original text (`keptText`) is tokenised by the target: m tokens.
 * 3. Accepted when (1 − tol)·C ≤ m ≤ C (tol = CROSS_BUDGET_TOLERANCE); otherwise c becomes round(c · C / m)
 *    (moved by at least one token), for at most CROSS_BUDGET_MAX_ROUNDS calls in all.
 * 4. Of the rounds made, the largest m ≤ C wins; when none fits (a few huge draft tokens), the smallest m.
 * Rounds re-run the compressor (and so the draft): usually one or two suffice.
 */
export async function compressAcrossTokenizers(options: {
  compressor: PromptCompressorV1;
  draft: CausalLMV1;
  targetTokenizer: TokenizerV1;
  text: string;
  encoding: TokenEncodingV1;
  /** C, in target tokens. */
  budget: number;
  /** Target tokens of the whole prompt. */
  targetPromptTokens: number;
} & CallOptions): Promise<CrossCompressionResult> {
  const { compressor, draft, encoding, budget } = options;
  const nDraft = encoding.ids.length;
  const maxDraftBudget = Math.max(1, nDraft - 1);
  const clamp = (c: number) => Math.min(maxDraftBudget, Math.max(1, c));
  const tried = new Set<number>();
  let best: { value: CrossCompressionResult; tokens: number; fits: boolean } | undefined;
  let draftTokens = 0;
  let c = clamp(Math.round((budget * nDraft) / options.targetPromptTokens));
  for (let round = 0; round < CROSS_BUDGET_MAX_ROUNDS; round++) {
    throwIfAborted(options.signal);
    tried.add(c);
    const result = await runCompressor(compressor, { draft, text: options.text, draftIds: encoding.ids, budget: c, signal: options.signal, onProgress: options.onProgress });
    draftTokens += result.draftTokens;
    const text = keptText(options.text, encoding.offsets, result.keptIndices);
    const targetIds = options.targetTokenizer.encode(text);
    const m = targetIds.length;
    const fits = m <= budget && text.length > 0;
    // Prefer fitting rounds (the most tokens), then the fewest tokens.
    if (!best || (fits ? !best.fits || m > best.tokens : !best.fits && m < best.tokens)) {
      best = { value: { result, text, targetIds, draftBudget: c, rounds: 0, draftTokens: 0 }, tokens: m, fits };
    }
    if (fits && m >= (1 - CROSS_BUDGET_TOLERANCE) * budget) break;
    let next = clamp(Math.round((c * budget) / Math.max(1, m)));
    if (m > budget) next = Math.min(next, c - 1);
    else next = Math.max(next, c + 1);
    if (next < 1 || next > maxDraftBudget || tried.has(next)) break;
    c = next;
  }
  if (!best) throw new DraftError('INTERNAL', 'cross-tokenizer compression made no round.');
  return { ...best.value, rounds: tried.size, draftTokens };
}
