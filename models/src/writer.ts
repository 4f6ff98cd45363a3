/**
 * Writes Llama / Qwen2 / Qwen3 decoder-only ONNX models (seeded random weights) in the HF / transformers.js folder layout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DT, GraphBuilder } from './onnx-builder.js';
import { hasQkNorm, hasQkvBias, type ModelSpec, ropeFullTables, ropeHalfTables, validateSpec } from './spec.js';
import { type BuiltTokenizer, buildTokenizer, SPECIAL_TOKENS } from './tokenizer.js';
import { generateWeights, type Weights } from './weights.js';

export interface WriteDecoderModelOptions {
  /** output folder (created) */
  dir: string;
  spec: ModelSpec;
  /** defaults to buildTokenizer() */
  tokenizer?: BuiltTokenizer;
  /** jinja chat template stored in tokenizer_config.json (none by default) */
  chatTemplate?: string | null;
  /** output-embedding rows scaled by 0.1 (default: all special tokens of the tokenizer) */
  dampedTokenIds?: number[];
  /** extra fields merged into config.json */
  extraConfig?: Record<string, unknown>;
}

export interface WrittenModel {
  dir: string;
  spec: ModelSpec;
  modelPath: string;
  weights: Weights;
  config: Record<string, unknown>;
}

const NEG_INF = -3.4028234663852886e38;

export function hfConfig(spec: ModelSpec, tok: BuiltTokenizer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const isQwen = spec.architecture === 'qwen2' || spec.architecture === 'qwen3';
  const className = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[spec.architecture];
  return {
    architectures: [className],
    model_type: spec.architecture,
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    rms_norm_eps: spec.rmsNormEps,
    max_position_embeddings: spec.maxPositions,
    tie_word_embeddings: spec.tieWordEmbeddings,
    attention_bias: hasQkvBias(spec),
    ...(isQwen ? { use_sliding_window: false, sliding_window: null } : { mlp_bias: false }),
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    pad_token_id: tok.padTokenId,
    torch_dtype: 'float32',
    use_cache: true,
    transformers_version: '4.46.0',
    draft_attention: spec.attention,
    draft_seed: spec.seed,
    draft_weight_scale: spec.weightScale,
    ...extra,
  };
}

