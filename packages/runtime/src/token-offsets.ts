import { type TokenEncodingV1, TokenAlignmentError } from '@draft/core';

/**
 * The parts of `@huggingface/tokenizers`' `Tokenizer` (0.2.0) this file reads. The library has no offsets API:
 * its `encode` returns the token strings, which are aligned here against the text.
 */
export interface OffsetSource {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[]; tokens: string[] };
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: ((text: string) => string[]) | null;
  model: { unk_token_id?: number; unk_token?: string } | null;
  get_added_tokens_decoder(): Map<number, { content: string }>;
}

/**
 * GPT-2's byte ↔ printable-character table (byte-level BPE writes byte b as character `table[b]`): printable
 * Latin-1 bytes map to themselves, the other 68 to U+0100 onwards, in byte order.
 */
function byteLevelDecoder(): Map<string, number> {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table = new Map<string, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) table.set(String.fromCodePoint(printable(b) ? b : next++), b);
  return table;
}

/** Whether any component of a tokenizer.json section (a `Sequence` included) has type `type`. */
function hasComponent(section: unknown, type: string): boolean {
  if (!section || typeof section !== 'object') return false;
  if ((section as { type?: unknown }).type === type) return true;
  return Object.values(section).some((v) => (Array.isArray(v) ? v.some((x) => hasComponent(x, type)) : hasComponent(v, type)));
}

const WHITESPACE = /\s/u;
const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;
const encoder = new TextEncoder();
const utf8Length = (codePoint: number) => (codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4);

/**
 * Computes `TokenizerV1.encodeWithOffsets` for a `@huggingface/tokenizers` tokenizer.
 *
 * How: the text is normalised one code point at a time (so every normalised character knows the original one
 * it came from; the concatenation must equal the normaliser applied to the whole text, else the normaliser is
 * not character-wise and alignment is refused). Each token is turned into the UTF-8 bytes it stands for —
 * byte-level BPE characters through GPT-2's byte table (a token may hold part of a multi-byte character),
 * `<0xNN>` byte-fallback tokens, `▁` (Metaspace) as a space, WordPiece `##` / BPE end-of-word markers
 * removed — and found at the cursor in the normalised text's UTF-8 bytes, skipping only whitespace (which
 * pre-tokenizers drop). Special tokens match their literal text when it is there, else (post-processor BOS/EOS)
 * get an empty span. An unknown token whose string is the unk token (not the word, as WordLevel keeps it)
 * spans the next pre-token. Byte spans then map back to UTF-16 spans of the original text; a span cutting a
 * character grows to the whole character. Anything that does not match throws `TokenAlignmentError`: wrong
 * spans would silently hand the target the wrong text.
 */
export class TokenOffsetMapper {
  private readonly byteLevel: Map<string, number> | undefined;
  private readonly metaspace: boolean;
  private readonly prefix: string;
  private readonly suffix: string;
  private readonly added: Map<number, string>;
  private readonly unkId: number | undefined;
  private readonly unkToken: string | undefined;

  constructor(
    private readonly tokenizer: OffsetSource,
    tokenizerJson: Record<string, unknown>,
  ) {
    const { pre_tokenizer: pre, decoder, normalizer } = tokenizerJson;
    const model = (tokenizerJson.model ?? {}) as { continuing_subword_prefix?: unknown; end_of_word_suffix?: unknown; type?: unknown };
    this.byteLevel = hasComponent(pre, 'ByteLevel') || hasComponent(decoder, 'ByteLevel') ? byteLevelDecoder() : undefined;
    this.metaspace = hasComponent(pre, 'Metaspace') || hasComponent(decoder, 'Metaspace') || JSON.stringify(normalizer ?? null).includes('▁');
    // WordPiece continuation prefix ('##') and BPE end-of-word suffix ('</w>') are not text.
    const decoderPrefix = (decoder as { prefix?: unknown } | null)?.prefix;
    this.prefix = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : model.type === 'WordPiece' && typeof decoderPrefix === 'string' ? decoderPrefix : '';
    this.suffix = typeof model.end_of_word_suffix === 'string' ? model.end_of_word_suffix : '';
    this.added = new Map(Array.from(tokenizer.get_added_tokens_decoder(), ([id, token]) => [id, token.content]));
    this.unkId = tokenizer.model?.unk_token_id;
    this.unkToken = tokenizer.model?.unk_token;
  }

