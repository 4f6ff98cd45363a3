import { InvalidArgumentError } from '../spec/errors.js';
import type { SelectionContextV1 } from '../spec/policy.js';
import { validateBudgetWindow } from './validate-window.js';
import { allButLast, type ValidatedWindowInput, validateWindowInput, type WindowSettings } from './window-selection.js';

/**
 * The budget a policy selects with: always the pipeline's `context.budget` (core's pipeline resolves it from
 * its own `budget` option, else the policy's `budget`, else 256, and uses the same C for its n ≤ C check),
 * checked against the policy's window (0 < W < C).
 */
export function contextBudget(context: SelectionContextV1, windowSize: number): number {
  return validateBudgetWindow(context.budget, windowSize).budget;
}

/** No compression: every (layer, KV head) keeps [0, n − 1). */
export function keepAll(context: SelectionContextV1): Int32Array[][] {
  const all = allButLast(context.promptLength);
  return Array.from({ length: context.numLayers }, () => Array.from({ length: context.numKvHeads }, () => all.slice()));
}

/**
 * The last `need` of the `context.queryCount` captured query positions, per head:
 * (numHeads, queryCount, headDim) -> (numHeads, need, headDim). Returns the input when nothing is cut;
 * throws `InvalidArgumentError` when fewer than `need` positions were captured or the length is wrong.
 */
export function trailingQueries(queries: Float32Array, context: SelectionContextV1, need: number): Float32Array {
  const { numHeads: hq, headDim: d, queryCount: have } = context;
  if (have < need) {
    throw new InvalidArgumentError({
      argument: 'context.queryCount',
      value: have,
      expected: `≥ ${need} captured query positions (the policy's queryWindow plus the lookahead)`,
    });
  }
  if (queries.length !== hq * have * d) {
    throw new InvalidArgumentError({
      argument: 'context.queries().length',
      value: queries.length,
      expected: `(numHeads ${hq}, queryCount ${have}, headDim ${d}) = ${hq * have * d} values`,
    });
  }
  if (have === need) return queries;
  const out = new Float32Array(hq * need * d);
  for (let h = 0; h < hq; h++) out.set(queries.subarray((h * have + have - need) * d, (h * have + have) * d), h * need * d);
  return out;
}

/**
 * One layer's validated window input read from a selection context: the last W + 1 + L captured queries
 * (trailingQueries) and all n + L keys of `layer`, with the policy's settings. Shared by every
 * lookahead-window policy's `select` loop.
 */
export async function readWindowLayer(context: SelectionContextV1, layer: number, settings: WindowSettings): Promise<ValidatedWindowInput> {
  const queries = trailingQueries(await context.queries(layer), context, settings.windowSize + 1 + context.lookaheadLength);
  const keys = await context.keys(layer);
  return validateWindowInput({
    queries: [queries],
    keys: [keys],
    numHeads: context.numHeads,
    numKvHeads: context.numKvHeads,
    headDim: context.headDim,
    promptLength: context.promptLength,
    lookaheadLength: context.lookaheadLength,
    ...settings,
  });
}