/** Build the ONNX graph bytes for `spec` with the given weights. */
export function buildDecoderOnnx(spec: ModelSpec, weights: Weights): Uint8Array {
  validateSpec(spec);
  const g = new GraphBuilder();
  const { numHeads: Hq, numKvHeads: Hkv, headDim: d, hiddenSize: H } = spec;
  const nRep = Hq / Hkv;
  const variant = spec.attention;
  const gqa = variant !== 'decomposed'; // every fused variant: [B, S, H·d] projections into one attention op
  const opset = variant === 'attention23' ? 23 : 17;

  // ---- inputs / outputs
  g.input('input_ids', DT.INT64, ['batch_size', 'sequence_length']);
  g.input('attention_mask', DT.INT64, ['batch_size', 'total_sequence_length']);
  const gqaPositions = spec.gqaPositionIds ?? 'wired';
  if (gqaPositions !== 'absent') g.input('position_ids', DT.INT64, ['batch_size', 'sequence_length']);
  for (let i = 0; i < spec.numLayers; i++) {
    g.input(`past_key_values.${i}.key`, DT.FLOAT, ['batch_size', Hkv, 'past_sequence_length', d]);
    g.input(`past_key_values.${i}.value`, DT.FLOAT, ['batch_size', Hkv, 'past_sequence_length', d]);
  }
  g.output('logits', DT.FLOAT, ['batch_size', 'sequence_length', spec.vocabSize]);
  for (let i = 0; i < spec.numLayers; i++) {
    g.output(`present.${i}.key`, DT.FLOAT, ['batch_size', Hkv, 'total_sequence_length', d]);
    g.output(`present.${i}.value`, DT.FLOAT, ['batch_size', Hkv, 'total_sequence_length', d]);
  }

  // ---- initializers (HF names, HF layouts)
  for (const [name, t] of weights) g.initFloat(name, t.data, t.dims);
  const weightT = (name: string, nodeName: string) => g.op('Transpose', [name], nodeName, { perm: [1, 0] });

  const c = (v: number[]) => g.constInt64(v);
  const scalarI = (v: number) => g.constInt64([v], []);
  const scalarF = (v: number) => g.constFloat([v], []);

  // ---- embeddings
  let hidden = g.op('Gather', ['model.embed_tokens.weight', 'input_ids'], '/model/embed_tokens/Gather', { axis: 0 });

  // ---- model-level attention helpers
  let cosB = '';
  let sinB = '';
  let mask = '';
  let seqlensK = '';
  let totalLen = '';
  if (!gqa) {
    const full = ropeFullTables(spec);
    g.initFloat('model.rotary_emb.cos_cached', full.cos, [spec.maxPositions, d]);
    g.initFloat('model.rotary_emb.sin_cached', full.sin, [spec.maxPositions, d]);
    const cosG = g.op('Gather', ['model.rotary_emb.cos_cached', 'position_ids'], '/model/rotary_emb/Gather_cos', { axis: 0 });
    const sinG = g.op('Gather', ['model.rotary_emb.sin_cached', 'position_ids'], '/model/rotary_emb/Gather_sin', { axis: 0 });
    cosB = g.op('Unsqueeze', [cosG, c([1])], '/model/rotary_emb/Unsqueeze_cos'); // [B,1,S,d]
    sinB = g.op('Unsqueeze', [sinG, c([1])], '/model/rotary_emb/Unsqueeze_sin');
  }
  if (variant === 'decomposed' || variant === 'attention23') {

    // index-based causal mask: new token j may see column t iff attention_mask[t]==1 && t <= past_len + j
    const idsShape = g.op('Shape', ['input_ids'], '/model/mask/Shape_ids');
    const S = g.op('Gather', [idsShape, scalarI(1)], '/model/mask/Gather_S', { axis: 0 });
    const maskShape = g.op('Shape', ['attention_mask'], '/model/mask/Shape_mask');
    const T = g.op('Gather', [maskShape, scalarI(1)], '/model/mask/Gather_T', { axis: 0 });
    const P = g.op('Sub', [T, S], '/model/mask/Sub_past');
    const rS = g.op('Range', [scalarI(0), S, scalarI(1)], '/model/mask/Range_S');
    const rT = g.op('Range', [scalarI(0), T, scalarI(1)], '/model/mask/Range_T');
    const lim = g.op('Add', [g.op('Unsqueeze', [rS, c([1])], '/model/mask/Unsqueeze_S'), P], '/model/mask/Add_limit'); // [S,1]
    const causal = g.op('LessOrEqual', [g.op('Unsqueeze', [rT, c([0])], '/model/mask/Unsqueeze_T'), lim], '/model/mask/LessOrEqual'); // [S,T]
    const pad = g.op('Cast', [g.op('Unsqueeze', ['attention_mask', c([1, 2])], '/model/mask/Unsqueeze_mask')], '/model/mask/Cast_mask', {
      to: DT.BOOL,
    }); // [B,1,1,T]
    const allowed = g.op('And', [causal, pad], '/model/mask/And'); // [B,1,S,T]
    mask = g.op('Where', [allowed, scalarF(0), scalarF(NEG_INF)], '/model/mask/Where'); // [B,1,S,T] float
  }
  if (gqa) {
    const half = ropeHalfTables(spec);
    g.initFloat('cos_cache', half.cos, [spec.maxPositions, d / 2]);
    g.initFloat('sin_cache', half.sin, [spec.maxPositions, d / 2]);
  }
  if (variant.startsWith('gqa')) {
    // seqlens_k = sum(attention_mask) - 1 (int32 [B]); total_sequence_length = attention_mask.shape[1] (int32 scalar)
    const sum = g.op('ReduceSum', ['attention_mask', c([1])], '/model/attn_mask_reformat/ReduceSum', { keepdims: 0 });
    const sub = g.op('Sub', [sum, scalarI(1)], '/model/attn_mask_reformat/Sub');
    seqlensK = g.op('Cast', [sub], '/model/attn_mask_reformat/Cast_seqlens_k', { to: DT.INT32 });
    const shape = g.op('Shape', ['attention_mask'], '/model/attn_mask_reformat/Shape');
    const total = g.op('Gather', [shape, scalarI(1)], '/model/attn_mask_reformat/Gather', { axis: 0 });
    totalLen = g.op('Cast', [total], '/model/attn_mask_reformat/Cast_total_seq_len', { to: DT.INT32 });
  }

  const rmsNorm = (x: string, weight: string, prefix: string) => {
    const pow = g.op('Pow', [x, scalarF(2)], `${prefix}/Pow`);
    // ReduceMean takes its axes as an input from opset 18 on.
    const mean =
      opset >= 18
        ? g.op('ReduceMean', [pow, c([-1])], `${prefix}/ReduceMean`, { keepdims: 1 })
        : g.op('ReduceMean', [pow], `${prefix}/ReduceMean`, { axes: [-1], keepdims: 1 });
    const add = g.op('Add', [mean, scalarF(spec.rmsNormEps)], `${prefix}/Add`);
    const sqrt = g.op('Sqrt', [add], `${prefix}/Sqrt`);
    const inv = g.op('Div', [scalarF(1), sqrt], `${prefix}/Div`);
    const normed = g.op('Mul', [x, inv], `${prefix}/Mul`);
    return g.op('Mul', [weight, normed], `${prefix}/Mul_1`);
  };

  const linear = (x: string, wName: string, prefix: string, bias?: string) => {
    const mm = g.op('MatMul', [x, weightT(wName, `${prefix}/Transpose`)], `${prefix}/MatMul`);
    return bias ? g.op('Add', [bias, mm], `${prefix}/Add`) : mm;
  };

  // rotate_half RoPE on [B, H, S, d]
  const rope = (x: string, prefix: string) => {
    const x1 = g.op('Slice', [x, c([0]), c([d / 2]), c([3])], `${prefix}/Slice`);
    const x2 = g.op('Slice', [x, c([d / 2]), c([d]), c([3])], `${prefix}/Slice_1`);
    const neg = g.op('Neg', [x2], `${prefix}/Neg`);
    const rot = g.op('Concat', [neg, x1], `${prefix}/Concat`, { axis: -1 });
    const a = g.op('Mul', [x, cosB], `${prefix}/Mul`);
    const b = g.op('Mul', [rot, sinB], `${prefix}/Mul_1`);
    return g.op('Add', [a, b], `${prefix}/Add`);
  };

  // Qwen3: RMSNorm over each head's d features ([B, S, heads, d]) before RoPE.
  const toHeads = (x: string, heads: number, prefix: string, norm?: { weight: string; prefix: string }) => {
    let r = g.op('Reshape', [x, c([0, 0, heads, d])], `${prefix}/Reshape`);
    if (norm) r = rmsNorm(r, norm.weight, norm.prefix);
    return g.op('Transpose', [r], `${prefix}/Transpose`, { perm: [0, 2, 1, 3] });
  };
  const normedFlat = (x: string, heads: number, norm: { weight: string; prefix: string }) => {
    const r = g.op('Reshape', [x, c([0, 0, heads, d])], `${norm.prefix}/Reshape`);
    return g.op('Reshape', [rmsNorm(r, norm.weight, norm.prefix), c([0, 0, heads * d])], `${norm.prefix}/Reshape_1`);
  };

  const repeatKv = (x: string, prefix: string) => {
    if (nRep === 1) return x;
    const u = g.op('Unsqueeze', [x, c([2])], `${prefix}/Unsqueeze`); // [B,Hkv,1,T,d]
    const e = g.op('Expand', [u, c([1, 1, nRep, 1, 1])], `${prefix}/Expand`); // [B,Hkv,nRep,T,d]
    return g.op('Reshape', [e, c([0, Hq, -1, d])], `${prefix}/Reshape`); // [B,Hq,T,d]
  };

  for (let i = 0; i < spec.numLayers; i++) {
    const L = `/model/layers.${i}`;
    const W = `model.layers.${i}`;
    const bias = (n: string) => (hasQkvBias(spec) ? `${W}.self_attn.${n}_proj.bias` : undefined);
    const normed = rmsNorm(hidden, `${W}.input_layernorm.weight`, `${L}/input_layernorm`);
    let q = linear(normed, `${W}.self_attn.q_proj.weight`, `${L}/self_attn/q_proj`, bias('q'));
    let k = linear(normed, `${W}.self_attn.k_proj.weight`, `${L}/self_attn/k_proj`, bias('k'));
    const qNorm = hasQkNorm(spec) ? { weight: `${W}.self_attn.q_norm.weight`, prefix: `${L}/self_attn/q_norm` } : undefined;
    const kNorm = hasQkNorm(spec) ? { weight: `${W}.self_attn.k_norm.weight`, prefix: `${L}/self_attn/k_norm` } : undefined;
    const v = linear(normed, `${W}.self_attn.v_proj.weight`, `${L}/self_attn/v_proj`, bias('v'));
    let attnFlat: string;
    if (!gqa) {
      const q4 = toHeads(q, Hq, `${L}/self_attn/q_heads`, qNorm);
      const k4 = toHeads(k, Hkv, `${L}/self_attn/k_heads`, kNorm);
      const v4 = toHeads(v, Hkv, `${L}/self_attn/v_heads`);
      const qRot = rope(q4, `${L}/self_attn/q_rope`); // post-RoPE query [B,Hq,S,d]
      const kRot = rope(k4, `${L}/self_attn/k_rope`);
      g.node('Concat', [`past_key_values.${i}.key`, kRot], `${L}/self_attn/Concat_past_key`, { axis: 2 }, { outputs: [`present.${i}.key`] });
      g.node('Concat', [`past_key_values.${i}.value`, v4], `${L}/self_attn/Concat_past_value`, { axis: 2 }, {
        outputs: [`present.${i}.value`],
      });
      const kAll = repeatKv(`present.${i}.key`, `${L}/self_attn/repeat_kv_key`);
      const vAll = repeatKv(`present.${i}.value`, `${L}/self_attn/repeat_kv_value`);
      const kT = g.op('Transpose', [kAll], `${L}/self_attn/Transpose_key`, { perm: [0, 1, 3, 2] });
      const scores = g.op('MatMul', [qRot, kT], `${L}/self_attn/MatMul`); // Q·Kᵀ [B,Hq,S,T]
      const scaled = g.op('Mul', [scores, scalarF(1 / Math.sqrt(d))], `${L}/self_attn/Mul`);
      const masked = g.op('Add', [scaled, mask], `${L}/self_attn/Add`);
      const probs = g.op('Softmax', [masked], `${L}/self_attn/Softmax`, { axis: -1 });
      const ctx = g.op('MatMul', [probs, vAll], `${L}/self_attn/MatMul_1`); // [B,Hq,S,d]
      const ctxT = g.op('Transpose', [ctx], `${L}/self_attn/Transpose_out`, { perm: [0, 2, 1, 3] });
      attnFlat = g.op('Reshape', [ctxT, c([0, 0, Hq * d])], `${L}/self_attn/Reshape_out`);
    } else if (variant !== 'gqa') {
      attnFlat = fusedAttention(g, spec, { q, k, v, layer: i, prefix: L, mask, seqlensK, totalLen });
    } else {
      if (qNorm && kNorm) {
        q = normedFlat(q, Hq, qNorm);
        k = normedFlat(k, Hkv, kNorm);
      }
      const [out] = g.node(
        'GroupQueryAttention',
        [
          q,
          k,
          v,
          `past_key_values.${i}.key`,
          `past_key_values.${i}.value`,
          seqlensK,
          totalLen,
          'cos_cache',
          'sin_cache',
          ...(gqaPositions === 'wired' ? ['position_ids'] : []),
        ],
        `${L}/self_attn/GroupQueryAttention`,
        {
          num_heads: Hq,
          kv_num_heads: Hkv,
          do_rotary: 1,
          rotary_interleaved: 0,
          scale: { float: 1 / Math.sqrt(d) },
        },
        {
          domain: 'com.microsoft',
          outputs: [`${L}/self_attn/GroupQueryAttention_output_0`, `present.${i}.key`, `present.${i}.value`],
        },
      );
      attnFlat = out;
    }
    const o = linear(attnFlat, `${W}.self_attn.o_proj.weight`, `${L}/self_attn/o_proj`);
    const res1 = g.op('Add', [hidden, o], `${L}/Add`);
    const normed2 = rmsNorm(res1, `${W}.post_attention_layernorm.weight`, `${L}/post_attention_layernorm`);
    const gate = linear(normed2, `${W}.mlp.gate_proj.weight`, `${L}/mlp/gate_proj`);
    const up = linear(normed2, `${W}.mlp.up_proj.weight`, `${L}/mlp/up_proj`);
    const sig = g.op('Sigmoid', [gate], `${L}/mlp/act_fn/Sigmoid`);
    const silu = g.op('Mul', [gate, sig], `${L}/mlp/act_fn/Mul`);
    const prod = g.op('Mul', [silu, up], `${L}/mlp/Mul`);
    const down = linear(prod, `${W}.mlp.down_proj.weight`, `${L}/mlp/down_proj`);
    hidden = g.op('Add', [res1, down], `${L}/Add_1`);
  }
  const finalNorm = rmsNorm(hidden, 'model.norm.weight', '/model/norm');
  const lmW = spec.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  g.node('MatMul', [finalNorm, weightT(lmW, '/lm_head/Transpose')], '/lm_head/MatMul', {}, { outputs: ['logits'] });
  void H;

  const opsets: Record<string, number> = { '': opset };
  if (gqa && variant !== 'attention23') opsets['com.microsoft'] = 1;
  return g.toModel({
    graphName: `${spec.architecture}_${spec.attention}`,
    opsets,
    docString: `@draft/models ${spec.architecture} (${spec.attention} attention), seed ${spec.seed}`,
  });
}