  encode(text: string, addSpecialTokens: boolean): TokenEncodingV1 {
    const { ids, tokens } = this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens });
    const norm = this.normalise(text);
    const bytes = encoder.encode(norm.text);
    // For each byte of the normalised text: the UTF-16 index where its code point starts and ends.
    const charStart = new Int32Array(bytes.length + 1);
    const charEnd = new Int32Array(bytes.length + 1);
    {
      let b = 0;
      for (let c = 0; c < norm.text.length; ) {
        const cp = norm.text.codePointAt(c) as number;
        const units = cp > 0xffff ? 2 : 1;
        for (let k = utf8Length(cp); k > 0; k--, b++) {
          charStart[b] = c;
          charEnd[b] = c + units;
        }
        c += units;
      }
      charStart[bytes.length] = norm.text.length;
      charEnd[bytes.length] = norm.text.length;
    }
    const offsets: [number, number][] = [];
    let cursor = 0;
    const skipWhitespace = (from: number) => {
      let b = from;
      // Whole code points only, and only at a code-point start (a token may end inside a character).
      while (b < bytes.length && (b === 0 || charStart[b] !== charStart[b - 1])) {
        const cp = norm.text.codePointAt(charStart[b]) as number;
        if (!WHITESPACE.test(String.fromCodePoint(cp))) break;
        b += utf8Length(cp);
      }
      return b;
    };
    const matchesAt = (at: number, piece: Uint8Array) => {
      if (piece.length === 0 || at + piece.length > bytes.length) return false;
      for (let k = 0; k < piece.length; k++) if (bytes[at + k] !== piece[k]) return false;
      return true;
    };
    /** Finds `piece` at the cursor or after whitespace: its byte span. A leading space may be one the tokenizer added. */
    const find = (piece: Uint8Array): [number, number] | undefined => {
      for (const candidate of piece[0] === 0x20 && piece.length > 1 ? [piece, piece.subarray(1)] : [piece]) {
        if (matchesAt(cursor, candidate)) return [cursor, cursor + candidate.length];
        const after = skipWhitespace(cursor);
        if (matchesAt(after, candidate)) return [after, after + candidate.length];
      }
      return undefined;
    };
    const span = (from: number, to: number): [number, number] => {
      if (to <= from) {
        const at = norm.origin(charStart[from]);
        return [at, at];
      }
      return [norm.origin(charStart[from]), norm.originEnd(charEnd[to - 1])];
    };

    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      // An added token (not text the model mapped to one, as WordLevel's unknown words map to '<unk>').
      const special = this.added.get(ids[i]);
      if (special !== undefined && token === special) {
        // Literal text when it is there; else added by the post-processor (BOS, EOS), with no text of its own.
        const found = find(encoder.encode(special));
        offsets.push(found ? span(found[0], found[1]) : span(cursor, cursor));
        if (found) cursor = found[1];
        continue;
      }
      const piece = this.bytesOf(token);
      let found = piece ? find(piece) : undefined;
      if (!found && ids[i] === this.unkId && token === this.unkToken) {
        // The model replaced the text by its unk token: it covers the next pre-token (one character without one).
        const at = skipWhitespace(cursor);
        if (at < bytes.length) found = [at, at + this.unknownLength(norm.text, charStart[at], bytes.length - at)];
      }
      if (!found) {
        const near = norm.text.slice(charStart[cursor], charStart[cursor] + 24);
        throw new TokenAlignmentError(
          `Cannot align token ${i} (${JSON.stringify(token)}, id ${ids[i]}) with the text at character ${norm.origin(charStart[cursor])} (${JSON.stringify(near)}).`,
          { details: { tokenIndex: i, token, id: ids[i], near } },
        );
      }
      const [at, end] = found;
      offsets.push(span(at, end));
      cursor = end;
    }
    return { ids, offsets };
  }

  /** The UTF-8 bytes a token stands for; undefined when it has no recognisable text form. */
  private bytesOf(token: string): Uint8Array | undefined {
    const fallback = BYTE_FALLBACK.exec(token);
    if (fallback) return Uint8Array.of(Number.parseInt(fallback[1], 16));
    if (this.byteLevel) {
      const out = new Uint8Array(token.length);
      let k = 0;
      for (const ch of token) {
        const b = this.byteLevel.get(ch);
        if (b === undefined) return undefined;
        out[k++] = b;
      }
      return out.subarray(0, k);
    }
    let text = token;
    if (this.prefix && text.startsWith(this.prefix) && text.length > this.prefix.length) text = text.slice(this.prefix.length);
    if (this.suffix && text.endsWith(this.suffix)) text = text.slice(0, -this.suffix.length);
    if (this.metaspace) text = text.replaceAll('▁', ' ');
    return encoder.encode(text);
  }

  /** Bytes of the pre-token starting at UTF-16 index `c` (at most `limit` bytes); one code point without a pre-tokenizer. */
  private unknownLength(text: string, c: number, limit: number): number {
    const rest = text.slice(c, c + 256);
    const first = this.tokenizer.pre_tokenizer?.(rest)?.[0];
    const word = first && rest.startsWith(first) ? first : String.fromCodePoint(text.codePointAt(c) ?? 0);
    return Math.min(encoder.encode(word).length, limit);
  }

  /**
   * The normalised text, and for each normalised UTF-16 index the original index it comes from. Normalising
   * code point by code point keeps that map exact; a normaliser that is not character-wise (Prepend, Strip,
   * composition across characters) is detected by comparing with the whole-text result.
   */
  private normalise(text: string): { text: string; origin(i: number): number; originEnd(i: number): number } {
    const normalizer = this.tokenizer.normalizer;
    if (!normalizer) return { text, origin: (i) => i, originEnd: (i) => i };
    let out = '';
    const from: number[] = [];
    const to: number[] = [];
    for (let c = 0; c < text.length; ) {
      const ch = String.fromCodePoint(text.codePointAt(c) as number);
      const n = normalizer(ch);
      for (let k = 0; k < n.length; k++) {
        from.push(c);
        to.push(c + ch.length);
      }
      out += n;
      c += ch.length;
    }
    if (out !== normalizer(text)) {
      throw new TokenAlignmentError('The tokenizer normalises text across characters (e.g. Prepend, Strip, or composing accents); its tokens cannot be mapped back to the text.');
    }
    from.push(text.length);
    to.unshift(0);
    // origin(i): where normalised char i starts; originEnd(i): where normalised char i − 1 ends (exclusive end i).
    return { text: out, origin: (i) => from[i], originEnd: (i) => (i === 0 ? 0 : to[i]) };
  }
}
