/** `qwen3`: Qwen2 without q/k/v bias, plus an RMSNorm over each query and key head (q_norm, k_norm) before RoPE. */
export type Architecture = 'llama' | 'qwen2' | 'qwen3';
/**
 * How a layer's attention is written, after the styles found in real exports:
 * - `decomposed`: plain ONNX ops as torch exports produce (MatMul → scale → mask → Softmax → MatMul);
 * - `gqa`: fused com.microsoft.GroupQueryAttention rotating q/k itself (`do_rotary=1`);
 * - `gqa-packed`: the same op fed one packed QKV tensor (input 0; key/value inputs empty);
 * - `gqa-rotary-node`: com.microsoft.RotaryEmbedding nodes on q and k, then GQA with `do_rotary=0`;
 * - `mha`: com.microsoft.RotaryEmbedding + com.microsoft.MultiHeadAttention (`unidirectional=1`; needs
 *   numHeads = numKvHeads, as the op has no grouped KV heads);
 * - `attention23`: ONNX opset-23 RotaryEmbedding + Attention (3-D inputs, grouped KV heads, additive mask).
 */
export type AttentionVariant = 'decomposed' | 'gqa' | 'gqa-packed' | 'gqa-rotary-node' | 'mha' | 'attention23';

/** Variants whose attention is one fused op fed [B, S, H·d] projections. */
export const FUSED_ATTENTION_VARIANTS: readonly AttentionVariant[] = ['gqa', 'gqa-packed', 'gqa-rotary-node', 'mha', 'attention23'];

export interface ModelSpec {
  architecture: Architecture;
  attention: AttentionVariant;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projection bias; defaults to true for qwen2, false for llama. */
  qkvBias?: boolean;
  seed: number;
  /** std of the normal init of the projection / embedding weights */
  weightScale: number;
  /**
   * `gqa` only: how positions reach GroupQueryAttention. `wired` (default): the graph's `position_ids` feeds
   * every GQA node's optional input 9. `unwired`: the graph has a `position_ids` input but GQA never reads it
   * (it then numbers positions from `seqlens_k`, as older onnxruntime-genai builder exports do). `absent`: no
   * `position_ids` graph input at all.
   */
  gqaPositionIds?: 'wired' | 'unwired' | 'absent';
}

export function hasQkvBias(spec: ModelSpec): boolean {
  return spec.qkvBias ?? spec.architecture === 'qwen2';
}

/** Qwen3's per-head RMSNorm on queries and keys before RoPE. */
export function hasQkNorm(spec: ModelSpec): boolean {
  return spec.architecture === 'qwen3';
}

export function validateSpec(spec: ModelSpec): void {
  const fail = (m: string) => {
    throw new Error(`invalid ModelSpec: ${m}`);
  };
  if (spec.numHeads % spec.numKvHeads !== 0) fail('numHeads must be a multiple of numKvHeads');
  if (spec.headDim % 2 !== 0) fail('headDim must be even');
  if (spec.attention.startsWith('gqa') && spec.headDim % 16 !== 0)
    fail('GroupQueryAttention with do_rotary on CPU needs headDim % 16 == 0 (ORT 1.30)');
  if (spec.attention === 'mha' && spec.numHeads !== spec.numKvHeads) fail('MultiHeadAttention needs numHeads == numKvHeads');
  if (spec.gqaPositionIds !== undefined && spec.gqaPositionIds !== 'wired' && spec.attention !== 'gqa' && spec.attention !== 'gqa-packed')
    fail('gqaPositionIds applies to GroupQueryAttention rotating inside the op (gqa, gqa-packed)');
  for (const k of ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'maxPositions'] as const)
    if (!Number.isInteger(spec[k]) || spec[k] <= 0) fail(`${k} must be a positive integer`);
}

/** RoPE tables (rotate_half convention), computed in float64 and rounded to float32: [maxPositions, headDim/2]. */
export function ropeHalfTables(spec: Pick<ModelSpec, 'headDim' | 'ropeTheta' | 'maxPositions'>): {
  cos: Float32Array;
  sin: Float32Array;
} {
  const half = spec.headDim / 2;
  const cos = new Float32Array(spec.maxPositions * half);
  const sin = new Float32Array(spec.maxPositions * half);
  for (let p = 0; p < spec.maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / spec.ropeTheta ** ((2 * i) / spec.headDim);
      const a = p * invFreq;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** Full-width tables as HF caches them (cat(freqs, freqs)): [maxPositions, headDim]. */
export function ropeFullTables(spec: Pick<ModelSpec, 'headDim' | 'ropeTheta' | 'maxPositions'>): {
  cos: Float32Array;
  sin: Float32Array;
} {
  const { cos, sin } = ropeHalfTables(spec);
  const d = spec.headDim;
  const half = d / 2;
  const fc = new Float32Array(spec.maxPositions * d);
  const fs = new Float32Array(spec.maxPositions * d);
  for (let p = 0; p < spec.maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      fc[p * d + i] = fc[p * d + half + i] = cos[p * half + i];
      fs[p * d + i] = fs[p * d + half + i] = sin[p * half + i];
    }
  }
  return { cos: fc, sin: fs };
}