/**
 * One layer's attention for the fused variants other than plain `gqa`; `q`/`k`/`v` are [B, S, H·d] projections.
 * Returns the attention output [B, S, Hq·d]; writes `present.{layer}.key|value`.
 */
function fusedAttention(
  g: GraphBuilder,
  spec: ModelSpec,
  t: { q: string; k: string; v: string; layer: number; prefix: string; mask: string; seqlensK: string; totalLen: string },
): string {
  const { numHeads: Hq, numKvHeads: Hkv, headDim: d } = spec;
  const { layer: i, prefix: L } = t;
  const past = [`past_key_values.${i}.key`, `past_key_values.${i}.value`];
  const outputs = [`${L}/self_attn/attn_output`, `present.${i}.key`, `present.${i}.value`];
  const scale = { float: 1 / Math.sqrt(d) };
  const msRotary = (x: string, heads: number, name: string) =>
    g.node('RotaryEmbedding', [x, 'position_ids', 'cos_cache', 'sin_cache'], `${L}/self_attn/${name}`, { interleaved: 0, num_heads: heads }, { domain: 'com.microsoft' })[0];
  switch (spec.attention) {
    case 'gqa-packed': {
      const qkv = g.op('Concat', [t.q, t.k, t.v], `${L}/self_attn/qkv/Concat`, { axis: -1 });
      const inputs = [qkv, '', '', ...past, t.seqlensK, t.totalLen, 'cos_cache', 'sin_cache', 'position_ids'];
      g.node('GroupQueryAttention', inputs, `${L}/self_attn/GroupQueryAttention`, { num_heads: Hq, kv_num_heads: Hkv, do_rotary: 1, rotary_interleaved: 0, scale }, { domain: 'com.microsoft', outputs });
      break;
    }
    case 'gqa-rotary-node': {
      const q = msRotary(t.q, Hq, 'q_rotary/RotaryEmbedding');
      const k = msRotary(t.k, Hkv, 'k_rotary/RotaryEmbedding');
      g.node('GroupQueryAttention', [q, k, t.v, ...past, t.seqlensK, t.totalLen], `${L}/self_attn/GroupQueryAttention`, { num_heads: Hq, kv_num_heads: Hkv, do_rotary: 0, scale }, { domain: 'com.microsoft', outputs });
      break;
    }
    case 'mha': {
      const q = msRotary(t.q, Hq, 'q_rotary/RotaryEmbedding');
      const k = msRotary(t.k, Hkv, 'k_rotary/RotaryEmbedding');
      g.node('MultiHeadAttention', [q, k, t.v, '', '', '', ...past], `${L}/self_attn/MultiHeadAttention`, { num_heads: Hq, unidirectional: 1, scale }, { domain: 'com.microsoft', outputs });
      break;
    }
    case 'attention23': {
      const onnxRotary = (x: string, heads: number, name: string) =>
        g.node('RotaryEmbedding', [x, 'cos_cache', 'sin_cache', 'position_ids'], `${L}/self_attn/${name}`, { interleaved: 0, num_heads: heads })[0];
      const q = onnxRotary(t.q, Hq, 'q_rotary/RotaryEmbedding');
      const k = onnxRotary(t.k, Hkv, 'k_rotary/RotaryEmbedding');
      g.node('Attention', [q, k, t.v, t.mask, ...past], `${L}/self_attn/Attention`, { q_num_heads: Hq, kv_num_heads: Hkv, is_causal: 0, scale }, { outputs });
      break;
    }
    default:
      throw new Error(`fusedAttention: unexpected variant ${spec.attention}`);
  }
  return outputs[0];
}

