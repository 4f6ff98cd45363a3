/**
 * Plain-TS reference forward for the models written by `writeDecoderModel` (batch 1, float64 accumulation).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readInitializers } from './onnx-builder.js';
import { type AttentionVariant, hasQkNorm, hasQkvBias, type ModelSpec, ropeHalfTables } from './spec.js';
import type { Weights } from './weights.js';

export interface ReferenceModel {
  spec: ModelSpec;
  weights: Map<string, Float32Array>;
  /** RoPE tables [maxPositions, headDim/2] */
  ropeCos: Float32Array;
  ropeSin: Float32Array;
}

export interface KvEntry {
  /** [numKvHeads, length, headDim] (post-RoPE keys) */
  key: Float32Array;
  /** [numKvHeads, length, headDim] */
  value: Float32Array;
}

export interface ReferenceForwardInput {
  inputIds: ArrayLike<number>;
  positionIds: ArrayLike<number>;
  /** per layer past cache, all layers with the same length; omitted = empty */
  past?: KvEntry[];
  /** [past + seq] 0/1; omitted = all ones */
  attentionMask?: ArrayLike<number>;
}

export interface ReferenceForwardOutput {
  /** [seq, vocab] */
  logits: Float32Array;
  /** per layer {key, value} [numKvHeads, past + seq, headDim] */
  present: KvEntry[];
  /** per layer post-RoPE queries [numHeads, seq, headDim] */
  queries: Float32Array[];
}

export function createReferenceModel(spec: ModelSpec, weights: Weights | Map<string, Float32Array>): ReferenceModel {
  const w = new Map<string, Float32Array>();
  for (const [k, v] of weights) w.set(k, v instanceof Float32Array ? v : v.data);
  const { cos, sin } = ropeHalfTables(spec);
  return { spec, weights: w, ropeCos: cos, ropeSin: sin };
}

/** Load spec + weights back from a folder written by writeDecoderModel (config.json + onnx/model.onnx). */
export function loadReferenceModel(dir: string): ReferenceModel {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, any>;
  const { tensors, model } = readInitializers(readFileSync(join(dir, 'onnx', 'model.onnx')));
  const usesGqa = (model.graph?.node ?? []).some((n) => n.opType === 'GroupQueryAttention');
  const attention: AttentionVariant = typeof cfg.draft_attention === 'string' ? (cfg.draft_attention as AttentionVariant) : usesGqa ? 'gqa' : 'decomposed';
  const numHeads = cfg.num_attention_heads as number;
  const spec: ModelSpec = {
    architecture: cfg.model_type,
    attention,
    vocabSize: cfg.vocab_size,
    hiddenSize: cfg.hidden_size,
    numLayers: cfg.num_hidden_layers,
    numHeads,
    numKvHeads: cfg.num_key_value_heads ?? numHeads,
    headDim: cfg.head_dim ?? cfg.hidden_size / numHeads,
    intermediateSize: cfg.intermediate_size,
    ropeTheta: cfg.rope_theta ?? 10000,
    rmsNormEps: cfg.rms_norm_eps ?? 1e-6,
    maxPositions: cfg.max_position_embeddings,
    tieWordEmbeddings: cfg.tie_word_embeddings ?? false,
    qkvBias: tensors.has('model.layers.0.self_attn.q_proj.bias'),
    seed: cfg.draft_seed ?? 0,
    weightScale: cfg.draft_weight_scale ?? 0,
  };
  const weights = new Map<string, Float32Array>();
  for (const [name, t] of tensors) if (t.data instanceof Float32Array && /^(model\.|lm_head\.)/.test(name)) weights.set(name, t.data);
  weights.delete('model.rotary_emb.cos_cached');
  weights.delete('model.rotary_emb.sin_cached');
  return createReferenceModel(spec, weights);
}

function getW(model: ReferenceModel, name: string): Float32Array {
  const w = model.weights.get(name);
  if (!w) throw new Error(`reference model: missing weight ${name}`);
  return w;
}

/** y[s, out] = x[s, in] · W[out, in]ᵀ (+ b) */
export function linear(x: Float64Array, S: number, inDim: number, W: Float32Array, outDim: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(S * outDim);
  for (let s = 0; s < S; s++) {
    const xo = s * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let acc = b ? b[o] : 0;
      for (let j = 0; j < inDim; j++) acc += x[xo + j] * W[wo + j];
      y[s * outDim + o] = acc;
    }
  }
  return y;
}

