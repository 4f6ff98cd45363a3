/** A tokenizer as the pipeline needs it. Token ids are plain numbers. */
export interface TokenizerV1 {
  readonly vocabSize: number;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /**
   * Like `encode`, plus where each token comes from in `text` (optional: a tokenizer without it cannot carry
   * a compressed prompt to a target of another vocabulary as original text; see `TokenEncodingV1`).
   * Implementations must throw a `TokenAlignmentError` rather than return spans they cannot vouch for.
   */
  encodeWithOffsets?(text: string, options?: { addSpecialTokens?: boolean }): TokenEncodingV1;
  /**
   * The id that out-of-vocabulary text maps to (WordLevel / WordPiece `unk_token`); undefined when every text
   * is representable (byte-level BPE) or unknown. Used to refuse prompts a draft cannot read.
   */
  readonly unknownTokenId?: number;
  /** Applies the model's chat template, when it has one; otherwise undefined. */
  applyChatTemplate?(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /**
   * A fingerprint of the vocabulary (e.g. a hash of tokenizer.json's model section). Two tokenizers with the
   * same fingerprint map text to the same ids, so lookahead may cross as ids instead of text.
   */
  readonly fingerprint: string;
}

/** `TokenizerV1.encodeWithOffsets`' result: the ids `encode` gives, and a character span per id. */
export interface TokenEncodingV1 {
  /** Exactly `encode(text, options)`. */
  ids: number[];
  /**
   * Per token, `[start, end)` in UTF-16 code units of the **original** `text` (before any normaliser). Spans are
   * non-decreasing and never overlap, except that byte-level tokens splitting one multi-byte character all
   * span that whole character. `start === end` for tokens without text (special tokens the post-processor adds).
   * Whitespace a pre-tokenizer drops belongs to no token.
   */
  offsets: [start: number, end: number][];
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
