import { createPolicy, InvalidArgumentError, type PolicyConfig } from '@draft/core';
import type { MethodPlan, MethodSettings } from './methods.js';

/** What a budget and window are checked against, and how the caller names them. */
export interface MethodSettingsLimits {
  /** Largest accepted budget and window: the target's maximum positions. Absent (a remote target): no upper bound. */
  maxBudget?: number;
  /**
   * The names errors give the two settings, as the caller's user wrote them: the CLI's flags
   * (`{ budget: '--budget', windowSize: '--window' }`) or the server's request fields
   * (`{ budget: 'draft.budget', windowSize: 'draft.window' }`). Default `budget` / `windowSize`.
   */
  names?: { budget: string; windowSize: string };
}

/**
 * Checks a planned method's budget and window before any model runs, the same way for every caller (the CLI's
 * `generate`, the server's requests): the budget and the window are integers in [1, maxBudget]; and for a KV
 * method, whose budget C counts its window W, 0 < W < C (ALGORITHMS.md) with W the `--window` given or else the
 * method's own default (SnapKV's 32, …). The pipeline would only find a W ≥ C once the prompt is longer than C,
 * so a short prompt used to run and a long one to fail with the same flags. Throws InvalidArgumentError naming
 * the setting (by `limits.names`), the value and the valid range.
 */
export function validateMethodSettings(plan: MethodPlan, settings: MethodSettings, limits: MethodSettingsLimits = {}): void {
  const names = limits.names ?? { budget: 'budget', windowSize: 'windowSize' };
  const max = limits.maxBudget;
  const range = max === undefined ? 'an integer ≥ 1' : `an integer in [1, ${max}] (the target's maximum positions)`;
  const checkInteger = (name: string, value: number | undefined) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < 1 || (max !== undefined && value > max)) {
      throw new InvalidArgumentError({ argument: name, value, expected: range });
    }
  };
  checkInteger(names.budget, settings.budget);
  checkInteger(names.windowSize, settings.windowSize);
  if (plan.budgetKind !== 'kv' || settings.budget === undefined) return;
  const window = policyWindow(plan.stages.cachePolicy);
  if (window === undefined || window < settings.budget) return;
  if (settings.windowSize !== undefined || plan.methodOptions?.windowSize !== undefined) {
    throw new InvalidArgumentError({
      argument: names.windowSize,
      value: window,
      expected: `an integer below the budget (${settings.budget}): '${plan.method}' keeps its window inside the budget`,
    });
  }
  throw new InvalidArgumentError({
    argument: names.budget,
    value: settings.budget,
    expected: `an integer above ${window}, the default window of '${plan.method}' (the budget counts the window; set a smaller ${names.windowSize})`,
  });
}

/** The window W of a planned cache policy (a config or a built policy), or undefined when it has none. */
function policyWindow(stage: MethodPlan['stages']['cachePolicy']): number | undefined {
  if (stage === undefined) return undefined;
  const hasConfig = (s: unknown): s is { toConfig(): PolicyConfig } => typeof (s as { toConfig?: unknown }).toConfig === 'function';
  const config = hasConfig(stage) ? stage.toConfig() : createPolicy(stage as PolicyConfig, { kind: 'cache' }).toConfig();
  return typeof config.windowSize === 'number' ? config.windowSize : undefined;
}
