import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../src/fixtures.js';
import { buildTokenizer, SPECIAL_TOKENS } from '../src/tokenizer.js';

const built = buildTokenizer();
const tok = new Tokenizer(built.tokenizerJson as any, built.tokenizerConfig as any);

const SAMPLES = [
  'Hello world, the quick brown fox jumps over the lazy dog!',
  '',
  ' leading space and trailing space ',
  'multiple   spaces\n\nnew lines\ttabs\r\nCRLF',
  'héllo wörld — “quotes” café naïve',
  '日本語のテキスト, 中文, 한국어',
  'emoji 🎉👍🏽 and ZWJ 👨‍👩‍👧 sequences',
  "numbers 1234567890, 3.14159, -42 and code: if (x) { return y; } // ok's",
  '\u0000\u0001 control \u007f chars',
];

describe('byte-level BPE tokenizer', () => {
  it('has 256 byte tokens, merges and the specials within 1024 ids', () => {
    expect(built.vocabSize).toBe(512);
    expect(built.vocabSize).toBeLessThanOrEqual(1024);
    const vocab = (built.tokenizerJson as any).model.vocab as Record<string, number>;
    expect(Object.keys(vocab).length).toBe(built.vocabSize);
    expect(new Set(Object.values(vocab)).size).toBe(built.vocabSize);
    for (const t of SPECIAL_TOKENS) expect(vocab[t]).toBe(built.specialIds[t]);
    expect(Math.max(...Object.values(vocab))).toBe(built.vocabSize - 1);
  });

  it.each(SAMPLES)('round-trips %j with @huggingface/tokenizers', (text) => {
    const ids = tok.encode(text).ids;
    for (const id of ids) expect(id).toBeLessThan(built.vocabSize);
    // note: @huggingface/tokenizers 0.2.0 throws on decode([]) ("token_ids must be a non-empty array")
    if (ids.length === 0) expect(text).toBe('');
    else expect(tok.decode(ids, { skip_special_tokens: false })).toBe(text);
  });

  it('compresses English text with learned merges', () => {
    const text = 'The answer is not one trick but many small ones that work together.';
    expect(tok.encode(text).ids.length).toBeLessThan(text.length * 0.6);
  });

  it('keeps special tokens atomic and skips them on request', () => {
    const text = '<|user|>Hi there<|end|><|assistant|>';
    const ids = tok.encode(text).ids;
    expect(ids[0]).toBe(built.specialIds['<|user|>']);
    expect(ids.slice(-2)).toEqual([built.specialIds['<|end|>'], built.specialIds['<|assistant|>']]);
    expect(tok.decode(ids, { skip_special_tokens: false })).toBe(text);
    expect(tok.decode(ids, { skip_special_tokens: true })).toBe('Hi there');
  });

  it('is deterministic and identical to the committed fixture tokenizers', () => {
    expect(JSON.stringify(buildTokenizer().tokenizerJson)).toBe(JSON.stringify(built.tokenizerJson));
    for (const name of ['tiny-llama', 'tiny-qwen2-gqa', 'random-draft', 'random-target'] as const) {
      const onDisk = JSON.parse(readFileSync(join(fixturePath(name), 'tokenizer.json'), 'utf8'));
      expect(onDisk).toEqual(built.tokenizerJson);
    }
  });
});
