import { type Budget, InvalidArgumentError, type PolicyConfig, resolveBudget } from '@draft/core';
import { validateBudgetWindow } from './validate.js';

/** A policy's own budget: C as a number, or any core `Budget` (ratios resolve per prompt). */
export type BudgetOption = number | Budget;

/**
 * Validates a budget option against the window at construction (ratios: only their range) and normalises it
 * to a core `Budget` (a number C becomes `{ tokens: C }`), the form core's pipeline reads from a policy's
 * `budget` to decide n ≤ C and to fill `SelectionContextV1.budget`.
 */
export function validateBudgetOption(budget: BudgetOption | undefined, windowSize: number): Budget | undefined {
  if (budget === undefined) return undefined;
  if (typeof budget === 'number') return { tokens: validateBudgetWindow(budget, windowSize).budget };
  if (typeof budget === 'object' && budget !== null && 'tokens' in budget) {
    validateBudgetWindow(resolveBudget(budget, 1), windowSize);
    return { tokens: budget.tokens };
  }
  resolveBudget(budget, 1); // throws on a malformed budget or an out-of-range ratio
  return budget;
}

/** C for a prompt of n tokens from a budget option, checked against the window. */
export function budgetFor(budget: BudgetOption, promptLength: number, windowSize: number): number {
  const c = typeof budget === 'number' ? budget : resolveBudget(budget, promptLength);
  return validateBudgetWindow(c, windowSize).budget;
}

/**
 * Options from a serialisable config: drops `type`, renames aliases (e.g. core's `fromReferenceConfig` emits
 * `reduceOp`), and rejects unknown keys so a typo never silently falls back to a default.
 */
export function optionsFromConfig<T>(config: PolicyConfig, known: readonly string[], aliases: Record<string, string> = {}): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'type' || value === undefined) continue;
    const name = aliases[key] ?? key;
    if (!known.includes(name)) {
      throw new InvalidArgumentError({ argument: `config.${key}`, value, expected: `one of the '${config.type}' options: ${known.join(', ')}` });
    }
    out[name] = value;
  }
  return out as T;
}
