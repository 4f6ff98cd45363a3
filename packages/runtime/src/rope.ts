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

/** Llama RoPE tables (maxPositions, rotaryDim/2): angle = position · theta^(−2i/rotaryDim), computed in float64. */
export function ropeTables(maxPositions: number, rotaryDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = rotaryDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / theta ** ((2 * i) / rotaryDim);
      const angle = p * Math.fround(invFreq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
