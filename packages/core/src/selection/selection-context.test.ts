import { describe, expect, it } from 'vitest';
import { createFakeSelectionContext } from '../testing/fake-selection-context.js';
import { contextBudget, keepAll, trailingQueries } from './selection-context.js';

describe('selection-context helpers', () => {
  const context = createFakeSelectionContext({ numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 1, promptLength: 5, budget: 4, queryCount: 3 });

  it('trailingQueries keeps the last `need` positions of every head', () => {
    const queries = Float32Array.of(0, 1, 2, 3, 4, 5);
    expect(Array.from(trailingQueries(queries, context, 2))).toEqual([1, 2, 4, 5]);
    expect(trailingQueries(queries, context, 3)).toBe(queries);
    expect(() => trailingQueries(queries, context, 4)).toThrow(/captured query positions/);
    expect(() => trailingQueries(new Float32Array(5), context, 2)).toThrow(/context\.queries\(\)\.length/);
  });

  it('keepAll keeps [0, n − 1) per (layer, KV head); contextBudget checks W < C', () => {
    expect(keepAll(context).map((l) => l.map((h) => Array.from(h)))).toEqual([[[0, 1, 2, 3]], [[0, 1, 2, 3]]]);
    expect(contextBudget(context, 3)).toBe(4);
    expect(() => contextBudget(context, 4)).toThrow(/windowSize < budget/);
  });
});
