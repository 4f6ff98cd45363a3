import { InvalidArgumentError } from '../spec/errors.js';

/**
 * Gathers rows of one layer's keys or values per KV head.
 * @param tensor (numKvHeads, length, headDim)
 * @param kept per KV head, ascending indices into [0, length)
 * @returns per head a (kept[h].length, headDim) block, concatenated head after head
 */
export function gatherRows(
  tensor: Float32Array,
  shape: { numKvHeads: number; length: number; headDim: number },
  kept: readonly Int32Array[],
): Float32Array {
  const { numKvHeads: hkv, length: n, headDim: d } = shape;
  if (tensor.length !== hkv * n * d) {
    throw new InvalidArgumentError({ argument: 'tensor.length', value: tensor.length, expected: `numKvHeads·length·headDim = ${hkv * n * d}` });
  }
  if (kept.length !== hkv) throw new InvalidArgumentError({ argument: 'kept.length', value: kept.length, expected: `${hkv} (numKvHeads)` });
  let total = 0;
  for (const k of kept) total += k.length;
  const out = new Float32Array(total * d);
  let o = 0;
  for (let h = 0; h < hkv; h++) {
    for (const idx of kept[h]) {
      if (idx < 0 || idx >= n) throw new InvalidArgumentError({ argument: 'kept index', value: idx, expected: `0..${n - 1}` });
      const src = (h * n + idx) * d;
      out.set(tensor.subarray(src, src + d), o);
      o += d;
    }
  }
  return out;
}
