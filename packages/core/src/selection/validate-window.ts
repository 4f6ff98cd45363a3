import { InvalidArgumentError } from '../spec/errors.js';
import { requireInteger } from '../validation/arguments.js';

/**
 * Budget and window of a lookahead-window policy: 0 < W < C (ALGORITHMS.md, "Details the paper leaves
 * open"; the budget C counts the window). Returns both as integers; throws `InvalidArgumentError` otherwise.
 */
export function validateBudgetWindow(budget: unknown, windowSize: unknown): { budget: number; windowSize: number } {
  const c = requireInteger('budget', budget, 1);
  const w = requireInteger('windowSize', windowSize, 1);
  if (w >= c) {
    throw new InvalidArgumentError({
      argument: 'windowSize',
      value: w,
      expected: `0 < windowSize < budget (budget = ${c}; the budget counts the window)`,
    });
  }
  return { budget: c, windowSize: w };
}

/** Pooling kernel: an odd integer ≥ 1 ('same' padding k//2 each side; 1 = no pooling). */
export function validateKernel(kernelSize: unknown): number {
  const k = requireInteger('kernelSize', kernelSize, 1);
  if (k % 2 === 0) {
    throw new InvalidArgumentError({ argument: 'kernelSize', value: k, expected: 'an odd integer ≥ 1 (1 = no pooling)' });
  }
  return k;
}

/** Attention head shape: query heads Hq, KV heads Hkv, head dimension d. */
export interface HeadShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/** Hq, Hkv, d positive integers and Hq a multiple of Hkv (grouped-query attention). */
export function validateHeads(shape: HeadShape): void {
  requireInteger('numHeads', shape.numHeads, 1);
  requireInteger('numKvHeads', shape.numKvHeads, 1);
  requireInteger('headDim', shape.headDim, 1);
  if (shape.numHeads % shape.numKvHeads !== 0) {
    throw new InvalidArgumentError({
      argument: 'numHeads',
      value: shape.numHeads,
      expected: `a multiple of numKvHeads (${shape.numKvHeads})`,
    });
  }
}

/** The window must leave at least one query position before it: W < n. */
export function validateWindowInPrompt(windowSize: number, promptLength: number): void {
  if (windowSize >= promptLength) {
    throw new InvalidArgumentError({
      argument: 'windowSize',
      value: windowSize,
      expected: `< promptLength (${promptLength}); a prompt with n ≤ budget needs no selection`,
    });
  }
}

/**
 * Per-layer tensors whose lengths are not read (e.g. a prompt with n ≤ C): at least one layer, queries and
 * keys with equal layer counts. Returns the number of layers.
 */
export function validateLayerCount(queries: readonly Float32Array[], keys: readonly Float32Array[]): number {
  if (!Array.isArray(queries) || queries.length < 1) {
    throw new InvalidArgumentError({ argument: 'queries', value: queries, expected: 'an array with one Float32Array per layer' });
  }
  if (!Array.isArray(keys) || keys.length !== queries.length) {
    throw new InvalidArgumentError({
      argument: 'keys.length',
      value: Array.isArray(keys) ? keys.length : keys,
      expected: `one Float32Array per layer (${queries.length}, as queries)`,
    });
  }
  return queries.length;
}

/**
 * Per-layer tensors: at least one layer, equal layer counts, and each layer's queries / keys a Float32Array of
 * exactly `expected.queries` / `expected.keys` values (`queriesShape` / `keysShape` describe them in errors).
 * Returns the number of layers.
 */
export function validateLayerTensors(
  queries: readonly Float32Array[],
  keys: readonly Float32Array[],
  expected: { queries: number; keys: number; queriesShape: string; keysShape: string },
): number {
  validateLayerCount(queries, keys);
  for (let l = 0; l < queries.length; l++) {
    if (!(queries[l] instanceof Float32Array) || queries[l].length !== expected.queries) {
      throw new InvalidArgumentError({
        argument: `queries[${l}].length`,
        value: queries[l] instanceof Float32Array ? queries[l].length : queries[l],
        expected: `a Float32Array of ${expected.queriesShape} = ${expected.queries} values`,
      });
    }
    if (!(keys[l] instanceof Float32Array) || keys[l].length !== expected.keys) {
      throw new InvalidArgumentError({
        argument: `keys[${l}].length`,
        value: keys[l] instanceof Float32Array ? keys[l].length : keys[l],
        expected: `a Float32Array of ${expected.keysShape} = ${expected.keys} values`,
      });
    }
  }
  return queries.length;
}
