/**
 * A small GGUF v3 writer and a converter from this project's Llama model folders (config.json, tokenizer.json,
 * HF-named initializers in onnx/model.onnx) to a GGUF file that llama.cpp (e.g. node-llama-cpp 3.22) loads.
 *
 * GGUF v3 layout (little endian): magic `GGUF`, version u32 = 3, tensor count u64, key/value count u64; the
 * key/values (string key, u32 value type, value); the tensor infos (name, n_dims u32, dims u64[] innermost first,
 * ggml type u32, data offset u64 relative to the data section); padding to `general.alignment` (32); the tensor
 * data, each tensor starting at a multiple of the alignment.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readInitializers } from './onnx-builder.js';

/** GGUF metadata value types (gguf.h `gguf_type`). */
const T = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 } as const;

/** ggml tensor types used here (ggml.h `ggml_type`). */
export const GGML_TYPE = { F32: 0, F16: 1 } as const;

/** llama.cpp `llama_token_type` values written to `tokenizer.ggml.token_type`. */
const TOKEN_TYPE = { NORMAL: 1, UNUSED: 5, CONTROL: 3, USER_DEFINED: 4 } as const;

export const GGUF_ALIGNMENT = 32;

/** A typed metadata value: the GGUF type is explicit because JS numbers do not say u32 vs f32. */
export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: string[] }
  | { type: 'i32[]'; value: number[] };

export interface GgufTensor {
  name: string;
  /** Shape in row-major (numpy / ONNX) order, outermost first; written reversed (ggml `ne`, innermost first). */
  dims: number[];
  data: Float32Array;
  /** Storage type in the file (the data is always given as f32). */
  type: 'f32' | 'f16';
}

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  pad(alignment: number): void {
    const rem = this.length % alignment;
    if (rem) this.push(Buffer.alloc(alignment - rem));
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(sink: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      sink.u32(T.UINT32);
      sink.u32(v.value);
      break;
    case 'i32':
      sink.u32(T.INT32);
      sink.i32(v.value);
      break;
    case 'f32':
      sink.u32(T.FLOAT32);
      sink.f32(v.value);
      break;
    case 'bool':
      sink.u32(T.BOOL);
      sink.push(Buffer.from([v.value ? 1 : 0]));
      break;
    case 'string':
      sink.u32(T.STRING);
      sink.str(v.value);
      break;
    case 'string[]':
      sink.u32(T.ARRAY);
      sink.u32(T.STRING);
      sink.u64(v.value.length);
      for (const s of v.value) sink.str(s);
      break;
    case 'i32[]':
      sink.u32(T.ARRAY);
      sink.u32(T.INT32);
      sink.u64(v.value.length);
      for (const x of v.value) sink.i32(x);
      break;
  }
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE binary16 bits of a float32, round to nearest even (Node 20 has no Float16Array). */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> ±0
    mant |= 0x800000; // subnormal: shift the implicit bit in
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

function tensorBytes(t: GgufTensor): Buffer {
  if (t.type === 'f32') return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint16Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = f32ToF16Bits(t.data[i]);
  return Buffer.from(out.buffer);
}

/** Write a GGUF v3 file. Tensors are written in the order given; metadata keys in insertion order. */
export function writeGguf(path: string, metadata: Map<string, GgufValue>, tensors: GgufTensor[]): void {
  const head = new ByteSink();
  head.push(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, value] of metadata) {
    head.str(key);
    writeValue(head, value);
  }
  let offset = 0;
  const sizes = tensors.map((t) => t.data.length * (t.type === 'f32' ? 4 : 2));
  tensors.forEach((t, i) => {
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of [...t.dims].reverse()) head.u64(d);
    head.u32(t.type === 'f32' ? GGML_TYPE.F32 : GGML_TYPE.F16);
    head.u64(offset);
    offset += Math.ceil(sizes[i] / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  });
  head.pad(GGUF_ALIGNMENT);
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head.concat());
    for (const [i, t] of tensors.entries()) {
      writeSync(fd, tensorBytes(t));
      const rem = sizes[i] % GGUF_ALIGNMENT;
      if (rem) writeSync(fd, Buffer.alloc(GGUF_ALIGNMENT - rem));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * HF rotate_half layout → llama.cpp's interleaved RoPE layout, as `LlamaModel.permute` in llama.cpp's
 * convert_hf_to_gguf.py: rows viewed as [heads, 2, headDim/2] are swapped to [heads, headDim/2, 2], so HF's pair
 * (i, i + d/2) becomes llama.cpp's adjacent pair (2i, 2i + 1) with the same frequency. Weight [heads·d, in].
 */
export function permuteForInterleavedRope(w: Float32Array, rows: number, cols: number, numHeads: number): Float32Array {
  const d = rows / numHeads;
  const half = d / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < numHeads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const src = (h * d + j * half + i) * cols;
        const dst = (h * d + 2 * i + j) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

export interface ConvertToGgufOptions {
  /** Model folder written by this project's writer (Llama architecture). */
  dir: string;
  /** Output file (parent folders are created). */
  outPath: string;
  /** Storage type of the matrices (norm weights stay f32, as llama.cpp's converter does); default f32. */
  dtype?: 'f32' | 'f16';
}

interface HfLlamaConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
  rope_theta?: number;
  rope_scaling?: unknown;
  rms_norm_eps: number;
  max_position_embeddings: number;
  tie_word_embeddings?: boolean;
  attention_bias?: boolean;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  pad_token_id?: number;
}

interface TokenizerJson {
  added_tokens?: { id: number; content: string; special: boolean }[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** The gpt2-style tokenizer keys from an HF byte-level BPE tokenizer.json (ids kept as they are). */
export function gpt2TokenizerMetadata(tokenizer: TokenizerJson, vocabSize: number): Map<string, GgufValue> {
  if (tokenizer.model.type !== 'BPE') throw new Error(`GGUF converter: tokenizer model ${tokenizer.model.type} is not BPE`);
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TOKEN_TYPE.NORMAL);
  for (const [tok, id] of Object.entries(tokenizer.model.vocab)) if (id < vocabSize) tokens[id] = tok;
  for (const t of tokenizer.added_tokens ?? []) {
    if (t.id >= vocabSize) continue;
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  // Ids the tokenizer never produces (config vocab larger than the tokenizer's): unique placeholders, UNUSED.
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.UNUSED;
    }
  }
  const merges = tokenizer.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    // GPT-2's split regex, as src/tokenizer.ts uses.
    ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: types }],
    ['tokenizer.ggml.merges', { type: 'string[]', value: merges }],
  ]);
}

