import type { CallOptions } from './common.js';
import type { FinishReason } from './model.js';

/** Sampling and stopping. Greedy when `temperature` is 0 or absent. */
export interface GenerationOptionsV1 extends CallOptions {
  maxNewTokens: number;
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Keep only the k most likely tokens before sampling (0 = off). */
  topK?: number;
  /** Nucleus sampling mass in (0, 1] (1 = off). */
  topP?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
  /** Subtracted once from the logit of every token generated so far (OpenAI `presence_penalty`; 0 = off). */
  presencePenalty?: number;
  /** Subtracted per occurrence from the logit of every token generated so far (OpenAI `frequency_penalty`; 0 = off). */
  frequencyPenalty?: number;
  /** CTRL repetition penalty θ over the tokens generated so far: positive logits / θ, negative × θ (1 = off). */
  repetitionPenalty?: number;
  /** Extra stop token ids (the model's EOS ids always stop). */
  stopTokenIds?: readonly number[];
  /** Stop when the decoded text contains one of these; the text is cut before it. */
  stopStrings?: readonly string[];
  /** Called with each new token as it is produced. */
  onToken?: (token: { id: number; text: string }) => void;
}

export interface UsageV1 {
  promptTokens: number;
  /** Prompt tokens the target actually received (after prompt compression). */
  compressedPromptTokens: number;
  /** Prompt entries retained after prefill: `keptKvTokens[layer][kvHead]`. */
  keptKvTokens: number[][];
  completionTokens: number;
  /** Tokens the draft generated (lookahead, draft-only answers). */
  draftTokens: number;
  /** Prompt tokens whose target prefill was reused from a stored prefix (document cache); absent = none. */
  cachedPromptTokens?: number;
}

/** Milliseconds. */
export interface TimingsV1 {
  /** Prompt compression (draft scoring included). */
  compressMs: number;
  /** Draft lookahead generation. */
  draftMs: number;
  /** Target prefill (lookahead tokens included). */
  prefillMs: number;
  /** KV scoring + selection + compaction. */
  selectMs: number;
  decodeMs: number;
  /** Time to first token, from the start of the call. */
  ttftMs: number;
  totalMs: number;
  /** Completion tokens per second of decode time. */
  decodeTokensPerSecond: number;
}

export interface GenerationResultV1 {
  text: string;
  /** Generated token ids (stop token excluded). */
  tokens: number[];
  finishReason: FinishReason;
  usage: UsageV1;
  timings: TimingsV1;
  /** Bytes of the target's KV cache after prefill/compaction, and at the end of decoding. */
  kvBytes: { afterPrefill: number; final: number };
}
