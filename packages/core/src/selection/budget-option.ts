import { type Budget, resolveBudget } from '../spec/budget.js';
import { validateBudgetWindow } from './validate-window.js';

/** A policy's own budget option: C as a number, or any core `Budget` (ratios resolve per prompt). */
export type BudgetOption = number | Budget;

/**
 * Validates a budget option against the window at construction (ratios: only their range) and normalises it
 * to a core `Budget` (a number C becomes `{ tokens: C }`), the form core's pipeline reads from a policy's
 * `budget` to decide n ≤ C and to fill `SelectionContextV1.budget`. `undefined` stays `undefined`.
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

/** C for a prompt of `promptLength` tokens from a budget option, checked against the window (0 < W < C). */
export function budgetFor(budget: BudgetOption, promptLength: number, windowSize: number): number {
  const c = typeof budget === 'number' ? budget : resolveBudget(budget, promptLength);
  return validateBudgetWindow(c, windowSize).budget;
}
