import { ModelLayoutError } from '@draft/core';
import type { RopeParameters } from './rope-scaling.js';

/** How one layer attends: to every earlier token, or to the last `slidingWindow` tokens only. */
export type LayerAttentionType = 'full_attention' | 'sliding_attention';

/**
 * What a config.json says about a decoder, normalised across architectures. Everything here is read from
 * config.json only; the graph may disagree (see `checkConfigAgainstGraph`).
 */
export interface ArchitectureConfig {
  /** config.json `model_type` (for gemma3, of its `text_config`). */
  modelType: string;
  /** Whether `modelType` is one this table knows; unknown ones are read as Llama-compatible, with a warning. */
  known: boolean;
  /** The architecture the config is read as (`llama` for unknown and Llama-compatible names). */
  family: string;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  /** `head_dim` (Gemma: not hidden / heads), else hidden / heads. */
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rope: RopeParameters;
  /** Sliding-window span in tokens, when some layer uses one. */
  slidingWindow?: number;
  /** Per layer, when the layers differ or slide (length numLayers). */
  layerTypes?: LayerAttentionType[];
  /**
   * Multiplier of Q·Kᵀ before the softmax: 1/√headDim, Gemma `query_pre_attn_scalar`^−½, Granite
   * `attention_multiplier`.
   */
  attentionScale: number;
  /** Gemma 2: scores = cap · tanh(scores / cap) before the softmax. */
  attentionLogitSoftcapping?: number;
  /** Gemma 2: logits = cap · tanh(logits / cap). */
  finalLogitSoftcapping?: number;
  /** Embeddings multiplied by this (Gemma √hidden, Granite `embedding_multiplier`). */
  embeddingMultiplier?: number;
  /** Qwen3 / Gemma3: RMSNorm on each query and key head before RoPE. */
  qkNorm: boolean;
  /** Notes for the user (unknown model_type, unsupported RoPE type, scoring differences). */
  warnings: string[];
}

interface ArchitectureTraits {
  family: string;
  qkNorm?: boolean;
  /** How `sliding_window` applies: to every layer, to layers ≥ max_window_layers when use_sliding_window, or by pattern. */
  sliding?: 'all' | 'qwen' | 'gemma2' | 'gemma3';
  defaultTheta?: number;
  gemma?: boolean;
}

/** model_type → traits. Llama-compatible names read like llama. */
const ARCHITECTURES: Readonly<Record<string, ArchitectureTraits>> = Object.freeze({
  llama: { family: 'llama' },
  mistral: { family: 'mistral', sliding: 'all' },
  qwen2: { family: 'qwen2', sliding: 'qwen' },
  qwen3: { family: 'qwen3', qkNorm: true, sliding: 'qwen' },
  phi3: { family: 'phi3', sliding: 'all' },
  gemma: { family: 'gemma', gemma: true },
  gemma2: { family: 'gemma2', sliding: 'gemma2', gemma: true },
  gemma3_text: { family: 'gemma3', qkNorm: true, sliding: 'gemma3', gemma: true, defaultTheta: 1_000_000 },
  granite: { family: 'granite' },
  smollm3: { family: 'smollm3' },
});

/** model_type values read without a warning. */
export const KNOWN_ARCHITECTURES: readonly string[] = Object.freeze([...Object.keys(ARCHITECTURES), 'gemma3']);

type Config = Record<string, unknown>;

function positiveInt(config: Config, key: string, path: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ModelLayoutError(`${path}: '${key}' must be a positive integer (got ${JSON.stringify(value)}).`, { path, details: { key } });
  }
  return value;
}

function optionalNumber(config: Config, key: string, path: string): number | undefined {
  const value = config[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelLayoutError(`${path}: '${key}' must be a number (got ${JSON.stringify(value)}).`, { path, details: { key } });
  }
  return value;
}

function numberList(value: unknown, key: string, path: string): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0)) {
    throw new ModelLayoutError(`${path}: 'rope_scaling.${key}' must be a list of positive numbers.`, { path, details: { key: `rope_scaling.${key}` } });
  }
  return value as number[];
}

/**
 * RoPE of a config: `rope_theta`, `rope_scaling` (or transformers v5 `rope_parameters`), `partial_rotary_factor`.
 * Phi-3 longrope: `original_max_position_embeddings` at the top level sets factor = max / original (as HF does).
 */
