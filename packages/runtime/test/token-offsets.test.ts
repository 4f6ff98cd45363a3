import { readFileSync } from 'node:fs';
import { TokenAlignmentError } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { HfTokenizer } from '../src/index.js';
import { MODELS, TINY_LLAMA } from './helpers.js';

// encodeWithOffsets on hand-written tokenizer.json files whose offsets are derived by hand below, then on the
// repository's two real tokenizers (the WordLevel draft, the byte-level BPE fixtures).

const spansOf = (text: string, offsets: readonly (readonly [number, number])[]) => offsets.map(([s, e]) => text.slice(s, e));

/** WordLevel + Whitespace pre-tokenizer (`\w+|[^\w\s]+`), as models/draft. */
function wordLevel(normalizer: unknown = null) {
  return HfTokenizer.create(
    {
      version: '1.0',
      added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
      model: { type: 'WordLevel', vocab: { '<unk>': 0, the: 1, cat: 2, ',': 3, sat: 4 }, unk_token: '<unk>' },
    },
    // @huggingface/tokenizers 0.2.0 reads a WordLevel model's unk token from tokenizer_config.json.
    { unk_token: '<unk>' },
    'word-level',
  );
}

describe('encodeWithOffsets: WordLevel with a Whitespace pre-tokenizer', () => {
  it('spans each word; dropped whitespace belongs to no token; unknown words span themselves', async () => {
    const tokenizer = await wordLevel();
    const text = 'the cat,  sat\n on mat';
    //            0123456789012 3 4567890
    const { ids, offsets } = tokenizer.encodeWithOffsets(text);
    expect(ids).toEqual([1, 2, 3, 4, 0, 0]);
    expect(ids).toEqual(tokenizer.encode(text));
    expect(offsets).toEqual([
      [0, 3], // the
      [4, 7], // cat
      [7, 8], // ,
      [10, 13], // sat (two spaces skipped)
      [15, 17], // on: unknown, still its own word
      [18, 21], // mat
    ]);
    expect(tokenizer.unknownTokenId).toBe(0);
  });

  it('a literal special token in the text spans its text', async () => {
    const tokenizer = await wordLevel();
    const text = 'cat <unk> sat';
    expect(tokenizer.encodeWithOffsets(text).offsets).toEqual([
      [0, 3],
      [4, 9],
      [10, 13],
    ]);
  });

  it('a normaliser that is not character-wise is refused with TokenAlignmentError', async () => {
    const tokenizer = await wordLevel({ type: 'Strip', strip_left: true, strip_right: true });
    expect(() => tokenizer.encodeWithOffsets('the cat sat')).toThrow(TokenAlignmentError);
    // A character-wise one (Lowercase) maps back to the original characters.
    const lower = await wordLevel({ type: 'Lowercase' });
    const text = 'The CAT sat';
    expect(lower.encodeWithOffsets(text).ids).toEqual([1, 2, 4]);
    expect(spansOf(text, lower.encodeWithOffsets(text).offsets)).toEqual(['The', 'CAT', 'sat']);
  });
});

