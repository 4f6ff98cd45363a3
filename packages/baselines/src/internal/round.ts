/** Round-half-to-even of the exact rational numerator / denominator (integers, denominator > 0). */
export function roundHalfEvenRational(numerator: number, denominator: number): number {
  const q = Math.floor(numerator / denominator);
  const twiceRemainder = 2 * (numerator - q * denominator);
  if (twiceRemainder > denominator) return q + 1;
  if (twiceRemainder < denominator) return q;
  return q % 2 === 0 ? q : q + 1;
}

/**
 * A decimal number as an exact fraction A / D with D = 10^k (k ≤ 9), e.g. 0.2 -> 2 / 10, so that blends like
 * count·(1 − α) + α·B round exactly instead of at the mercy of binary floating point.
 */
export function decimalFraction(value: number): { numerator: number; denominator: number } {
  for (let denominator = 1; denominator <= 1e9; denominator *= 10) {
    const scaled = value * denominator;
    const numerator = Math.round(scaled);
    if (Math.abs(scaled - numerator) < 1e-9 * Math.max(1, Math.abs(scaled))) return { numerator, denominator };
  }
  // Not a short decimal: use 1e9 as the grid (error < 1e-9, far below any integer rounding boundary in practice).
  return { numerator: Math.round(value * 1e9), denominator: 1e9 };
}
