import { type RopeParameters, ropeDependsOnLength, ropeInverseFrequencies } from './rope-scaling.js';

/**
 * Applies RoPE in place to one head vector `x` (length headDim) at `position`.
 * `cos`/`sin` are tables (maxPositions, rotaryDim/2); dims ≥ rotaryDim pass through.
 * rotate_half (GPT-NeoX / Llama): pairs (i, i + rotaryDim/2); interleaved (GPT-J): pairs (2i, 2i + 1).
 */
export function applyRopeInPlace(
  x: Float32Array,
  offset: number,
  position: number,
  rotaryDim: number,
  cos: Float32Array,
  sin: Float32Array,
  interleaved: boolean,
): void {
  const half = rotaryDim / 2;
  const row = position * half;
  for (let i = 0; i < half; i++) {
    const c = cos[row + i];
    const s = sin[row + i];
    const a = interleaved ? offset + 2 * i : offset + i;
    const b = interleaved ? a + 1 : offset + i + half;
    const x1 = x[a];
    const x2 = x[b];
    x[a] = x1 * c - x2 * s;
    x[b] = x2 * c + x1 * s;
  }
}

/**
 * RoPE tables (maxPositions, rotaryDim/2): angle = position · f_i with f_i the (float32-rounded) inverse
 * frequencies, computed in float64. `rope` is θ (plain Llama RoPE) or a config's `RopeParameters` (linear,
 * dynamic NTK, llama3, longrope scaling as HF computes them; longrope also scales cos/sin by its attention
 * factor). `seqLen` is the forward's largest position + 1, which dynamic NTK and longrope depend on.
 */
export function ropeTables(
  maxPositions: number,
  rotaryDim: number,
  rope: number | RopeParameters,
  seqLen = 0,
): { cos: Float32Array; sin: Float32Array } {
  const params: RopeParameters = typeof rope === 'number' ? { type: 'default', theta: rope, rotaryDim, maxPositions } : { ...rope, rotaryDim };
  const { invFreq, attentionFactor } = ropeInverseFrequencies(params, seqLen);
  const half = rotaryDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.fround(invFreq[i]);
      cos[p * half + i] = Math.cos(angle) * attentionFactor;
      sin[p * half + i] = Math.sin(angle) * attentionFactor;
    }
  }
  return { cos, sin };
}

/**
 * The runtime's own RoPE tables for a fused graph without cos/sin caches, built lazily per variant: one table
 * for every call, or (dynamic NTK, longrope) one per regime of the call's largest position.
 */
export class RopeTableCache {
  private readonly tables = new Map<string, { cos: Float32Array; sin: Float32Array }>();
  constructor(
    readonly maxPositions: number,
    readonly rotaryDim: number,
    readonly rope: number | RopeParameters,
  ) {
    // Fail at load, not at the first forward, on a RoPE type without tables.
    if (typeof rope !== 'number') ropeInverseFrequencies({ ...rope, rotaryDim }, 0);
  }

  /** Tables for a forward whose largest position + 1 is `seqLen`. */
  at(seqLen: number): { cos: Float32Array; sin: Float32Array } {
    const rope = this.rope;
    let key = 'all';
    if (typeof rope !== 'number' && ropeDependsOnLength(rope)) {
      if (rope.type === 'longrope') key = seqLen > (rope.originalMaxPositions ?? rope.maxPositions) ? 'long' : 'short';
      else key = seqLen > rope.maxPositions ? String(seqLen) : 'base';
    }
    let t = this.tables.get(key);
    if (!t) {
      t = ropeTables(this.maxPositions, this.rotaryDim, rope, seqLen);
      this.tables.set(key, t);
    }
    return t;
  }
}