describe('encodeWithOffsets: byte-level BPE', () => {
  // GPT-2's byte table, by hand: printable bytes 0x21–0x7E, 0xA1–0xAC, 0xAE–0xFF are themselves; the others, in
  // byte order (0x00–0x20 → n = 0…32, 0x7F–0xA0 → 33…66, 0xAD → 67), are U+0100 + n. So space 0x20 = 'Ġ' (U+0120),
  // 0x97 = U+0100 + 33 + 24 = 'Ĺ', 0x9F = U+0141 'Ł', 0x98 = U+013A 'ĺ', 0x80 = U+0122 'Ģ'.
  // 'é' = C3 A9 = 'Ã' '©'; '日' = E6 97 A5 = 'æ' 'Ĺ' '¥'; '😀' = F0 9F 98 80 = 'ð' 'Ł' 'ĺ' 'Ģ' (2 UTF-16 units).
  const vocab = ['a', 'Ã', '©', 'Ġ', 'æ', 'Ĺ', '¥', 'ð', 'Ł', 'ĺ', 'Ģ', 'Ã©', 'Ġæ'];
  const tokenizer = () =>
    HfTokenizer.create(
      {
        version: '1.0',
        added_tokens: [{ id: 13, content: '<|bos|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: { '<|bos|>': { id: '<|bos|>', ids: [13], tokens: ['<|bos|>'] } } },
        decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        model: { type: 'BPE', vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), merges: ['Ã ©', 'Ġ æ'], dropout: null, unk_token: null },
      },
      {},
      'byte-level',
    );

  it('tokens inside a multi-byte character span the whole character; a post-processor BOS spans nothing', async () => {
    const t = await tokenizer();
    const text = 'aé 日😀';
    //            01 2 3 45
    const { ids, offsets } = t.encodeWithOffsets(text);
    expect(ids).toEqual(t.encode(text));
    expect(ids).toEqual([13, 0, 11, 12, 5, 6, 7, 8, 9, 10]);
    expect(offsets).toEqual([
      [0, 0], // <|bos|>: added by the post-processor
      [0, 1], // a
      [1, 2], // Ã© = é
      [2, 4], // Ġæ = space + the first byte of 日 (the whole character)
      [3, 4], // Ĺ: second byte of 日
      [3, 4], // ¥: third byte of 日
      [4, 6], // ð … Ģ: the four bytes of 😀, a surrogate pair
      [4, 6],
      [4, 6],
      [4, 6],
    ]);
    expect(t.unknownTokenId).toBeUndefined();
    expect(t.encodeWithOffsets(text, { addSpecialTokens: false }).offsets[0]).toEqual([0, 1]);
  });
});

describe('encodeWithOffsets: Metaspace BPE with byte fallback (sentencepiece style)', () => {
  it("'▁' stands for a space (the prepended one has no character); <0xNN> tokens are bytes", async () => {
    const vocab = ['<unk>', '▁the', '▁cat', '▁', '<0xC3>', '<0xA9>', 't', 'h', 'e', 'c', 'a', '▁t', 'he', '▁c', 'at'];
    const t = await HfTokenizer.create(
      {
        version: '1.0',
        added_tokens: [{ id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
        normalizer: null,
        pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false },
        post_processor: null,
        decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
        model: {
          type: 'BPE',
          vocab: Object.fromEntries(vocab.map((v, i) => [v, i])),
          merges: ['▁ t', 'h e', '▁t he', '▁ c', 'a t', '▁c at'],
          byte_fallback: true,
          unk_token: '<unk>',
          fuse_unk: true,
          dropout: null,
        },
      },
      {},
      'metaspace',
    );
    const text = 'the cat é'; // é = C3 A9, not in the vocabulary: two byte-fallback tokens
    const { ids, offsets } = t.encodeWithOffsets(text);
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(offsets).toEqual([
      [0, 3], // ▁the: its ▁ is the prepended one
      [3, 7], // ▁cat: the space before 'cat'
      [7, 8], // ▁: the space before é
      [8, 9], // <0xC3>
      [8, 9], // <0xA9>
    ]);
  });
});

describe('encodeWithOffsets on the repository tokenizers', () => {
  const load = (dir: string) =>
    HfTokenizer.create(JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')), JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')), dir);
  const text = 'w01 k12  v34.\nQ k12 A — héllo 日本 😀!';

  it('models/draft (WordLevel): every in-vocabulary token spans exactly its own word', async () => {
    const draft = await load(`${MODELS}draft`);
    const { ids, offsets } = draft.encodeWithOffsets(text);
    expect(ids).toEqual(draft.encode(text));
    const spans = spansOf(text, offsets);
    expect(spans.slice(0, 7)).toEqual(['w01', 'k12', 'v34', '.', 'Q', 'k12', 'A']);
    for (let i = 0; i < ids.length; i++) if (ids[i] !== draft.unknownTokenId) expect(draft.decode([ids[i]])).toBe(spans[i]);
  });

  it('byte-level BPE (tiny-llama): the spans tile the text exactly', async () => {
    const target = await load(TINY_LLAMA);
    const { ids, offsets } = target.encodeWithOffsets(text, { addSpecialTokens: false });
    expect(ids).toEqual(target.encode(text, { addSpecialTokens: false }));
    // Merging overlapping spans (tokens of one character) leaves a gap-free cover of the text.
    let covered = 0;
    for (const [s, e] of offsets) {
      expect(s).toBeLessThanOrEqual(covered);
      covered = Math.max(covered, e);
    }
    expect(covered).toBe(text.length);
  });
});
