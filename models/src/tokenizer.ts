/**
 * A tiny byte-level BPE tokenizer (GPT-2 style byte->unicode mapping) learned deterministically from a
 * built-in English text. Emits HF `tokenizer.json` + `tokenizer_config.json` objects.
 */
import { BPE_TRAINING_TEXT } from './corpus.js';

export const SPECIAL_TOKENS = ['<|bos|>', '<|eos|>', '<|pad|>', '<|user|>', '<|assistant|>', '<|end|>'] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export const CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>' + message['content'] + '<|end|>' }}" +
  "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + '<|end|>' }}" +
  "{% else %}{{ message['content'] + '\\n' }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/** GPT-2 bytes_to_unicode */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map: string[] = new Array(256);
  for (let i = 0; i < bs.length; i++) map[bs[i]] = String.fromCodePoint(cs[i]);
  return map;
}

const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BuiltTokenizer {
  tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json without chat_template (add one with `withChatTemplate`) */
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
  specialIds: Record<SpecialToken, number>;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

export interface BuildTokenizerOptions {
  /** number of BPE merges (default 250 -> 256 + 250 + 6 specials = 512 tokens) */
  numMerges?: number;
  chatTemplate?: string | null;
  modelMaxLength?: number;
}

export function buildTokenizer(options: BuildTokenizerOptions = {}): BuiltTokenizer {
  const numMerges = options.numMerges ?? 250;
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  // word frequencies over byte-level strings
  const wordFreq = new Map<string, number>();
  for (const m of BPE_TRAINING_TEXT.matchAll(GPT2_SPLIT)) {
    const w = Array.from(enc.encode(m[0]), (b) => b2u[b]).join('');
    wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
  }
  const words: { syms: string[]; freq: number }[] = [...wordFreq.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([w, freq]) => ({ syms: Array.from(w), freq }));
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[b2u[b]] = b;
  const merges: string[] = [];
  while (merges.length < numMerges) {
    const counts = new Map<string, number>();
    for (const { syms, freq } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]} ${syms[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + freq);
      }
    }
    let best: string | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      if (c > bestCount || (c === bestCount && best !== null && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split(' ');
    const merged = a + b;
    merges.push(best);
    vocab[merged] = 256 + merges.length - 1;
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  const base = 256 + merges.length;
  const specialIds = {} as Record<SpecialToken, number>;
  SPECIAL_TOKENS.forEach((t, i) => {
    specialIds[t] = base + i;
    vocab[t] = base + i;
  });
  const vocabSize = base + SPECIAL_TOKENS.length;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t) => ({
      id: specialIds[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      SPECIAL_TOKENS.map((t) => [
        String(specialIds[t]),
        { content: t, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    additional_special_tokens: ['<|user|>', '<|assistant|>', '<|end|>'],
    bos_token: '<|bos|>',
    eos_token: '<|eos|>',
    pad_token: '<|pad|>',
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: options.modelMaxLength ?? 4096,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  if (options.chatTemplate) tokenizerConfig.chat_template = options.chatTemplate;
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize,
    specialIds,
    bosTokenId: specialIds['<|bos|>'],
    eosTokenId: specialIds['<|eos|>'],
    padTokenId: specialIds['<|pad|>'],
  };
}
