import { describe, expect, it } from 'vitest';
import { applyRope, createReferenceModel, referenceForward, rmsNorm } from '../src/reference-forward.js';
import type { ModelSpec } from '../src/spec.js';
import { ropeHalfTables } from '../src/spec.js';
import { buildDecoderOnnx } from '../src/writer.js';
import { createSession, maxAbsDiff, ortStep } from './ort-helpers.js';

describe('reference building blocks (hand-computed values)', () => {
  it('RMSNorm: [3, 4] with weight [1, 2] and eps 0', () => {
    // rms = sqrt((9 + 16) / 2) = sqrt(12.5)
    const y = rmsNorm(Float64Array.from([3, 4]), 1, 2, [1, 2], 0);
    expect(y[0]).toBeCloseTo(3 / Math.sqrt(12.5), 12); // 0.848528...
    expect(y[1]).toBeCloseTo((2 * 4) / Math.sqrt(12.5), 12); // 2.262741...
  });

  it('RoPE tables: theta 10000, head dim 4 -> inv_freq [1, 0.01]', () => {
    const { cos, sin } = ropeHalfTables({ headDim: 4, ropeTheta: 10000, maxPositions: 3 });
    // position 2: angles [2, 0.02]
    expect(cos[4]).toBeCloseTo(Math.cos(2), 6);
    expect(sin[5]).toBeCloseTo(Math.sin(0.02), 6);
    expect(cos[0]).toBe(1);
    expect(sin[1]).toBe(0);
  });

  it('RoPE rotate_half: pairs (x_i, x_{i+d/2}) rotate by angle p * inv_freq_i', () => {
    const cos = [1, 1, 0, 1]; // position 1: angle pi/2 for pair 0, 0 for pair 1 (hand-made table)
    const sin = [0, 0, 1, 0];
    // v = [x0, x1, x2, x3]; pair 0 = (x0, x2), pair 1 = (x1, x3)
    const r = applyRope([1, 2, 3, 4], 1, 4, cos, sin);
    // pair 0 rotated by 90°: (1, 3) -> (-3, 1); pair 1 unchanged
    expect(Array.from(r)).toEqual([-3, 2, 1, 4]);
  });
});

/**
 * 1 layer, hidden 2, 1 head of dim 2, Wq = Wk = 0 (uniform attention), Wv = Wo = I, MLP gate = 0 (SiLU(0) = 0, so
 * the MLP adds nothing), all norm weights 1, eps 0, lm_head rows [1,0], [0,1], [1,1], embeddings e0 = [3,4],
 * e1 = [4,-3], e2 = [0, 2].
 */
function handModel() {
  const spec: ModelSpec = {
    architecture: 'llama',
    attention: 'decomposed',
    vocabSize: 3,
    hiddenSize: 2,
    numLayers: 1,
    numHeads: 1,
    numKvHeads: 1,
    headDim: 2,
    intermediateSize: 1,
    ropeTheta: 10000,
    rmsNormEps: 0,
    maxPositions: 8,
    tieWordEmbeddings: false,
    seed: 0,
    weightScale: 0,
  };
  const t = (data: number[], dims: number[]) => ({ data: Float32Array.from(data), dims });
  const weights = new Map([
    ['model.embed_tokens.weight', t([3, 4, 4, -3, 0, 2], [3, 2])],
    ['model.layers.0.input_layernorm.weight', t([1, 1], [2])],
    ['model.layers.0.self_attn.q_proj.weight', t([0, 0, 0, 0], [2, 2])],
    ['model.layers.0.self_attn.k_proj.weight', t([0, 0, 0, 0], [2, 2])],
    ['model.layers.0.self_attn.v_proj.weight', t([1, 0, 0, 1], [2, 2])],
    ['model.layers.0.self_attn.o_proj.weight', t([1, 0, 0, 1], [2, 2])],
    ['model.layers.0.post_attention_layernorm.weight', t([1, 1], [2])],
    ['model.layers.0.mlp.gate_proj.weight', t([0, 0], [1, 2])],
    ['model.layers.0.mlp.up_proj.weight', t([1, 1], [1, 2])],
    ['model.layers.0.mlp.down_proj.weight', t([1, 1], [2, 1])],
    ['model.norm.weight', t([1, 1], [2])],
    ['lm_head.weight', t([1, 0, 0, 1, 1, 1], [3, 2])],
  ]);
  return { spec, weights };
}

describe('reference forward on a hand-set 1-layer model', () => {
  const { spec, weights } = handModel();
  const model = createReferenceModel(spec, weights);
  const s = Math.sqrt(12.5); // rms of [3,4] and of [4,-3]

  it('single token: attention returns v, the residual stream stays parallel to the embedding', () => {
    // n = e0 / s; x = e0 + n = e0 (1 + 1/s); final norm(x) = e0 / s = [3/s, 4/s]
    const { logits, present } = referenceForward(model, { inputIds: [0], positionIds: [0] });
    expect(logits[0]).toBeCloseTo(3 / s, 6);
    expect(logits[1]).toBeCloseTo(4 / s, 6);
    expect(logits[2]).toBeCloseTo(7 / s, 6);
    // value cache = normed input (Wv = I); key cache = 0 (Wk = 0)
    expect(present[0].value[0]).toBeCloseTo(3 / s, 6);
    expect(present[0].value[1]).toBeCloseTo(4 / s, 6);
    expect(Array.from(present[0].key)).toEqual([0, 0]);
  });

  it('two tokens: token 1 averages both values (uniform scores), token 0 sees only itself', () => {
    // token 1: n1 = [4,-3]/s, ctx = (n0 + n1)/2 = [7, 1]/(2s); x1 = [4,-3] + [7,1]/(2s)
    const { logits } = referenceForward(model, { inputIds: [0, 1], positionIds: [0, 1] });
    const x1 = [4 + 7 / (2 * s), -3 + 1 / (2 * s)];
    const r = Math.sqrt((x1[0] ** 2 + x1[1] ** 2) / 2);
    expect(logits[3]).toBeCloseTo(x1[0] / r, 6);
    expect(logits[4]).toBeCloseTo(x1[1] / r, 6);
    expect(logits[5]).toBeCloseTo((x1[0] + x1[1]) / r, 6);
    expect(logits[0]).toBeCloseTo(3 / s, 6); // unaffected by the later token
  });

  it('a masked past entry (attention_mask 0) is ignored', () => {
    const first = referenceForward(model, { inputIds: [2, 0], positionIds: [0, 1] });
    const masked = referenceForward(model, { inputIds: [1], positionIds: [2], past: first.present, attentionMask: [0, 1, 1] });
    const onlyKept = referenceForward(model, {
      inputIds: [1],
      positionIds: [2],
      past: [{ key: first.present[0].key.slice(2), value: first.present[0].value.slice(2) }],
    });
    expect(maxAbsDiff(masked.logits, onlyKept.logits)).toBeLessThan(1e-7);
  });

  it('ONNX Runtime on the same hand-set weights agrees', async () => {
    const session = await createSession(buildDecoderOnnx(spec, weights) as any);
    const ort = await ortStep(session, spec, [0, 1], [0, 1], null);
    const ref = referenceForward(model, { inputIds: [0, 1], positionIds: [0, 1] });
    expect(maxAbsDiff(ort.logits, ref.logits)).toBeLessThan(1e-5);
  });
});
