import { normalTensor } from './rng.js';
import { hasQkNorm, hasQkvBias, type ModelSpec } from './spec.js';

export interface WeightTensor {
  data: Float32Array;
  dims: number[];
}

/** HF parameter names -> tensors (linear weights in HF [out, in] layout). */
export type Weights = Map<string, WeightTensor>;

/**
 * Deterministic seeded weights. Linear / embedding weights ~ N(0, weightScale), norm weights ~ N(1, 0.1),
 * biases ~ N(0, weightScale). Rows of the output embedding for `dampedTokenIds` are scaled by 0.1 so that a
 * random model rarely emits special tokens.
 */
export function generateWeights(spec: ModelSpec, dampedTokenIds: number[] = []): Weights {
  const w: Weights = new Map();
  const { hiddenSize: H, vocabSize: V, numHeads: Hq, numKvHeads: Hkv, headDim: d, intermediateSize: I } = spec;
  const s = spec.weightScale;
  const add = (name: string, dims: number[], std: number, mean = 0) => {
    const n = dims.reduce((a, b) => a * b, 1);
    w.set(name, { data: normalTensor(spec.seed, name, n, std, mean), dims });
  };
  add('model.embed_tokens.weight', [V, H], s);
  for (let i = 0; i < spec.numLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [H], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [Hq * d, H], s);
    add(`${p}.self_attn.k_proj.weight`, [Hkv * d, H], s);
    add(`${p}.self_attn.v_proj.weight`, [Hkv * d, H], s);
    if (hasQkvBias(spec)) {
      add(`${p}.self_attn.q_proj.bias`, [Hq * d], s);
      add(`${p}.self_attn.k_proj.bias`, [Hkv * d], s);
      add(`${p}.self_attn.v_proj.bias`, [Hkv * d], s);
    }
    if (hasQkNorm(spec)) {
      add(`${p}.self_attn.q_norm.weight`, [d], 0.1, 1);
      add(`${p}.self_attn.k_norm.weight`, [d], 0.1, 1);
    }
    add(`${p}.self_attn.o_proj.weight`, [H, Hq * d], s);
    add(`${p}.post_attention_layernorm.weight`, [H], 0.1, 1);
    add(`${p}.mlp.gate_proj.weight`, [I, H], s);
    add(`${p}.mlp.up_proj.weight`, [I, H], s);
    add(`${p}.mlp.down_proj.weight`, [H, I], s);
  }
  add('model.norm.weight', [H], 0.1, 1);
  if (!spec.tieWordEmbeddings) add('lm_head.weight', [V, H], s);
  const out = w.get(spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight')!;
  for (const id of dampedTokenIds) {
    if (id < 0 || id >= V) continue;
    for (let j = 0; j < H; j++) out.data[id * H + j] *= 0.1;
  }
  return w;
}
