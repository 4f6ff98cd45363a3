import { createHash } from 'node:crypto';
import { type ChatMessage, ModelLayoutError, type TokenEncodingV1, type TokenizerV1, UnsupportedCapabilityError } from '@draft/core';
import { Tokenizer } from '@huggingface/tokenizers';
import { type OffsetSource, TokenOffsetMapper } from './token-offsets.js';

/** A jinja renderer: `@huggingface/jinja`'s `Template` class. */
type TemplateClass = new (template: string) => { render(context: Record<string, unknown>): string };

/** Loads the jinja engine (`@huggingface/jinja`, a dependency) used to render chat templates. */
async function loadJinja(): Promise<TemplateClass | undefined> {
  try {
    const mod = (await import('@huggingface/jinja')) as unknown as { Template: TemplateClass };
    return mod.Template;
  } catch {
    return undefined;
  }
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

/**
 * TokenizerV1 over `@huggingface/tokenizers` (tokenizer.json + tokenizer_config.json).
 * - `encode` adds special tokens by default (as the tokenizer's post-processor says); `decode` keeps them
 *   unless `skipSpecialTokens`.
 * - `applyChatTemplate` exists when tokenizer_config.json has a `chat_template`; `addGenerationPrompt`
 *   defaults to false (as in transformers). Rendering needs `@huggingface/jinja` (see the README).
 * - `fingerprint`: sha256 (first 32 hex digits) of the model section, added tokens, normalizer and
 *   pre-tokenizer of tokenizer.json — equal fingerprints map text to the same ids.
 * - `encodeWithOffsets`: each token's span of the original text (token-offsets.ts; the library has no offsets
 *   API); `unknownTokenId`: the model's unk token id, when it has one.
 */
export class HfTokenizer implements TokenizerV1 {
  readonly vocabSize: number;
  readonly fingerprint: string;
  readonly chatTemplate: string | undefined;
  readonly unknownTokenId: number | undefined;
  readonly applyChatTemplate?: (messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }) => string;
  private readonly tokenizer: Tokenizer;
  private readonly offsets: TokenOffsetMapper;

  private constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, path: string, jinja: TemplateClass | undefined) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (cause) {
      throw new ModelLayoutError(`Cannot build a tokenizer from ${path}: ${(cause as Error).message}`, { path, cause });
    }
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    // The library's typings hide the model's unk fields and type the callables as classes.
    const source = this.tokenizer as unknown as OffsetSource;
    this.unknownTokenId = source.model?.unk_token_id;
    this.offsets = new TokenOffsetMapper(source, tokenizerJson);
    // Same model section (vocab, merges), added tokens and normalisation → same ids for the same text.
    const identity = JSON.stringify([tokenizerJson.model, tokenizerJson.added_tokens, tokenizerJson.normalizer, tokenizerJson.pre_tokenizer]);
    this.fingerprint = createHash('sha256').update(identity).digest('hex').slice(0, 32);
    const template = tokenizerConfig.chat_template;
    this.chatTemplate = typeof template === 'string' ? template : undefined;
    if (this.chatTemplate !== undefined) {
      const source = this.chatTemplate;
      const specials: Record<string, string> = {};
      for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
        const content = tokenContent(tokenizerConfig[key]);
        if (content !== undefined) specials[key] = content;
      }
      let compiled: { render(context: Record<string, unknown>): string } | undefined;
      this.applyChatTemplate = (messages, options = {}) => {
        if (!jinja) {
          throw new UnsupportedCapabilityError({
            capability: 'chatTemplate',
            component: 'HfTokenizer.applyChatTemplate',
            message: 'Rendering a chat template needs @huggingface/jinja; install it next to @draft/runtime.',
          });
        }
        compiled ??= new jinja(source);
        return compiled.render({ messages, add_generation_prompt: options.addGenerationPrompt ?? false, ...specials });
      };
    }
  }

  /** Builds the tokenizer; resolves the jinja engine once when the folder has a chat template. */
  static async create(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, path: string): Promise<HfTokenizer> {
    const jinja = typeof tokenizerConfig.chat_template === 'string' ? await loadJinja() : undefined;
    return new HfTokenizer(tokenizerJson, tokenizerConfig, path, jinja);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  encodeWithOffsets(text: string, options: { addSpecialTokens?: boolean } = {}): TokenEncodingV1 {
    return this.offsets.encode(text, options.addSpecialTokens ?? true);
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    // @huggingface/tokenizers 0.2.0 throws on an empty list.
    if (ids.length === 0) return '';
    return this.tokenizer.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false });
  }
}