/** Write config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx to `dir`. */
export function writeDecoderModel(options: WriteDecoderModelOptions): WrittenModel {
  const { dir, spec } = options;
  validateSpec(spec);
  const tok = options.tokenizer ?? buildTokenizer();
  if (spec.vocabSize < tok.vocabSize) throw new Error(`vocabSize ${spec.vocabSize} < tokenizer size ${tok.vocabSize}`);
  const damped = options.dampedTokenIds ?? SPECIAL_TOKENS.map((t) => tok.specialIds[t]);
  const weights = generateWeights(spec, damped);
  const onnxBytes = buildDecoderOnnx(spec, weights);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const config = hfConfig(spec, tok, options.extraConfig);
  const json = (o: unknown) => `${JSON.stringify(o, null, 2)}\n`;
  writeFileSync(join(dir, 'config.json'), json(config));
  const eos = options.chatTemplate ? [tok.eosTokenId, tok.specialIds['<|end|>']] : tok.eosTokenId;
  writeFileSync(
    join(dir, 'generation_config.json'),
    json({ bos_token_id: tok.bosTokenId, eos_token_id: eos, pad_token_id: tok.padTokenId, do_sample: false, transformers_version: '4.46.0' }),
  );
  writeFileSync(join(dir, 'tokenizer.json'), json(tok.tokenizerJson));
  const tokConfig: Record<string, unknown> = { ...tok.tokenizerConfig, model_max_length: spec.maxPositions };
  if (options.chatTemplate) tokConfig.chat_template = options.chatTemplate;
  writeFileSync(join(dir, 'tokenizer_config.json'), json(tokConfig));
  writeFileSync(
    join(dir, 'special_tokens_map.json'),
    json({
      bos_token: '<|bos|>',
      eos_token: '<|eos|>',
      pad_token: '<|pad|>',
      additional_special_tokens: ['<|user|>', '<|assistant|>', '<|end|>'],
    }),
  );
  const modelPath = join(dir, 'onnx', 'model.onnx');
  writeFileSync(modelPath, onnxBytes);
  return { dir, spec, modelPath, weights, config };
}
