import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../src/fixtures.js';
import { convertToGguf, f32ToF16Bits, GGUF_ALIGNMENT, permuteForInterleavedRope } from '../src/gguf.js';
import { readInitializers } from '../src/onnx-builder.js';
import { applyRope } from '../src/reference-forward.js';
import { ropeHalfTables } from '../src/spec.js';

/** Minimal GGUF v3 reader for the value types the writer emits (the test's independent view of the bytes). */
function readGguf(buf: Buffer) {
  let o = 0;
  /** Returns the current offset and advances it by n bytes. */
  const take = (n: number) => {
    o += n;
    return o - n;
  };
  const u32 = () => buf.readUInt32LE(take(4));
  const u64 = () => Number(buf.readBigUInt64LE(take(8)));
  const str = () => {
    const n = u64();
    const at = take(n);
    return buf.toString('utf8', at, at + n);
  };
  const scalar = (t: number): unknown => {
    if (t === 4) return u32();
    if (t === 5) return buf.readInt32LE(take(4));
    if (t === 6) return buf.readFloatLE(take(4));
    if (t === 7) return buf[o++] === 1;
    if (t === 8) return str();
    if (t === 9) {
      const et = u32();
      const n = u64();
      return Array.from({ length: n }, () => scalar(et));
    }
    throw new Error(`type ${t}`);
  };
  const magic = buf.toString('ascii', 0, 4);
  o = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const k = str();
    kv.set(k, scalar(u32()));
  }
  const tensors = new Map<string, { ne: number[]; type: number; offset: number }>();
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, () => u64());
    tensors.set(name, { ne, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(o / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  return { magic, version, kv, tensors, dataStart };
}

describe('GGUF converter', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'draft-gguf-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = fixturePath('tiny-llama');
  const hf = readInitializers(readFileSync(join(dir, 'onnx', 'model.onnx'))).tensors;

  it('permutes q/k rows from rotate_half halves to adjacent pairs (golden, 2 heads × d 4)', () => {
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]); // 8 rows × 1 column
    expect(Array.from(permuteForInterleavedRope(w, 8, 1, 2))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it('rotate_half RoPE of x equals interleaved RoPE of the permuted x (llama.cpp NORM rope)', () => {
    const d = 8;
    const { cos, sin } = ropeHalfTables({ headDim: d, ropeTheta: 10000, maxPositions: 20 });
    const x = Float32Array.from({ length: d }, (_, i) => Math.sin(i + 1));
    const p = 13;
    const hfOut = applyRope(x, p, d, cos, sin);
    const px = permuteForInterleavedRope(x, d, 1, 1);
    // llama.cpp rope (mode 0): pair (2i, 2i+1) rotated by θ_i = p · base^(−2i/d)
    const interleaved = new Float64Array(d);
    for (let i = 0; i < d / 2; i++) {
      const c = cos[p * (d / 2) + i];
      const s = sin[p * (d / 2) + i];
      interleaved[2 * i] = px[2 * i] * c - px[2 * i + 1] * s;
      interleaved[2 * i + 1] = px[2 * i] * s + px[2 * i + 1] * c;
    }
    const expected = permuteForInterleavedRope(Float32Array.from(hfOut), d, 1, 1);
    for (let i = 0; i < d; i++) expect(interleaved[i]).toBeCloseTo(expected[i], 6);
  });

  it('rounds f32 to f16 bits to nearest even', () => {
    expect([1, -2, 0.5, 65504, 1e6, 0, 0.1, 2 ** -24, 1e-9].map(f32ToF16Bits)).toEqual([
      0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0, 0x2e66, 0x0001, 0,
    ]);
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to the even mantissa (1.0)
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });

  it('writes llama metadata, a gpt2 tokenizer and aligned, permuted tensors (tiny-llama, f32)', () => {
    const out = join(tmp, 'tiny-f32.gguf');
    convertToGguf({ dir, outPath: out });
    const buf = readFileSync(out);
    const g = readGguf(buf);
    expect([g.magic, g.version]).toEqual(['GGUF', 3]);
    const kv = Object.fromEntries(g.kv);
    expect(kv).toMatchObject({
      'general.architecture': 'llama',
      'general.file_type': 0,
      'llama.context_length': 2048,
      'llama.embedding_length': 64,
      'llama.block_count': 2,
      'llama.feed_forward_length': 128,
      'llama.attention.head_count': 4,
      'llama.attention.head_count_kv': 2,
      'llama.rope.dimension_count': 16,
      'llama.rope.freq_base': 10000,
      'tokenizer.ggml.model': 'gpt2',
      'tokenizer.ggml.bos_token_id': 506,
      'tokenizer.ggml.eos_token_id': 507,
      'tokenizer.ggml.padding_token_id': 508,
      'tokenizer.ggml.add_bos_token': false,
    });
    expect(kv['llama.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-6, 12);
    const tokens = kv['tokenizer.ggml.tokens'] as string[];
    expect(tokens.length).toBe(512);
    expect(tokens.slice(506)).toEqual(['<|bos|>', '<|eos|>', '<|pad|>', '<|user|>', '<|assistant|>', '<|end|>']);
    expect((kv['tokenizer.ggml.token_type'] as number[]).slice(505)).toEqual([1, 3, 3, 3, 3, 3, 3]);
    expect((kv['tokenizer.ggml.merges'] as string[]).length).toBe(250);
    expect(g.tensors.size).toBe(1 + 2 * 9 + 2);
    expect(g.tensors.get('token_embd.weight')?.ne).toEqual([64, 512]);
    expect(g.tensors.get('blk.1.attn_k.weight')?.ne).toEqual([64, 32]);
    expect(g.tensors.get('output.weight')?.ne).toEqual([64, 512]);
    for (const t of g.tensors.values()) expect(t.offset % GGUF_ALIGNMENT).toBe(0);
    // k rows: head h, HF row h·16 + 8 + i (second half) lands at h·16 + 2i + 1
    const k = g.tensors.get('blk.1.attn_k.weight')!;
    const at = (row: number, col: number) => buf.readFloatLE(g.dataStart + k.offset + (row * 64 + col) * 4);
    const hfK = hf.get('model.layers.1.self_attn.k_proj.weight')!.data as Float32Array;
    for (const [h, i, col] of [[0, 0, 0], [1, 5, 17], [1, 7, 63]]) {
      expect(at(h * 16 + 2 * i + 1, col)).toBe(hfK[(h * 16 + 8 + i) * 64 + col]);
      expect(at(h * 16 + 2 * i, col)).toBe(hfK[(h * 16 + i) * 64 + col]);
    }
  });

  it('stores matrices as f16 and norms as f32 with dtype f16', () => {
    const out = join(tmp, 'tiny-f16.gguf');
    convertToGguf({ dir, outPath: out, dtype: 'f16' });
    const buf = readFileSync(out);
    const g = readGguf(buf);
    expect(g.kv.get('general.file_type')).toBe(1);
    expect(g.tensors.get('blk.0.attn_v.weight')?.type).toBe(1);
    expect(g.tensors.get('blk.0.attn_norm.weight')?.type).toBe(0);
    const v = g.tensors.get('blk.0.attn_v.weight')!;
    const hfV = hf.get('model.layers.0.self_attn.v_proj.weight')!.data as Float32Array;
    expect(buf.readUInt16LE(g.dataStart + v.offset + 2 * 77)).toBe(f32ToF16Bits(hfV[77]));
  });

  it('refuses architectures it cannot map', () => {
    expect(() => convertToGguf({ dir: fixturePath('tiny-qwen2-gqa'), outPath: join(tmp, 'q.gguf') })).toThrow(/llama only/);
  });
});
