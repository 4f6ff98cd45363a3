import { RaggedKvStore } from '@draft/core';
import { describe, expect, it } from 'vitest';
import { selectAdaKV } from './select-adakv.js';
import { selectPyramidKV } from './select-pyramidkv.js';
import { selectSnapKV } from './select-snapkv.js';

// Issue 14: "AdaKV's and PyramidKV's KV bytes at budget C equal SnapKV's within 2%" once the cache holds only
// what it keeps. Random scores with a real imbalance between heads (head 0 has large keys: peaked attention;
// the others small keys: diffuse attention), so AdaKV's per-head shares are far from uniform and a padded
// cache would pay for it.
const LAYERS = 6;
const HKV = 4;
const HQ = 8;
const D = 16;
const N = 600;
const C = 64;
const W = 8;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

const rand = lcg(20261205);
const keys = Array.from({ length: LAYERS }, () => Float32Array.from({ length: HKV * N * D }, (_, i) => rand() * (Math.floor(i / (N * D)) === 0 ? 6 : 0.3)));
const values = Array.from({ length: LAYERS }, () => Float32Array.from({ length: HKV * N * D }, rand));
const queries = Array.from({ length: LAYERS }, () => Float32Array.from({ length: HQ * (W + 1) * D }, () => rand() * 2));
const shape = { queries, keys, numHeads: HQ, numKvHeads: HKV, headDim: D, promptLength: N, budget: C, windowSize: W };

function store(kept: Int32Array[][], dtype: 'float32' | 'float16' = 'float32'): RaggedKvStore {
  return RaggedKvStore.fromSelection({
    numKvHeads: HKV,
    headDim: D,
    dtype,
    layers: kept.map((k, l) => ({ keys: keys[l], values: values[l], length: N, kept: k })),
  });
}

/** Bytes of a cache that pads every (layer, KV head) to the largest count (one past length, as ORT exports take). */
function paddedBytes(kept: Int32Array[][], bytesPerElement: number): number {
  let max = 0;
  for (const layer of kept) for (const head of layer) max = Math.max(max, head.length);
  return LAYERS * HKV * max * D * 2 * bytesPerElement;
}

describe('RaggedKvStore bytes: AdaKV and PyramidKV vs SnapKV at the same budget', () => {
  const snap = selectSnapKV(shape);
  const ada = selectAdaKV(shape);
  const pyramid = selectPyramidKV(shape);

  it('SnapKV stores exactly layers × Hkv × C entries × d × (K + V) × 4 bytes', () => {
    expect(store(snap).byteSize()).toBe(LAYERS * HKV * C * D * 2 * 4); // 6·4·64·16·2·4 = 196 608
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`AdaKV and PyramidKV hold within 2% of SnapKV's bytes (${dtype}), where padding would cost far more`, () => {
      const bpe = dtype === 'float16' ? 2 : 4;
      const snapBytes = store(snap, dtype).byteSize();
      const adaStore = store(ada, dtype);
      const pyramidStore = store(pyramid, dtype);
      // the counts really are ragged: across heads (AdaKV) and across layers (PyramidKV)
      const adaCounts = ada.flat().map((h) => h.length);
      expect(Math.max(...adaCounts) - Math.min(...adaCounts)).toBeGreaterThan(C / 4);
      expect(pyramid[0][0].length).toBeGreaterThan(pyramid[LAYERS - 1][0].length);
      for (const s of [adaStore, pyramidStore]) {
        expect(Math.abs(s.byteSize() / snapBytes - 1)).toBeLessThanOrEqual(0.02);
        expect(s.capacityBytes()).toBe(s.byteSize()); // no slack until decode appends
      }
      expect(paddedBytes(ada, bpe) / snapBytes).toBeGreaterThan(1.2);
      expect(paddedBytes(pyramid, bpe) / snapBytes).toBeGreaterThan(1.2);
      // byteSize is the true size: Σ kept × d × 2 × bytes per element
      const adaEntries = adaCounts.reduce((a, b) => a + b, 0);
      expect(adaStore.byteSize()).toBe(adaEntries * D * 2 * bpe);
    });
  }
});
