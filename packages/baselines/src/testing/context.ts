// Test-only: a SelectionContextV1 over in-memory per-layer tensors, recording which layers were read.
import type { SelectionContextV1 } from '@draft/core';

export interface ArrayContext extends SelectionContextV1 {
  reads: string[];
}

export function arrayContext(o: {
  queries: readonly Float32Array[];
  keys: readonly Float32Array[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  promptLength: number;
  lookaheadLength: number;
  budget: number;
  queryCount: number;
  signal?: AbortSignal;
}): ArrayContext {
  const reads: string[] = [];
  return {
    numLayers: o.keys.length,
    numHeads: o.numHeads,
    numKvHeads: o.numKvHeads,
    headDim: o.headDim,
    promptLength: o.promptLength,
    lookaheadLength: o.lookaheadLength,
    budget: o.budget,
    queryCount: o.queryCount,
    signal: o.signal,
    reads,
    async queries(layer) {
      reads.push(`q${layer}`);
      return o.queries[layer];
    },
    async keys(layer) {
      reads.push(`k${layer}`);
      return o.keys[layer];
    },
  };
}

/** Deterministic pseudo-random values in [-1, 1) (mulberry32). */
export function randomArray(length: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}