/**
 * Convert a Llama model folder to GGUF (f32 or f16 matrices). Returns the metadata written.
 * Only the plain Llama layout is supported (no q/k/v bias, no rope scaling): qwen2 would need llama.cpp's
 * `qwen2` architecture and no q/k permutation.
 */
export function convertToGguf(options: ConvertToGgufOptions): Map<string, GgufValue> {
  const { dir, outPath } = options;
  const dtype = options.dtype ?? 'f32';
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as HfLlamaConfig;
  if (cfg.model_type !== 'llama') throw new Error(`GGUF converter: model_type ${cfg.model_type} is not supported (llama only)`);
  if (cfg.attention_bias) throw new Error('GGUF converter: attention_bias is not supported');
  if (cfg.rope_scaling) throw new Error('GGUF converter: rope_scaling is not supported');
  const Hq = cfg.num_attention_heads;
  const Hkv = cfg.num_key_value_heads ?? Hq;
  const d = cfg.head_dim ?? cfg.hidden_size / Hq;
  const tokenizer = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const tokCfgPath = join(dir, 'tokenizer_config.json');
  const tokCfg = existsSync(tokCfgPath) ? (JSON.parse(readFileSync(tokCfgPath, 'utf8')) as Record<string, unknown>) : {};
  const eos = Array.isArray(cfg.eos_token_id) ? cfg.eos_token_id[0] : cfg.eos_token_id;

  const meta = new Map<string, GgufValue>();
  const u32 = (k: string, v: number) => meta.set(k, { type: 'u32', value: v });
  meta.set('general.architecture', { type: 'string', value: 'llama' });
  meta.set('general.name', { type: 'string', value: dir.split(/[\\/]/).filter(Boolean).pop() ?? 'model' });
  u32('general.alignment', GGUF_ALIGNMENT);
  // llama_ftype: 0 = all f32, 1 = mostly f16.
  u32('general.file_type', dtype === 'f32' ? 0 : 1);
  u32('llama.context_length', cfg.max_position_embeddings);
  u32('llama.embedding_length', cfg.hidden_size);
  u32('llama.block_count', cfg.num_hidden_layers);
  u32('llama.feed_forward_length', cfg.intermediate_size);
  u32('llama.attention.head_count', Hq);
  u32('llama.attention.head_count_kv', Hkv);
  // Written explicitly so that head_dim ≠ hidden/heads also loads.
  u32('llama.attention.key_length', d);
  u32('llama.attention.value_length', d);
  u32('llama.rope.dimension_count', d);
  meta.set('llama.rope.freq_base', { type: 'f32', value: cfg.rope_theta ?? 10000 });
  meta.set('llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: cfg.rms_norm_eps });
  u32('llama.vocab_size', cfg.vocab_size);
  for (const [k, v] of gpt2TokenizerMetadata(tokenizer, cfg.vocab_size)) meta.set(k, v);
  if (cfg.bos_token_id !== undefined) u32('tokenizer.ggml.bos_token_id', cfg.bos_token_id);
  if (eos !== undefined) u32('tokenizer.ggml.eos_token_id', eos);
  if (cfg.pad_token_id !== undefined) u32('tokenizer.ggml.padding_token_id', cfg.pad_token_id);
  // Our tokenizers add no BOS (tokenizer_config add_bos_token false); llama.cpp must not add one either.
  meta.set('tokenizer.ggml.add_bos_token', { type: 'bool', value: tokCfg.add_bos_token === true });
  meta.set('tokenizer.ggml.add_eos_token', { type: 'bool', value: false });
  if (typeof tokCfg.chat_template === 'string') meta.set('tokenizer.chat_template', { type: 'string', value: tokCfg.chat_template });

  const { tensors: init } = readInitializers(readFileSync(join(dir, 'onnx', 'model.onnx')));
  const get = (name: string) => {
    const t = init.get(name);
    if (!t || !(t.data instanceof Float32Array)) throw new Error(`GGUF converter: float initializer ${name} missing from ${dir}/onnx/model.onnx`);
    return { data: t.data, dims: t.dims };
  };
  const tensors: GgufTensor[] = [];
  const add = (name: string, hf: string, transform?: (w: Float32Array, dims: number[]) => Float32Array) => {
    const t = get(hf);
    // 1-D tensors (norms) stay f32, as in llama.cpp's converter.
    tensors.push({ name, dims: t.dims, data: transform ? transform(t.data, t.dims) : t.data, type: t.dims.length === 1 ? 'f32' : dtype });
  };
  add('token_embd.weight', 'model.embed_tokens.weight');
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    add(`blk.${i}.attn_norm.weight`, `${p}.input_layernorm.weight`);
    add(`blk.${i}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, (w, [r, c]) => permuteForInterleavedRope(w, r, c, Hq));
    add(`blk.${i}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, (w, [r, c]) => permuteForInterleavedRope(w, r, c, Hkv));
    add(`blk.${i}.attn_v.weight`, `${p}.self_attn.v_proj.weight`);
    add(`blk.${i}.attn_output.weight`, `${p}.self_attn.o_proj.weight`);
    add(`blk.${i}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`);
    add(`blk.${i}.ffn_gate.weight`, `${p}.mlp.gate_proj.weight`);
    add(`blk.${i}.ffn_up.weight`, `${p}.mlp.up_proj.weight`);
    add(`blk.${i}.ffn_down.weight`, `${p}.mlp.down_proj.weight`);
  }
  add('output_norm.weight', 'model.norm.weight');
  // Tied embeddings: llama.cpp falls back to token_embd.weight when output.weight is absent.
  if (!cfg.tie_word_embeddings) add('output.weight', 'lm_head.weight');
  writeGguf(outPath, meta, tensors);
  return meta;
}

/** Where `make:gguf` puts a folder's GGUF: `<dir>/gguf/model-<dtype>.gguf` (gitignored). */
export function ggufPath(dir: string, dtype: 'f32' | 'f16' = 'f32'): string {
  return join(dir, 'gguf', `model-${dtype}.gguf`);
}
