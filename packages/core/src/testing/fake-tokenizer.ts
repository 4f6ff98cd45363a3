import type { TokenizerV1 } from '../spec/tokenizer.js';

export interface FakeTokenizerOptions {
  /** Default 128: ids are character codes (ASCII). */
  vocabSize?: number;
  /** Default 'fake-ascii-v1'. */
  fingerprint?: string;
  /** Id prepended when `addSpecialTokens` is true (default true); undefined = none. Default 1. */
  bosTokenId?: number;
  /** Default 0 (decodes to nothing when special tokens are skipped). */
  eosTokenId?: number;
  /** Added to every character code (a different vocabulary with the same text: another "tokenizer"). Default 0. */
  shift?: number;
}

/**
 * A character-level tokenizer for tests: one id per character, id = (code + shift) mod vocabSize.
 * Ids below 32 (after unshifting) are special: BOS (1) and EOS (0) decode to '' when skipped, '<s>' / '</s>' otherwise.
 */
export function createFakeTokenizer(options: FakeTokenizerOptions = {}): TokenizerV1 & { bosTokenId?: number; eosTokenId: number } {
  const vocabSize = options.vocabSize ?? 128;
  const shift = options.shift ?? 0;
  const bos = 'bosTokenId' in options ? options.bosTokenId : 1;
  const eos = options.eosTokenId ?? 0;
  const toId = (code: number) => (code + shift) % vocabSize;
  const toCode = (id: number) => (((id - shift) % vocabSize) + vocabSize) % vocabSize;
  return {
    vocabSize,
    fingerprint: options.fingerprint ?? (shift === 0 ? 'fake-ascii-v1' : `fake-ascii-v1+${shift}`),
    bosTokenId: bos,
    eosTokenId: eos,
    encode(text, encodeOptions) {
      const ids: number[] = [];
      if ((encodeOptions?.addSpecialTokens ?? true) && bos !== undefined) ids.push(bos);
      for (const ch of text) ids.push(toId(Math.min(ch.charCodeAt(0), vocabSize - 1)));
      return ids;
    },
    decode(ids, decodeOptions) {
      const skip = decodeOptions?.skipSpecialTokens ?? false;
      let out = '';
      for (const id of ids) {
        if (id === bos || id === eos) {
          if (!skip) out += id === bos ? '<s>' : '</s>';
          continue;
        }
        const code = toCode(id);
        if (code >= 32) out += String.fromCharCode(code);
      }
      return out;
    },
  };
}
