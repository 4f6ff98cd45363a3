import { describe, expect, it } from 'vitest';
import { referenceKernelBackend } from '../kernels/reference-backend.js';
import { registerKernelBackend } from '../kernels/registry.js';
import type { CapabilityName } from '../spec/capabilities.js';
import { InvalidArgumentError, PolicyOutputError } from '../spec/errors.js';
import type { SelectionContextV1 } from '../spec/policy.js';
import { type AllocationInput, BaseCachePolicy } from './base-cache-policy.js';
import { defineCachePolicy } from './define-cache-policy.js';

function context(over: Partial<SelectionContextV1> = {}): SelectionContextV1 {
  return {
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 2,
    headDim: 1,
    promptLength: 10,
    lookaheadLength: 0,
    budget: 5,
    queryCount: 2,
    queries: async () => new Float32Array(0),
    keys: async () => new Float32Array(0),
    ...over,
  };
}

/** Toy scorer: fixed scores per KV head over the n − 1 = 9 candidates; layer l adds l to head 1's last candidate. */
class ToyPolicy extends BaseCachePolicy {
  readonly type = 'toy';
  readonly queryWindow = 2;
  scored: number[] = [];
  constructor(options: { windowSize: number; kernelSize?: number }, readonly rows = [
    [0, 9, 1, 8, 2, 7, 3, 100, 100],
    [5, 4, 3, 2, 1, 0, 6, 100, 100],
  ]) {
    super(options);
  }
  score(_context: SelectionContextV1, layer: number): Float32Array {
    this.scored.push(layer);
    return new Float32Array(this.rows.flat());
  }
}

describe('BaseCachePolicy', () => {
  it('keeps the window [n−1−W, n−1) and the top C−W candidates of [0, n−1−W)', async () => {
    // n = 10, C = 5, W = 2: window {7, 8}; top 3 of candidates 0..6.
    const kept = await new ToyPolicy({ windowSize: 2 }).select(context());
    expect(kept.map((l) => l.map((h) => Array.from(h)))).toEqual([[[1, 3, 5, 7, 8], [0, 1, 6, 7, 8]]]);
  });

  it('pools candidates only: window scores do not leak into the last candidate', async () => {
    // Max-pool k = 3 (−inf padding) of head 0: [9, 9, 9, 8, 8, 7, 7] → top 3, ties low: 0, 1, 2.
    // Head 1 [5,4,3,2,1,0,6] → [5, 5, 4, 3, 2, 6, 6] → 0, 5, 6.
    const kept = await new ToyPolicy({ windowSize: 2, kernelSize: 3 }).select(context());
    expect(kept.map((l) => l.map((h) => Array.from(h)))).toEqual([[[0, 1, 2, 7, 8], [0, 5, 6, 7, 8]]]);
  });

  it('accepts scores over all n + L keys and reads only the candidate columns', async () => {
    const rows = [
      [0, 9, 1, 8, 2, 7, 3, 100, 100, 100, 100, 100],
      [5, 4, 3, 2, 1, 0, 6, 100, 100, 100, 100, 100],
    ];
    const kept = await new ToyPolicy({ windowSize: 2 }, rows).select(context({ lookaheadLength: 2 }));
    expect(kept.map((l) => l.map((h) => Array.from(h)))).toEqual([[[1, 3, 5, 7, 8], [0, 1, 6, 7, 8]]]);
  });

  it('keeps every candidate when n ≤ C, without scoring', async () => {
    const policy = new ToyPolicy({ windowSize: 2 });
    const kept = await policy.select(context({ budget: 10, numLayers: 2 }));
    expect(kept.map((l) => l.map((h) => Array.from(h)))).toEqual([
      [[0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8]],
      [[0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8]],
    ]);
    expect(policy.scored).toEqual([]);
  });

  it('uses the allocator hook for ragged per-head budgets', async () => {
    class Ragged extends ToyPolicy {
      override readonly requires: readonly CapabilityName[] = ['queryCapture', 'kvSelection', 'raggedKvHeads'];
      override allocate(input: AllocationInput): number[] {
        expect(input).toMatchObject({ layer: 0, candidates: 7, uniformBudget: 3 });
        return [1, 99]; // 99 is clipped to the 7 candidates
      }
    }
    const kept = await new Ragged({ windowSize: 2 }).select(context());
    expect(kept.map((l) => l.map((h) => Array.from(h)))).toEqual([[[1, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8]]]);
  });

  it('goes through the active kernel backend', async () => {
    let topKCalls = 0;
    const undo = registerKernelBackend(
      {
        ...referenceKernelBackend,
        name: 'spy',
        topKPerRow: (s, o) => {
          topKCalls++;
          return referenceKernelBackend.topKPerRow(s, o);
        },
      },
      { priority: 1000 },
    );
    try {
      await new ToyPolicy({ windowSize: 2 }).select(context({ numLayers: 3 }));
    } finally {
      undo();
    }
    expect(topKCalls).toBe(3);
  });

  it('validates options and scorer output', async () => {
    expect(() => new ToyPolicy({ windowSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => new ToyPolicy({ windowSize: 2, kernelSize: 4 })).toThrow(/kernelSize/);
    await expect(new ToyPolicy({ windowSize: 5 }).select(context())).rejects.toThrow(/windowSize/);
    await expect(new ToyPolicy({ windowSize: 2 }, [[1, 2, 3]]).select(context())).rejects.toThrow(PolicyOutputError);
    // A plugin returning no scores at all: a PolicyOutputError naming the policy, not a bare TypeError.
    class Broken extends ToyPolicy {
      override score(): Float32Array {
        return undefined as unknown as Float32Array;
      }
    }
    const broken = new Broken({ windowSize: 2 }).select(context());
    await expect(broken).rejects.toBeInstanceOf(PolicyOutputError);
    await expect(broken).rejects.toThrow(/cache policy 'toy' scored undefined instead of a Float32Array at layer 0/);
    expect(new ToyPolicy({ windowSize: 2, kernelSize: 3 }).toConfig()).toEqual({ type: 'toy', windowSize: 2, kernelSize: 3, poolType: 'max' });
  });

  it('checks the abort signal between layers', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(new ToyPolicy({ windowSize: 2 }).select(context({ signal: controller.signal }))).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('defineCachePolicy', () => {
  it('fills the spec fields and validates select() output', async () => {
    const good = defineCachePolicy({ type: 'first', queryWindow: 0, select: (c) => [[Int32Array.of(0), Int32Array.of(c.promptLength - 2)]] });
    expect(good).toMatchObject({ specificationVersion: 'v1', type: 'first', usesLookahead: false, requires: ['tokenIds', 'queryCapture', 'kvSelection'] });
    expect((await good.select(context())).map((l) => l.map((h) => Array.from(h)))).toEqual([[[0], [8]]]);
    const bad = defineCachePolicy({ type: 'bad', queryWindow: 0, select: (c) => [[Int32Array.of(0), Int32Array.of(c.promptLength - 1)]] });
    await expect(bad.select(context())).rejects.toThrow(/cache policy 'bad' kept index 9 at layer 0, head 1; valid indices are 0..8/);
  });
});
