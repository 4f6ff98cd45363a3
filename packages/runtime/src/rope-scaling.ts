import { ModelLayoutError } from '@draft/core';

/**
 * RoPE frequencies of a config, as Hugging Face transformers computes them (`modeling_rope_utils.py`:
 * `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
 * `_compute_dynamic_ntk_parameters`, `_compute_llama3_parameters`, `_compute_longrope_parameters`).
 *
 * Config names → fields: `rope_theta` → `theta`, `rope_scaling.rope_type` (legacy `type`; `su` = `longrope`) →
 * `type`, `factor`, `low_freq_factor` → `lowFreqFactor`, `high_freq_factor` → `highFreqFactor`,
 * `original_max_position_embeddings` → `originalMaxPositions`, `short_factor` / `long_factor` → `shortFactor` /
 * `longFactor`, `attention_factor` → `attentionFactor`, `partial_rotary_factor` · head_dim → `rotaryDim`.
 */
export interface RopeParameters {
  /** 'default' (no scaling) or one of HF's scaling types; other types are kept by name but cannot build tables. */
  type: 'default' | 'linear' | 'dynamic' | 'llama3' | 'longrope' | (string & {});
  /** Base θ. */
  theta: number;
  /** Rotated dims per head (head_dim · partial_rotary_factor, even); the rest passes through. */
  rotaryDim: number;
  /** `max_position_embeddings`. */
  maxPositions: number;
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** Pre-training context (llama3: `rope_scaling.original_max_position_embeddings`; longrope: the config's). */
  originalMaxPositions?: number;
  /** longrope: per-frequency divisors, rotaryDim/2 each. */
  shortFactor?: readonly number[];
  longFactor?: readonly number[];
  /** longrope: cos/sin multiplier (default √(1 + ln(factor) / ln(originalMaxPositions)), 1 when factor ≤ 1). */
  attentionFactor?: number;
}

/** Types whose tables the runtime can compute. */
export const SUPPORTED_ROPE_TYPES: readonly string[] = Object.freeze(['default', 'linear', 'dynamic', 'llama3', 'longrope']);

/**
 * Inverse frequencies (rotaryDim/2, float64) and the cos/sin multiplier for a forward whose largest position + 1
 * is `seqLen` (HF's `dynamic_rope_update`: dynamic NTK and longrope depend on it; default `maxPositions`
 * is not used for them, see below).
 *
 * - linear: invFreq / factor.
 * - dynamic (NTK): for seqLen > maxPositions, θ' = θ · (factor · seqLen / maxPositions − (factor − 1))^(d / (d − 2));
 *   at or below maxPositions the default frequencies (HF resets to them). The runtime refuses positions
 *   ≥ maxPositions, so in practice dynamic equals default.
 * - llama3: wavelength λ = 2π / f; λ > original / lowFreqFactor → f / factor; λ < original / highFreqFactor → f;
 *   between: (1 − s) · f / factor + s · f with s = (original / λ − low) / (high − low).
 * - longrope: f = 1 / (ext · θ^(2i/d)) with ext = longFactor when seqLen > originalMaxPositions, else shortFactor;
 *   cos and sin are multiplied by the attention factor.
 */
export function ropeInverseFrequencies(rope: RopeParameters, seqLen = 0): { invFreq: Float64Array; attentionFactor: number } {
  const d = rope.rotaryDim;
  const half = d / 2;
  const base = (theta: number) => Float64Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / d));
  const need = (value: number | undefined, key: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ModelLayoutError(`config.json: rope_scaling.${key} must be a number for rope type '${rope.type}' (got ${JSON.stringify(value)}).`, {
        details: { key: `rope_scaling.${key}` },
      });
    }
    return value;
  };
  switch (rope.type) {
    case 'default':
      return { invFreq: base(rope.theta), attentionFactor: 1 };
    case 'linear': {
      const factor = need(rope.factor, 'factor');
      return { invFreq: base(rope.theta).map((f) => f / factor), attentionFactor: 1 };
    }
    case 'dynamic': {
      const factor = need(rope.factor, 'factor');
      if (seqLen <= rope.maxPositions) return { invFreq: base(rope.theta), attentionFactor: 1 };
      const theta = rope.theta * ((factor * seqLen) / rope.maxPositions - (factor - 1)) ** (d / (d - 2));
      return { invFreq: base(theta), attentionFactor: 1 };
    }
    case 'llama3': {
      const factor = need(rope.factor, 'factor');
      const low = need(rope.lowFreqFactor, 'low_freq_factor');
      const high = need(rope.highFreqFactor, 'high_freq_factor');
      const original = need(rope.originalMaxPositions, 'original_max_position_embeddings');
      const lowWavelen = original / low;
      const highWavelen = original / high;
      const invFreq = base(rope.theta).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen > lowWavelen) return f / factor;
        if (wavelen < highWavelen) return f;
        const smooth = (original / wavelen - low) / (high - low);
        return ((1 - smooth) * f) / factor + smooth * f;
      });
      return { invFreq, attentionFactor: 1 };
    }
    case 'longrope': {
      const original = rope.originalMaxPositions ?? rope.maxPositions;
      const ext = seqLen > original ? rope.longFactor : rope.shortFactor;
      const which = seqLen > original ? 'long_factor' : 'short_factor';
      if (!ext || ext.length !== half) {
        throw new ModelLayoutError(`config.json: rope_scaling.${which} must list ${half} numbers (rotary dim ${d} / 2), got ${ext?.length ?? 'none'}.`, {
          details: { key: `rope_scaling.${which}` },
        });
      }
      const factor = rope.factor ?? 1;
      const attentionFactor = rope.attentionFactor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
      return { invFreq: base(rope.theta).map((f, i) => f / ext[i]), attentionFactor };
    }
    default:
      throw new ModelLayoutError(
        `config.json: rope type '${rope.type}' is not supported by the runtime's RoPE tables (supported: ${SUPPORTED_ROPE_TYPES.join(', ')}); ` +
          'only graphs that carry their own cos/sin caches can run.',
        { details: { key: 'rope_scaling' } },
      );
  }
}

/** Whether the frequencies depend on the forward's largest position (dynamic NTK, longrope). */
export function ropeDependsOnLength(rope: RopeParameters): boolean {
  return rope.type === 'dynamic' || rope.type === 'longrope';
}
