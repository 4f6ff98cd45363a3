import { InvalidArgumentError } from '@draft/core';

/** A budget as given: tokens, or a fraction of the prompt length (`1/32`, `0.125`); `text` is how it was written. */
export type BudgetSpec = { kind: 'tokens'; tokens: number; text: string } | { kind: 'fraction'; fraction: number; text: string };

/** A budget option: a token count (an integer ≥ 1), a fraction in (0, 1), or either written as text (`256`, `1/32`, `.125`). */
export type BudgetInput = number | string;

const EXPECTED = 'token counts (256) or fractions of the length (1/32, 0.125)';

/** Reads one budget; anything else is an InvalidArgumentError naming `budgets`. */
export function parseBudget(value: BudgetInput): BudgetSpec {
  const text = String(value);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 1) return { kind: 'tokens', tokens: value, text };
    if (value > 0 && value < 1) return { kind: 'fraction', fraction: value, text };
  } else {
    const ratio = /^(\d+)\/(\d+)$/.exec(text);
    if (ratio) {
      const fraction = Number(ratio[1]) / Number(ratio[2]);
      if (fraction > 0 && Number.isFinite(fraction)) return { kind: 'fraction', fraction, text };
    } else if (/^\d+$/.test(text) && Number(text) >= 1) {
      return { kind: 'tokens', tokens: Number(text), text };
    } else if (/^0?\.\d+$/.test(text) && Number(text) > 0) {
      return { kind: 'fraction', fraction: Number(text), text };
    }
  }
  throw new InvalidArgumentError({ argument: 'budgets', value, expected: EXPECTED });
}

/** Reads a list of budgets (or one comma-separated text: `1/32,256,0.125`). */
export function parseBudgets(values: string | readonly BudgetInput[]): BudgetSpec[] {
  const list = typeof values === 'string' ? values.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : values;
  if (list.length === 0) throw new InvalidArgumentError({ argument: 'budgets', value: values, expected: `at least one budget: ${EXPECTED}` });
  return list.map(parseBudget);
}

/** Tokens for a length: fractions round to the nearest token (at least 1). */
export function resolveBudget(spec: BudgetSpec, length: number): number {
  return spec.kind === 'tokens' ? spec.tokens : Math.max(1, Math.round(spec.fraction * length));
}
