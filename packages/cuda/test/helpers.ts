/** Seeded uniform floats (mulberry32); every test run draws a fresh seed and names it in the test title. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function randomFloats(next: () => number, length: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** Largest |a − b| / max(|b|, floor); NaN in exactly one of them is Infinity. */
export function maxRelError(a: Float32Array, b: Float32Array, floor = 1e-30): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      if (!(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return Number.POSITIVE_INFINITY;
      continue;
    }
    if (a[i] === b[i]) continue;
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  }
  return worst;
}

/** Relative gap between the k-th and (k+1)-th largest score of a row (how safe an exact top-k comparison is). */
export function boundaryGap(row: Float32Array, k: number): number {
  if (k <= 0 || k >= row.length) return Number.POSITIVE_INFINITY;
  const sorted = Float32Array.from(row).sort().reverse();
  const a = sorted[k - 1];
  const b = sorted[k];
  return Math.abs(a - b) / Math.max(Math.abs(a), 1e-30);
}

export const freshSeed = (): number => (Date.now() ^ Math.floor(Math.random() * 2 ** 31)) >>> 0;
