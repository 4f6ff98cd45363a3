/**
 * Batched decode: one ORT run for the single-token steps of several sequences whose caches differ in length.
 *
 * Rows are packed into [B, Hkv, L, d] tensors (L = the longest past), right-padded; a per-row attention mask
 * hides the padding and each row keeps its own position ids. The batch's present then stays *resident*: it is
 * the next step's past as it is (no repacking), the mask growing by one real column per step. A row's own
 * cache is copied out of the batch only when something else needs it (a read, a gather, a lone step, a batch
 * of other rows). Rows are grouped by length so short (compressed) caches are not padded to long ones.
 * See docs/decisions/2026-12-05-batched-decode.md.
 */
import type { KvArray } from './kv-pool.js';

export interface BatchShape {
  numKvHeads: number;
  headDim: number;
}

/** The longest of the lengths: the padded past length of every row. */
export function paddedPastLength(lengths: readonly number[]): number {
  let longest = 0;
  for (const length of lengths) if (length > longest) longest = length;
  return longest;
}

/** Row-major [B, L] validity of freshly packed rows: each row's real past, then padding. */
export function packedMask(lengths: readonly number[], pastLength: number): Uint8Array {
  const mask = new Uint8Array(lengths.length * pastLength);
  lengths.forEach((length, b) => {
    mask.fill(1, b * pastLength, b * pastLength + length);
  });
  return mask;
}

/** The mask after one step: every row gets one real column (the new token) at the end. */
export function appendColumn(mask: Uint8Array, rows: number, pastLength: number): Uint8Array {
  const total = pastLength + 1;
  const out = new Uint8Array(rows * total);
  for (let b = 0; b < rows; b++) {
    out.set(mask.subarray(b * pastLength, (b + 1) * pastLength), b * total);
    out[b * total + pastLength] = 1;
  }
  return out;
}

/**
 * Writes every row's past of one layer, (Hkv, length, d) each, into `out` laid out [B, Hkv, L, d]. Padding
 * is zeroed: a pooled buffer holds old values, and a masked score must still be finite before the mask.
 */
export function packLayer(pasts: readonly KvArray[], lengths: readonly number[], pastLength: number, shape: BatchShape, out: KvArray): void {
  const { numKvHeads: hkv, headDim: d } = shape;
  pasts.forEach((past, b) => {
    const len = lengths[b];
    for (let h = 0; h < hkv; h++) {
      const dst = (b * hkv + h) * pastLength * d;
      out.set(past.subarray(h * len * d, (h + 1) * len * d) as never, dst);
      out.fill(0, dst + len * d, dst + pastLength * d);
    }
  });
}

/**
 * Row `b`'s own cache of one layer out of a batch tensor [B, Hkv, T, d]: its valid slots (per `mask`, [B, T])
 * among the first `upTo` columns, in order, as (Hkv, count, d) into `out`.
 */
export function unpackLayerRow(batch: KvArray, mask: Uint8Array, b: number, total: number, shape: BatchShape, out: KvArray, upTo = total): void {
  const { numKvHeads: hkv, headDim: d } = shape;
  let count = 0;
  for (let t = 0; t < upTo; t++) count += mask[b * total + t];
  for (let h = 0; h < hkv; h++) {
    const src = (b * hkv + h) * total * d;
    let dst = h * count * d;
    let t = 0;
    while (t < upTo) {
      if (mask[b * total + t] === 0) {
        t++;
        continue;
      }
      // Copy each run of valid slots at once.
      let end = t;
      while (end < upTo && mask[b * total + end] === 1) end++;
      out.set(batch.subarray(src + t * d, src + end * d) as never, dst);
      dst += (end - t) * d;
      t = end;
    }
  }
}

/**
 * Splits steps (by their past lengths) into groups worth batching: sorted by length, a group closes when the
 * next length would pad its shortest row past twice its size plus 64 slots (a 256-entry compressed cache is
 * not padded to an 8K full one), or when rows × longest would pass `maxTokens` (see MAX_BATCH_TENSOR_BYTES).
 * Returns index groups into `lengths`.
 */
export function groupByLength(lengths: readonly number[], maxTokens = Number.POSITIVE_INFINITY): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  const groups: number[][] = [];
  for (const i of order) {
    const group = groups[groups.length - 1];
    // +1: the step appends a slot to every row.
    if (group && lengths[i] <= 2 * lengths[group[0]] + 64 && (group.length + 1) * (lengths[i] + 1) <= maxTokens) group.push(i);
    else groups.push([i]);
  }
  return groups;
}

/**
 * Largest per-layer batch tensor (rows × padded length × numKvHeads × headDim × element size) a batched step
 * builds. Measured on onnxruntime-node 1.2x CPU (perf model, 2 KV heads × 64): with B > 1, the present's
 * Concat(past, new) costs ~0.3 ms per 4 MiB tensor up to about 3.5 MiB and ~16 ms from 4 MiB on (a B = 8 step
 * at 1K went from ~40 to ~300 ms), while B = 1 copies 4 MiB in 0.3 ms. Larger groups are split; long full
 * caches then step alone, where batching saves little anyway (attention over the cache dominates).
 */
export const MAX_BATCH_TENSOR_BYTES = 3 * 2 ** 20;
