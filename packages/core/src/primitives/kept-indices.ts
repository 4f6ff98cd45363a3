import type { KeptIndices } from '../spec/common.js';
import { PolicyOutputError } from '../spec/errors.js';

/** Merges two ascending, disjoint-or-overlapping index sets into one ascending set without duplicates. */
export function mergeAscending(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length || j < b.length) {
    const v = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++];
    if (o === 0 || out[o - 1] !== v) out[o++] = v;
  }
  return out.slice(0, o);
}

/** The integers [start, end) as an Int32Array. */
export function range(start: number, end: number): Int32Array {
  const out = new Int32Array(Math.max(0, end - start));
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}

/**
 * Checks a policy's output: numLayers × numKvHeads arrays of ascending, distinct indices in [0, limit).
 * `limit` is one bound for every (layer, head), or one per (layer, head) — e.g. a (ragged) cache's
 * `lengths[layer][kvHead]`. Throws PolicyOutputError naming the first offending (layer, head, index).
 */
export function validateKeptIndices(
  kept: KeptIndices,
  shape: { numLayers: number; numKvHeads: number; limit: number | readonly (readonly number[])[]; source?: string },
): void {
  const who = shape.source ?? 'policy';
  if (!Array.isArray(kept) || kept.length !== shape.numLayers) {
    throw new PolicyOutputError(`${who} returned ${Array.isArray(kept) ? kept.length : typeof kept} layers; expected ${shape.numLayers}.`, {
      details: { expectedLayers: shape.numLayers },
    });
  }
  for (let l = 0; l < kept.length; l++) {
    const heads = kept[l];
    if (!Array.isArray(heads) || heads.length !== shape.numKvHeads) {
      throw new PolicyOutputError(`${who} returned ${heads?.length} heads for layer ${l}; expected ${shape.numKvHeads}.`, {
        details: { layer: l, expectedHeads: shape.numKvHeads },
      });
    }
    for (let h = 0; h < heads.length; h++) {
      const idx = heads[h] as ArrayLike<number> | null | undefined;
      if (idx === null || typeof idx !== 'object' || typeof idx.length !== 'number') {
        throw new PolicyOutputError(`${who} returned no index array at layer ${l}, head ${h}.`, { details: { layer: l, head: h } });
      }
      const limit = typeof shape.limit === 'number' ? shape.limit : (shape.limit[l]?.[h] ?? 0);
      for (let i = 0; i < idx.length; i++) {
        const v = idx[i];
        if (!Number.isInteger(v) || v < 0 || v >= limit) {
          throw new PolicyOutputError(`${who} kept index ${v} at layer ${l}, head ${h}; valid indices are 0..${limit - 1}.`, {
            details: { layer: l, head: h, index: v, limit },
          });
        }
        if (i > 0 && v <= idx[i - 1]) {
          throw new PolicyOutputError(
            `${who} returned ${v === idx[i - 1] ? 'a duplicate' : 'an unsorted'} index ${v} at layer ${l}, head ${h}; indices must ascend strictly.`,
            { details: { layer: l, head: h, index: v } },
          );
        }
      }
    }
  }
}

/** Whether every (layer, head) keeps the same count. */
export function isUniform(kept: KeptIndices): boolean {
  const first = kept[0]?.[0]?.length;
  return kept.every((heads) => heads.every((h) => h.length === first));
}

/** Counts per layer and head, e.g. for `usage.keptKvTokens`. */
export function keptCounts(kept: KeptIndices): number[][] {
  return kept.map((heads) => heads.map((h) => h.length));
}