/** RMSNorm over rows of x [S, n]: w * x / sqrt(mean(x²) + eps) */
export function rmsNorm(x: Float64Array, S: number, n: number, w: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(S * n);
  for (let s = 0; s < S; s++) {
    let ss = 0;
    for (let j = 0; j < n; j++) ss += x[s * n + j] * x[s * n + j];
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let j = 0; j < n; j++) y[s * n + j] = w[j] * (x[s * n + j] * inv);
  }
  return y;
}

/** rotate_half RoPE of one head vector v (length d) at position p, using half tables [maxPos, d/2]. */
export function applyRope(v: ArrayLike<number>, p: number, d: number, cos: ArrayLike<number>, sin: ArrayLike<number>): Float64Array {
  const half = d / 2;
  const out = new Float64Array(d);
  for (let i = 0; i < half; i++) {
    const c = cos[p * half + i];
    const s = sin[p * half + i];
    const x1 = v[i];
    const x2 = v[i + half];
    out[i] = x1 * c - x2 * s;
    out[i + half] = x2 * c + x1 * s;
  }
  return out;
}

/** Reference forward for batch 1 with explicit positions and the index-based causal rule. */
export function referenceForward(model: ReferenceModel, input: ReferenceForwardInput): ReferenceForwardOutput {
  const { spec } = model;
  const { hiddenSize: H, numHeads: Hq, numKvHeads: Hkv, headDim: d, intermediateSize: I, vocabSize: V } = spec;
  const S = input.inputIds.length;
  if (input.positionIds.length !== S) throw new Error('positionIds length must equal inputIds length');
  const P = input.past && input.past.length > 0 ? input.past[0].key.length / (Hkv * d) : 0;
  const T = P + S;
  const mask = input.attentionMask;
  if (mask && mask.length !== T) throw new Error(`attentionMask length ${mask.length} != past + seq ${T}`);
  for (let s = 0; s < S; s++) {
    const p = input.positionIds[s];
    if (p < 0 || p >= spec.maxPositions) throw new Error(`position ${p} outside [0, ${spec.maxPositions})`);
  }
  const nRep = Hq / Hkv;
  const scale = 1 / Math.sqrt(d);
  const emb = getW(model, 'model.embed_tokens.weight');
  let x: Float64Array = new Float64Array(S * H);
  for (let s = 0; s < S; s++) {
    const id = input.inputIds[s];
    if (id < 0 || id >= V) throw new Error(`token id ${id} out of range`);
    for (let j = 0; j < H; j++) x[s * H + j] = emb[id * H + j];
  }
  const present: KvEntry[] = [];
  const queries: Float32Array[] = [];
  const bias = hasQkvBias(spec);
  for (let l = 0; l < spec.numLayers; l++) {
    const W = `model.layers.${l}`;
    const h = rmsNorm(x, S, H, getW(model, `${W}.input_layernorm.weight`), spec.rmsNormEps);
    const q = linear(h, S, H, getW(model, `${W}.self_attn.q_proj.weight`), Hq * d, bias ? getW(model, `${W}.self_attn.q_proj.bias`) : undefined);
    const k = linear(h, S, H, getW(model, `${W}.self_attn.k_proj.weight`), Hkv * d, bias ? getW(model, `${W}.self_attn.k_proj.bias`) : undefined);
    const v = linear(h, S, H, getW(model, `${W}.self_attn.v_proj.weight`), Hkv * d, bias ? getW(model, `${W}.self_attn.v_proj.bias`) : undefined);
    if (hasQkNorm(spec)) {
      // Qwen3: RMSNorm of every head vector (rows of d) before RoPE.
      q.set(rmsNorm(q, S * Hq, d, getW(model, `${W}.self_attn.q_norm.weight`), spec.rmsNormEps));
      k.set(rmsNorm(k, S * Hkv, d, getW(model, `${W}.self_attn.k_norm.weight`), spec.rmsNormEps));
    }
    // present K/V [Hkv, T, d]
    const pk = new Float32Array(Hkv * T * d);
    const pv = new Float32Array(Hkv * T * d);
    const past = input.past?.[l];
    for (let hk = 0; hk < Hkv; hk++) {
      if (past) {
        pk.set(past.key.subarray(hk * P * d, (hk + 1) * P * d), hk * T * d);
        pv.set(past.value.subarray(hk * P * d, (hk + 1) * P * d), hk * T * d);
      }
      for (let s = 0; s < S; s++) {
        const kr = applyRope(k.subarray((s * Hkv + hk) * d, (s * Hkv + hk + 1) * d), input.positionIds[s], d, model.ropeCos, model.ropeSin);
        pk.set(kr, (hk * T + P + s) * d);
        pv.set(v.subarray((s * Hkv + hk) * d, (s * Hkv + hk + 1) * d), (hk * T + P + s) * d);
      }
    }
    present.push({ key: pk, value: pv });
    // attention
    const qs = new Float32Array(Hq * S * d);
    const ctx = new Float64Array(S * Hq * d);
    const scores = new Float64Array(T);
    for (let hq = 0; hq < Hq; hq++) {
      const hk = Math.floor(hq / nRep);
      for (let s = 0; s < S; s++) {
        const qr = applyRope(q.subarray((s * Hq + hq) * d, (s * Hq + hq + 1) * d), input.positionIds[s], d, model.ropeCos, model.ropeSin);
        qs.set(qr, (hq * S + s) * d);
        let max = -Infinity;
        for (let t = 0; t < T; t++) {
          const allowed = t <= P + s && (!mask || mask[t] !== 0);
          if (!allowed) {
            scores[t] = -Infinity;
            continue;
          }
          let dot = 0;
          const ko = (hk * T + t) * d;
          for (let j = 0; j < d; j++) dot += qr[j] * pk[ko + j];
          scores[t] = dot * scale;
          if (scores[t] > max) max = scores[t];
        }
        let sum = 0;
        for (let t = 0; t < T; t++) {
          const e = scores[t] === -Infinity ? 0 : Math.exp(scores[t] - max);
          scores[t] = e;
          sum += e;
        }
        const co = (s * Hq + hq) * d;
        for (let t = 0; t < T; t++) {
          const pr = scores[t] / sum;
          if (pr === 0) continue;
          const vo = (hk * T + t) * d;
          for (let j = 0; j < d; j++) ctx[co + j] += pr * pv[vo + j];
        }
      }
    }
    queries.push(qs);
    const o = linear(ctx, S, Hq * d, getW(model, `${W}.self_attn.o_proj.weight`), H);
    for (let i = 0; i < S * H; i++) x[i] += o[i];
    const h2 = rmsNorm(x, S, H, getW(model, `${W}.post_attention_layernorm.weight`), spec.rmsNormEps);
    const gate = linear(h2, S, H, getW(model, `${W}.mlp.gate_proj.weight`), I);
    const up = linear(h2, S, H, getW(model, `${W}.mlp.up_proj.weight`), I);
    for (let i = 0; i < S * I; i++) {
      const gv = gate[i];
      gate[i] = (gv / (1 + Math.exp(-gv))) * up[i];
    }
    const down = linear(gate, S, I, getW(model, `${W}.mlp.down_proj.weight`), H);
    for (let i = 0; i < S * H; i++) x[i] += down[i];
  }
  x = rmsNorm(x, S, H, getW(model, 'model.norm.weight'), spec.rmsNormEps);
  const lm = getW(model, spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  const logits = Float32Array.from(linear(x, S, H, lm, V));
  return { logits, present, queries };
}

/** Keep only cache entries `keep` (indices into the length axis) of every layer: [Hkv, P, d] -> [Hkv, keep.length, d]. */
export function gatherCache(past: KvEntry[], keep: number[], numKvHeads: number, headDim: number): KvEntry[] {
  return past.map(({ key, value }) => {
    const P = key.length / (numKvHeads * headDim);
    const n = keep.length;
    const k2 = new Float32Array(numKvHeads * n * headDim);
    const v2 = new Float32Array(numKvHeads * n * headDim);
    for (let h = 0; h < numKvHeads; h++) {
      keep.forEach((t, i) => {
        if (t < 0 || t >= P) throw new Error(`gatherCache: index ${t} out of range`);
        k2.set(key.subarray((h * P + t) * headDim, (h * P + t + 1) * headDim), (h * n + i) * headDim);
        v2.set(value.subarray((h * P + t) * headDim, (h * P + t + 1) * headDim), (h * n + i) * headDim);
      });
    }
    return { key: k2, value: v2 };
  });
}
