import { getKernelBackend } from '../kernels/registry.js';
import { mergeAscending, range, validateKeptIndices } from '../primitives/kept-indices.js';
import type { CapabilityName } from '../spec/capabilities.js';
import type { KeptIndices } from '../spec/common.js';
import { InvalidArgumentError, PolicyOutputError, throwIfAborted } from '../spec/errors.js';
import type { CachePolicyV1, PolicyConfig, SelectionContextV1 } from '../spec/policy.js';
import { DEFAULT_CACHE_POLICY_REQUIRES } from './define-cache-policy.js';

export interface BaseCachePolicyOptions {
  /** W: the last W candidate prompt entries, positions [n − 1 − W, n − 1), are always kept. 0 < W < C. */
  windowSize: number;
  /** Pooling kernel k over the candidate scores, odd; 1 (default) = no pooling. */
  kernelSize?: number;
  /** Default 'max' (−inf padding k//2); 'avg' pads with zeros and divides by k. */
  poolType?: 'max' | 'avg';
}

/** What the budget allocator sees for one layer. */
export interface AllocationInput {
  layer: number;
  /** Selectable (non-window) candidates per KV head: n − 1 − W. */
  candidates: number;
  /** Default per-head budget C − W. */
  uniformBudget: number;
  /** Pooled candidate scores, (numKvHeads, candidates); higher = keep. */
  scores: Float32Array;
}

/**
 * The "press" pattern (kvpress): subclasses write only `score()` — and optionally `allocate()` — and the base
 * does pooling, top-k, the window and the merge, through `getKernelBackend()` (so a native backend takes
 * over transparently).
 *
 * Per layer l, with n = prompt length, C = context.budget, W = windowSize:
 * - candidates are prompt entries [0, n − 1) (the last prompt token is re-run by the pipeline);
 * - the window [n − 1 − W, n − 1) is always kept;
 * - the first n − 1 − W candidates are pooled (k, same padding) and each KV head keeps its top `allocate()`
 *   (default C − W), ties → lower position;
 * - nothing is dropped when n ≤ C (every candidate kept).
 * The result is validated (PolicyOutputError on a bad subclass).
 */
export abstract class BaseCachePolicy implements CachePolicyV1 {
  readonly specificationVersion = 'v1' as const;
  abstract readonly type: string;
  /** Trailing prompt positions whose queries `score` reads (lookahead positions come on top), or 'all'. */
  abstract readonly queryWindow: number | 'all';
  readonly requires: readonly CapabilityName[] = DEFAULT_CACHE_POLICY_REQUIRES;
  readonly usesLookahead: boolean = false;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly poolType: 'max' | 'avg';

