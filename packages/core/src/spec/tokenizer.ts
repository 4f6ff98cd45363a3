/** A tokenizer as the pipeline needs it. Token ids are plain numbers. */
export interface TokenizerV1 {
  readonly vocabSize: number;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Applies the model's chat template, when it has one; otherwise undefined. */
  applyChatTemplate?(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /**
   * A fingerprint of the vocabulary (e.g. a hash of tokenizer.json's model section). Two tokenizers with the
   * same fingerprint map text to the same ids, so lookahead may cross as ids instead of text.
   */
  readonly fingerprint: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
