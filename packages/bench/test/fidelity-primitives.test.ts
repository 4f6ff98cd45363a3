import { describe, expect, it } from 'vitest';
import { agreement, klDivergence, parseBudgets, resolveBudget } from '../src/index.js';

// Moved from the CLI's bench-commands tests with the harness.
describe('fidelity primitives', () => {
  it('KL and agreement primitives', () => {
    const p = Float32Array.from([Math.log(0.5), Math.log(0.5)]);
    const q = Float32Array.from([Math.log(0.9), Math.log(0.1)]);
    expect(klDivergence(p, p)).toBe(0);
    expect(klDivergence(p, q)).toBeCloseTo(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), 6);
    expect(agreement([1, 2, 3, 4], [1, 2, 9, 4])).toEqual({ prefix: 0.5, overall: 0.75 });
    expect(parseBudgets('1/32,256,0.125').map((b) => resolveBudget(b, 4096))).toEqual([128, 256, 512]);
  });
});
