import { InvalidArgumentError } from '../spec/errors.js';

/**
 * Indices of the k highest scores in `scores[offset, offset + length)`, ties broken toward the lower position.
 * @returns positions relative to `offset`; ascending when `order` is 'position' (default), or by descending
 *   score (ties: lower position first) when 'score'.
 */
export function topK(
  scores: ArrayLike<number>,
  k: number,
  options: { offset?: number; length?: number; order?: 'position' | 'score' } = {},
): Int32Array {
  const offset = options.offset ?? 0;
  const length = options.length ?? scores.length - offset;
  if (!Number.isInteger(k) || k < 0) throw new InvalidArgumentError({ argument: 'k', value: k, expected: 'an integer ≥ 0' });
  if (offset < 0 || length < 0 || offset + length > scores.length) {
    throw new InvalidArgumentError({
      argument: 'length',
      value: { offset, length },
      expected: `a range within the ${scores.length} scores`,
    });
  }
  const take = Math.min(k, length);
  const order = new Int32Array(length);
  for (let i = 0; i < length; i++) order[i] = i;
  // Sort by score descending, then position ascending. NaN ranks below −inf; NaNs tie among themselves (by
  // position), which keeps the comparator consistent (two NaNs used to compare as "greater" both ways).
  order.sort((a, b) => {
    const sa = scores[offset + a];
    const sb = scores[offset + b];
    const na = Number.isNaN(sa);
    const nb = Number.isNaN(sb);
    if (na || nb) return na && nb ? a - b : na ? 1 : -1;
    if (sa === sb) return a - b;
    return sb > sa ? 1 : -1;
  });
  const picked = order.slice(0, take);
  if ((options.order ?? 'position') === 'position') picked.sort();
  return picked;
}