  constructor(options: BaseCachePolicyOptions) {
    const { windowSize, kernelSize = 1, poolType = 'max' } = options;
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new InvalidArgumentError({ argument: 'windowSize', value: windowSize, expected: 'an integer ≥ 1' });
    }
    if (!Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
      throw new InvalidArgumentError({ argument: 'kernelSize', value: kernelSize, expected: 'an odd integer ≥ 1' });
    }
    if (poolType !== 'max' && poolType !== 'avg') throw new InvalidArgumentError({ argument: 'poolType', value: poolType, expected: "'max' | 'avg'" });
    this.windowSize = windowSize;
    this.kernelSize = kernelSize;
    this.poolType = poolType;
  }

  /**
   * Scores of layer `layer`, higher = keep: (numKvHeads, n − 1) over the candidate prompt entries, or
   * (numKvHeads, n + L) over every key the layer holds (e.g. `windowAttentionScores` output as is). Only the
   * first n − 1 − W columns are read.
   */
  abstract score(context: SelectionContextV1, layer: number): Promise<Float32Array> | Float32Array;

  /**
   * Budget allocator hook: entries to keep per KV head besides the window, one count for every head or one
   * per head. Default: C − W for every layer and head. Counts are clipped to [0, candidates]; per-head
   * differences need the `raggedKvHeads` capability (declare it in `requires`).
   */
  allocate(input: AllocationInput, context: SelectionContextV1): number | readonly number[] {
    void context;
    return input.uniformBudget;
  }

  async select(context: SelectionContextV1): Promise<KeptIndices> {
    const { numLayers, numKvHeads: hkv, promptLength: n } = context;
    const kept: Int32Array[][] = [];
    for (let layer = 0; layer < numLayers; layer++) kept.push(await this.selectLayer(context, layer));
    validateKeptIndices(kept, { numLayers, numKvHeads: hkv, limit: n - 1, source: `cache policy '${this.type}'` });
    return kept;
  }

  /** One layer's kept indices (the policy is layer-local: `score` and `allocate` see one layer). */
  async selectLayer(context: SelectionContextV1, layer: number): Promise<Int32Array[]> {
    const { numKvHeads: hkv, promptLength: n, lookaheadLength, budget } = context;
    const limit = n - 1;
    if (n <= budget) return Array.from({ length: hkv }, () => range(0, limit));
    const w = this.windowSize;
    if (w >= budget) throw new InvalidArgumentError({ argument: 'windowSize', value: w, expected: `< budget (${budget})` });
    const m = limit - w; // selectable candidates, ≥ C − W > 0 here
    const window = range(m, limit);
    const backend = getKernelBackend();
    throwIfAborted(context.signal);
    const scores: unknown = await this.score(context, layer);
    // Type first: a plugin's score() may return anything (undefined, a plain array).
    const width = scores instanceof Float32Array ? scores.length / hkv : Number.NaN;
    if (!(scores instanceof Float32Array) || (width !== limit && width !== n + lookaheadLength)) {
      const got = scores instanceof Float32Array ? `${scores.length} entries` : `${describe(scores)} instead of a Float32Array`;
      throw new PolicyOutputError(
        `cache policy '${this.type}' scored ${got} at layer ${layer}; expected numKvHeads × (n − 1) = ${hkv * limit} or numKvHeads × (n + L) = ${hkv * (n + lookaheadLength)} entries.`,
        { details: { layer, length: (scores as { length?: unknown } | null | undefined)?.length } },
      );
    }
    const candidates = new Float32Array(hkv * m);
    for (let h = 0; h < hkv; h++) candidates.set(scores.subarray(h * width, h * width + m), h * m);
    const pooled =
      this.kernelSize > 1 ? await backend.pool1d(candidates, { kernel: this.kernelSize, type: this.poolType, padding: 'same', rows: hkv }) : candidates;
    const k = this.resolveAllocation(this.allocate({ layer, candidates: m, uniformBudget: budget - w, scores: pooled }, context), hkv, m, layer);
    const top = await backend.topKPerRow(pooled, { rows: hkv, length: m, k });
    return top.map((t) => mergeAscending(t, window));
  }

  /** Serialisable options; subclasses add theirs: `{ ...super.toConfig(), beta }`. */
  toConfig(): PolicyConfig {
    return { type: this.type, windowSize: this.windowSize, kernelSize: this.kernelSize, poolType: this.poolType };
  }

  private resolveAllocation(allocation: number | readonly number[], hkv: number, m: number, layer: number): number | number[] {
    const clip = (v: number) => {
      if (!Number.isFinite(v)) throw new PolicyOutputError(`cache policy '${this.type}' allocated ${v} entries at layer ${layer}.`, { details: { layer } });
      return Math.min(m, Math.max(0, Math.round(v)));
    };
    if (typeof allocation === 'number') return clip(allocation);
    if (allocation.length !== hkv) {
      throw new PolicyOutputError(`cache policy '${this.type}' allocated ${allocation.length} heads at layer ${layer}; expected ${hkv}.`, {
        details: { layer },
      });
    }
    return allocation.map(clip);
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'a plain array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}
