import { InvalidArgumentError } from './errors.js';

/**
 * How much a method may keep.
 * - `{ tokens: C }`: entries kept per (layer, KV head), window included (the paper's `max_capacity_prompt`),
 *   or prompt tokens kept for prompt compressors.
 * - `{ keepRatio: r }`: keep `round(r · n)` of an n-token prompt, r in (0, 1].
 * - `{ compressionRatio: c }`: kvpress convention, the fraction **removed**: keep `round((1 − c) · n)`, c in [0, 1).
 */
export type Budget = { tokens: number } | { keepRatio: number } | { compressionRatio: number };

/** Resolves a budget to a token count for a prompt of `promptLength` tokens (not clipped to the prompt). */
export function resolveBudget(budget: Budget, promptLength: number): number {
  if ('tokens' in budget) {
    if (!Number.isInteger(budget.tokens) || budget.tokens < 1) {
      throw new InvalidArgumentError({ argument: 'budget.tokens', value: budget.tokens, expected: 'an integer ≥ 1' });
    }
    return budget.tokens;
  }
  if ('keepRatio' in budget) {
    const r = budget.keepRatio;
    if (!(r > 0 && r <= 1)) throw new InvalidArgumentError({ argument: 'budget.keepRatio', value: r, expected: 'a number in (0, 1]' });
    return Math.max(1, Math.round(r * promptLength));
  }
  if ('compressionRatio' in budget) {
    const c = budget.compressionRatio;
    if (!(c >= 0 && c < 1)) {
      throw new InvalidArgumentError({ argument: 'budget.compressionRatio', value: c, expected: 'a number in [0, 1)' });
    }
    return Math.max(1, Math.round((1 - c) * promptLength));
  }
  throw new InvalidArgumentError({
    argument: 'budget',
    value: budget,
    expected: '{ tokens } | { keepRatio } | { compressionRatio }',
  });
}