function parseRope(config: Config, path: string, headDim: number, maxPositions: number, traits: ArchitectureTraits | undefined, warnings: string[]): RopeParameters {
  const parameters = (config.rope_parameters ?? config.rope_scaling ?? null) as Config | null;
  if (parameters !== null && (typeof parameters !== 'object' || Array.isArray(parameters))) {
    throw new ModelLayoutError(`${path}: 'rope_scaling' must be an object or null.`, { path, details: { key: 'rope_scaling' } });
  }
  const scaling = parameters ?? {};
  const theta = optionalNumber(scaling, 'rope_theta', path) ?? optionalNumber(config, 'rope_theta', path) ?? traits?.defaultTheta ?? 10000;
  const partial = optionalNumber(config, 'partial_rotary_factor', path) ?? 1;
  const rotaryDim = Math.floor(headDim * partial);
  if (!(partial > 0 && partial <= 1) || rotaryDim % 2 !== 0 || rotaryDim < 2) {
    throw new ModelLayoutError(`${path}: partial_rotary_factor ${partial} × head_dim ${headDim} must give an even rotary dimension ≥ 2.`, {
      path,
      details: { key: 'partial_rotary_factor' },
    });
  }
  let type = String(scaling.rope_type ?? scaling.type ?? 'default');
  if (type === 'su') type = 'longrope';
  const rope: RopeParameters = { type, theta, rotaryDim, maxPositions };
  const factor = optionalNumber(scaling, 'factor', path);
  if (factor !== undefined) rope.factor = factor;
  switch (type) {
    case 'default':
      break;
    case 'linear':
    case 'dynamic':
      if (factor === undefined) throw new ModelLayoutError(`${path}: rope_scaling type '${type}' needs 'factor'.`, { path, details: { key: 'rope_scaling.factor' } });
      break;
    case 'llama3':
      rope.lowFreqFactor = optionalNumber(scaling, 'low_freq_factor', path);
      rope.highFreqFactor = optionalNumber(scaling, 'high_freq_factor', path);
      rope.originalMaxPositions = optionalNumber(scaling, 'original_max_position_embeddings', path);
      for (const [key, value] of [
        ['factor', factor],
        ['low_freq_factor', rope.lowFreqFactor],
        ['high_freq_factor', rope.highFreqFactor],
        ['original_max_position_embeddings', rope.originalMaxPositions],
      ] as const) {
        if (value === undefined) throw new ModelLayoutError(`${path}: rope_scaling type 'llama3' needs '${key}'.`, { path, details: { key: `rope_scaling.${key}` } });
      }
      break;
    case 'longrope': {
      rope.shortFactor = numberList(scaling.short_factor, 'short_factor', path);
      rope.longFactor = numberList(scaling.long_factor, 'long_factor', path);
      for (const [key, list] of [
        ['short_factor', rope.shortFactor],
        ['long_factor', rope.longFactor],
      ] as const) {
        if (!list || list.length !== rotaryDim / 2) {
          throw new ModelLayoutError(`${path}: rope_scaling.${key} must list ${rotaryDim / 2} numbers (rotary dim ${rotaryDim} / 2), got ${list?.length ?? 'none'}.`, {
            path,
            details: { key: `rope_scaling.${key}` },
          });
        }
      }
      const topOriginal = optionalNumber(config, 'original_max_position_embeddings', path);
      const original = topOriginal ?? optionalNumber(scaling, 'original_max_position_embeddings', path);
      if (topOriginal !== undefined) rope.factor = maxPositions / topOriginal;
      rope.originalMaxPositions = original ?? maxPositions;
      const attentionFactor = optionalNumber(scaling, 'attention_factor', path);
      if (attentionFactor !== undefined) rope.attentionFactor = attentionFactor;
      break;
    }
    default:
      warnings.push(`${path}: rope type '${type}' is not implemented by the runtime's RoPE tables; only graphs carrying their own cos/sin caches will run.`);
  }
  return rope;
}

