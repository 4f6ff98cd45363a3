import { describe, expect, it } from 'vitest';
import { selectAdaKV, selectAdaKVAsync } from './select-adakv.js';
import { selectH2O, selectH2OAsync } from './select-h2o.js';
import { selectLAQ, selectLAQAsync } from './select-laq.js';
import { selectPyramidKV, selectPyramidKVAsync } from './select-pyramidkv.js';
import { selectSnapKV, selectSnapKVAsync } from './select-snapkv.js';
import { selectStreamingLLM } from './select-streamingllm.js';

// n ≤ W < C with the defaults (W = 32, C = 256): n ≤ C means no compression, so every pure select function
// keeps all of [0, n − 1) instead of rejecting W ≥ n (ALGORITHMS.md: "no compression when n ≤ C").
const n = 10;
const hq = 4;
const hkv = 2;
const d = 4;
const layers = 2;
const tensors = (queryCount: number) => ({
  queries: Array.from({ length: layers }, () => new Float32Array(hq * queryCount * d).fill(0.5)),
  keys: Array.from({ length: layers }, () => new Float32Array(hkv * n * d).fill(0.25)),
  numHeads: hq,
  numKvHeads: hkv,
  headDim: d,
  promptLength: n,
});
const windowInput = tensors(n); // the last min(n, W + 1) prompt queries a caller can capture
const h2oInput = tensors(n); // H2O: all n prompt queries
const expected = Array.from({ length: layers }, () => Array.from({ length: hkv }, () => Array.from({ length: n - 1 }, (_, i) => i)));
const asArrays = (kept: Int32Array[][]) => kept.map((heads) => heads.map((h) => Array.from(h)));

describe('pure select functions pass n ≤ W < C through (all of [0, n − 1) kept)', () => {
  const table: [string, () => Int32Array[][] | Promise<Int32Array[][]>][] = [
    ['selectSnapKV', () => selectSnapKV(windowInput)],
    ['selectSnapKVAsync', () => selectSnapKVAsync(windowInput)],
    ['selectPyramidKV', () => selectPyramidKV(windowInput)],
    ['selectPyramidKVAsync', () => selectPyramidKVAsync(windowInput)],
    ['selectAdaKV', () => selectAdaKV(windowInput)],
    ['selectAdaKVAsync', () => selectAdaKVAsync(windowInput)],
    ['selectLAQ', () => selectLAQ({ ...windowInput, lookaheadLength: 0 })],
    ['selectLAQAsync', () => selectLAQAsync({ ...windowInput, lookaheadLength: 0 })],
    ['selectH2O', () => selectH2O(h2oInput)],
    ['selectH2OAsync', () => selectH2OAsync(h2oInput)],
    ['selectStreamingLLM', () => selectStreamingLLM({ promptLength: n, numLayers: layers, numKvHeads: hkv })],
  ];
  it.each(table)('%s', async (_name, run) => {
    expect(asArrays(await run())).toEqual(expected);
  });

  it('still rejects W ≥ C and an explicit window over a prompt that must be compressed', () => {
    expect(() => selectStreamingLLM({ promptLength: n, numLayers: 1, numKvHeads: 1, budget: 8, windowSize: 8 })).toThrow(/windowSize/);
    expect(() => selectSnapKV({ ...windowInput, budget: 4, windowSize: 4 })).toThrow(/windowSize/);
  });
});
