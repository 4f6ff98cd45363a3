import type { SelectionContextV1 } from '../spec/policy.js';

export interface FakeSelectionContextOptions {
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  promptLength: number;
  lookaheadLength?: number;
  budget: number;
  queryCount: number;
  /** Per layer (numHeads, queryCount, headDim); default: seeded pseudo-random values. */
  queries?: Float32Array[];
  /** Per layer (numKvHeads, n + L, headDim); default: seeded pseudo-random values. */
  keys?: Float32Array[];
  seed?: number;
  signal?: AbortSignal;
}

/** A SelectionContextV1 over given (or seeded random) tensors, for policy unit tests. */
export function createFakeSelectionContext(options: FakeSelectionContextOptions): SelectionContextV1 {
  const numLayers = options.numLayers ?? 2;
  const numHeads = options.numHeads ?? 4;
  const numKvHeads = options.numKvHeads ?? 2;
  const headDim = options.headDim ?? 4;
  const lookaheadLength = options.lookaheadLength ?? 0;
  const total = options.promptLength + lookaheadLength;
  const random = mulberry32(options.seed ?? 1);
  const fill = (size: number) => Float32Array.from({ length: size }, () => random() * 2 - 1);
  const queries = options.queries ?? Array.from({ length: numLayers }, () => fill(numHeads * options.queryCount * headDim));
  const keys = options.keys ?? Array.from({ length: numLayers }, () => fill(numKvHeads * total * headDim));
  return {
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    promptLength: options.promptLength,
    lookaheadLength,
    budget: options.budget,
    queryCount: options.queryCount,
    queries: async (layer) => queries[layer].slice(),
    keys: async (layer) => keys[layer].slice(),
    signal: options.signal,
  };
}

/** Small seeded PRNG (Mulberry32), uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