/** Per-layer attention types and the window, or undefined when every layer attends fully. */
function parseSliding(config: Config, path: string, numLayers: number, traits: ArchitectureTraits | undefined): { slidingWindow?: number; layerTypes?: LayerAttentionType[] } {
  const window = optionalNumber(config, 'sliding_window', path);
  const explicit = config.layer_types;
  let types: LayerAttentionType[] | undefined;
  if (Array.isArray(explicit)) {
    if (explicit.length !== numLayers || !explicit.every((t) => t === 'full_attention' || t === 'sliding_attention')) {
      throw new ModelLayoutError(`${path}: 'layer_types' must list ${numLayers} of 'full_attention' / 'sliding_attention'.`, { path, details: { key: 'layer_types' } });
    }
    types = explicit as LayerAttentionType[];
  } else if (window !== undefined) {
    const layers = Array.from({ length: numLayers }, (_, i) => i);
    switch (traits?.sliding) {
      case 'all':
        types = layers.map(() => 'sliding_attention');
        break;
      case 'qwen': {
        // Qwen2/3: sliding only with use_sliding_window, on layers ≥ max_window_layers.
        if (config.use_sliding_window !== true) break;
        const from = optionalNumber(config, 'max_window_layers', path) ?? numLayers;
        types = layers.map((i) => (i >= from ? 'sliding_attention' : 'full_attention'));
        break;
      }
      case 'gemma2':
        // Even layers slide (HF Gemma2: layer_types[i] = sliding when (i + 1) % 2).
        types = layers.map((i) => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention'));
        break;
      case 'gemma3': {
        const pattern = optionalNumber(config, 'sliding_window_pattern', path) ?? 6;
        types = layers.map((i) => ((i + 1) % pattern ? 'sliding_attention' : 'full_attention'));
        break;
      }
      default:
        break;
    }
  }
  if (!types?.includes('sliding_attention')) return {};
  if (window === undefined) {
    throw new ModelLayoutError(`${path}: layer_types has sliding layers but 'sliding_window' is not set.`, { path, details: { key: 'sliding_window' } });
  }
  return { slidingWindow: window, layerTypes: types };
}

/**
 * Reads config.json into an `ArchitectureConfig`. Throws ModelLayoutError naming `path` and the key for missing
 * or contradictory fields. An unknown `model_type` is read as Llama-compatible and noted in `warnings` (the graph
 * decides whether it runs: an unrecognisable attention is a GraphPatternError at load).
 */
export function parseArchitecture(rawConfig: Config, path: string): ArchitectureConfig {
  const warnings: string[] = [];
  let config = rawConfig;
  // Gemma 3 multimodal configs nest the decoder under text_config.
  if (rawConfig.model_type === 'gemma3' && typeof rawConfig.text_config === 'object' && rawConfig.text_config !== null) {
    config = { model_type: 'gemma3_text', ...(rawConfig.text_config as Config) };
  }
  const modelType = String(config.model_type ?? '');
  const traits = ARCHITECTURES[modelType];
  if (!traits) {
    warnings.push(
      `${path}: model_type ${JSON.stringify(config.model_type ?? null)} is not one the runtime knows (${KNOWN_ARCHITECTURES.join(', ')}); ` +
        'reading it as Llama-compatible (rope_theta, rope_scaling, head_dim).',
    );
  }
  const hiddenSize = positiveInt(config, 'hidden_size', path);
  const numHeads = positiveInt(config, 'num_attention_heads', path);
  const numKvHeads = positiveInt(config, 'num_key_value_heads', path, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLayoutError(`${path}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads}).`, { path });
  }
  const headDim = positiveInt(config, 'head_dim', path, Math.floor(hiddenSize / numHeads));
  const numLayers = positiveInt(config, 'num_hidden_layers', path);
  const maxPositions = positiveInt(config, 'max_position_embeddings', path);
  const rope = parseRope(config, path, headDim, maxPositions, traits, warnings);
  const sliding = parseSliding(config, path, numLayers, traits);

  let attentionScale = 1 / Math.sqrt(headDim);
  const queryPreAttnScalar = optionalNumber(config, 'query_pre_attn_scalar', path);
  if (queryPreAttnScalar !== undefined) attentionScale = 1 / Math.sqrt(queryPreAttnScalar);
  const attentionMultiplier = optionalNumber(config, 'attention_multiplier', path);
  if (attentionMultiplier !== undefined) attentionScale = attentionMultiplier;

  const attentionLogitSoftcapping = optionalNumber(config, 'attn_logit_softcapping', path);
  const finalLogitSoftcapping = optionalNumber(config, 'final_logit_softcapping', path);
  const embeddingMultiplier = traits?.gemma ? Math.sqrt(hiddenSize) : optionalNumber(config, 'embedding_multiplier', path);
  if (attentionLogitSoftcapping !== undefined) {
    warnings.push(
      `${path}: attn_logit_softcapping ${attentionLogitSoftcapping}: the model soft-caps attention scores; cache policies score without the cap (rankings can differ for large scores).`,
    );
  }
  if (sliding.slidingWindow !== undefined) {
    warnings.push(
      `${path}: sliding_window ${sliding.slidingWindow}: the graph's mask decides what the sliding layers attend to; cache policies score every cached entry.`,
    );
  }
  return {
    modelType,
    known: traits !== undefined,
    family: traits?.family ?? 'llama',
    numLayers,
    hiddenSize,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: positiveInt(config, 'vocab_size', path),
    maxPositions,
    rope,
    ...sliding,
    attentionScale,
    ...(attentionLogitSoftcapping === undefined ? {} : { attentionLogitSoftcapping }),
    ...(finalLogitSoftcapping === undefined ? {} : { finalLogitSoftcapping }),
    ...(embeddingMultiplier === undefined ? {} : { embeddingMultiplier }),
    qkNorm: traits?.qkNorm ?? false,
    warnings,
  };
}
