import { describe, expect, it } from 'vitest';
import { runSync } from '../kernels/kernel-program.js';
import { referenceKernelBackend } from '../kernels/reference-backend.js';
import { InvalidArgumentError } from '../spec/errors.js';
import { allButLast, selectUniformWindow, validateWindowInput, type WindowScoringInput, withWindow } from './window-selection.js';

// n = 6, W = 1, L = 0: queries at positions 4, 5; candidates [0, 4); window [4]. Scores rise with the key value.
const tiny: WindowScoringInput = {
  queries: [Float32Array.of(1, 1)],
  keys: [Float32Array.of(0, 3, 1, 2, 0, 0)],
  numHeads: 1,
  numKvHeads: 1,
  headDim: 1,
  promptLength: 6,
  lookaheadLength: 0,
  budget: 3,
  windowSize: 1,
  kernelSize: 1,
  poolType: 'max',
  reduce: 'max',
};

describe('lookahead-window selection', () => {
  it('keeps the top C − W candidates by window attention, then the window', () => {
    expect(runSync(selectUniformWindow(validateWindowInput(tiny), referenceKernelBackend)).map((l) => l.map((h) => Array.from(h)))).toEqual([[[1, 3, 4]]]);
  });

  it('keeps [0, n − 1) when n ≤ C', () => {
    const input = validateWindowInput({ ...tiny, budget: 6 });
    expect(runSync(selectUniformWindow(input, referenceKernelBackend)).map((l) => l.map((h) => Array.from(h)))).toEqual([[[0, 1, 2, 3, 4]]]);
  });

  it('keeps [0, n − 1) when n ≤ W < C (no compression, so W ≥ n is not an error)', () => {
    const input = validateWindowInput({ ...tiny, promptLength: 3, budget: 8, windowSize: 4, queries: [new Float32Array(3)], keys: [new Float32Array(3)] });
    expect(input).toMatchObject({ numLayers: 1, candidates: 0 });
    expect(runSync(selectUniformWindow(input, referenceKernelBackend)).map((l) => l.map((h) => Array.from(h)))).toEqual([[[0, 1]]]);
    expect(() => validateWindowInput({ ...tiny, promptLength: 3, budget: 8, windowSize: 4, keys: [] })).toThrow(/keys\.length/);
  });

  it('derives the candidate count m = n − W − 1 and rejects bad shapes', () => {
    expect(validateWindowInput(tiny)).toMatchObject({ numLayers: 1, candidates: 4 });
    expect(() => validateWindowInput({ ...tiny, windowSize: 3 })).toThrow(InvalidArgumentError); // W ≥ C
    expect(() => validateWindowInput({ ...tiny, kernelSize: 2 })).toThrow(/odd integer/);
    expect(() => validateWindowInput({ ...tiny, keys: [new Float32Array(5)] })).toThrow(/keys\[0\]\.length|keys/);
  });

  it('allButLast and withWindow', () => {
    expect(Array.from(allButLast(4))).toEqual([0, 1, 2]);
    expect(Array.from(allButLast(0))).toEqual([]);
    expect(Array.from(withWindow(Int32Array.of(0, 2), 8, 3))).toEqual([0, 2, 4, 5, 6]);
  });
});
