// Small numeric helpers shared by tests that compare logits and caches.

/** Largest |a[i] − b[i]|. */
export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** The scale tolerances are relative to: the largest magnitude, at least 1. */
export const scaleOf = (a: ArrayLike<number>) => Math.max(1, ...Array.from(a, Math.abs));

/** Index of the largest value (the first on ties). */
export const argmax = (a: ArrayLike<number>) => Array.from(a).reduce((best, v, i, all) => (v > all[best] ? i : best), 0);
