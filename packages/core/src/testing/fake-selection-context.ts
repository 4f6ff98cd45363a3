import type { SelectionContextV1 } from '../spec/policy.js';

export interface FakeSelectionContextOptions {
  /** Default: the number of given `keys` (or `queries`) layers, else 2. */
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  promptLength: number;
  lookaheadLength?: number;
  budget: number;
  queryCount: number;
  /** Per layer (numHeads, queryCount, headDim); default: seeded pseudo-random values. */
  queries?: readonly Float32Array[];
  /** Per layer (numKvHeads, n + L, headDim); default: seeded pseudo-random values. */
  keys?: readonly Float32Array[];
  seed?: number;
  signal?: AbortSignal;
}

/** A `SelectionContextV1` that records which tensors a policy read. */
export interface FakeSelectionContext extends SelectionContextV1 {
  /** Reads in order: `q<layer>` for `queries(layer)`, `k<layer>` for `keys(layer)`. */
  reads: string[];
}

/**
 * A SelectionContextV1 over given (or seeded random) tensors, for policy unit tests. `queries(layer)` and
 * `keys(layer)` return copies (a policy cannot alter the test's tensors) and are recorded in `reads`.
 */
export function createFakeSelectionContext(options: FakeSelectionContextOptions): FakeSelectionContext {
  const numLayers = options.numLayers ?? options.keys?.length ?? options.queries?.length ?? 2;
  const numHeads = options.numHeads ?? 4;
  const numKvHeads = options.numKvHeads ?? 2;
  const headDim = options.headDim ?? 4;
  const lookaheadLength = options.lookaheadLength ?? 0;
  const total = options.promptLength + lookaheadLength;
  const random = mulberry32(options.seed ?? 1);
  const fill = (size: number) => Float32Array.from({ length: size }, () => random() * 2 - 1);
  const queries = options.queries ?? Array.from({ length: numLayers }, () => fill(numHeads * options.queryCount * headDim));
  const keys = options.keys ?? Array.from({ length: numLayers }, () => fill(numKvHeads * total * headDim));
  const reads: string[] = [];
  return {
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    promptLength: options.promptLength,
    lookaheadLength,
    budget: options.budget,
    queryCount: options.queryCount,
    signal: options.signal,
    reads,
    async queries(layer) {
      reads.push(`q${layer}`);
      return queries[layer].slice();
    },
    async keys(layer) {
      reads.push(`k${layer}`);
      return keys[layer].slice();
    },
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

/** `length` deterministic pseudo-random values in [-1, 1) from `mulberry32(seed)`. */
export function randomArray(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length }, () => random() * 2 - 1);
}
