import { gatherRows } from '../primitives/gather.js';
import { pool1d } from '../primitives/pool1d.js';
import { type KvStorage, type RaggedAttentionOptions, raggedAttention } from '../primitives/ragged-attention.js';
import { topK } from '../primitives/top-k.js';
import { windowAttentionScores } from '../primitives/window-scores.js';
import { InvalidArgumentError } from '../spec/errors.js';
import type { KernelBackendV1, MaybePromise, TopKPerRowOptions } from './kernel-backend.js';

/** Reference per-row top-k over (rows, length) scores: ascending positions per row, ties → lower position. */
export function topKPerRow(scores: Float32Array, options: TopKPerRowOptions): Int32Array[] {
  const { rows, length, k } = options;
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(length) || length < 0 || rows * length !== scores.length) {
    throw new InvalidArgumentError({ argument: 'rows·length', value: { rows, length }, expected: `rows·length = scores.length (${scores.length})` });
  }
  if (typeof k !== 'number' && k.length !== rows) {
    throw new InvalidArgumentError({ argument: 'k.length', value: k.length, expected: `one count per row (${rows})` });
  }
  const out: Int32Array[] = [];
  for (let r = 0; r < rows; r++) {
    out.push(topK(scores, typeof k === 'number' ? k : k[r], { offset: r * length, length }));
  }
  return out;
}

/** The TypeScript reference kernels (the primitives of @draft/core), synchronous, on the JS thread. */
export const referenceKernelBackend: KernelBackendV1 = Object.freeze({
  specificationVersion: 'v1' as const,
  name: 'reference',
  device: 'js',
  windowAttentionScores,
  pool1d,
  topKPerRow,
  gatherRows,
  raggedAttention,
});

/**
 * The backend's ragged attention, or the TS reference when the backend (e.g. a third-party one written before
 * the method existed) has none.
 */
export function raggedAttentionOf(
  backend: KernelBackendV1,
): (queries: Float32Array, keys: KvStorage, values: KvStorage, options: RaggedAttentionOptions) => MaybePromise<Float32Array> {
  const own = backend.raggedAttention;
  return own ? own.bind(backend) : raggedAttention;
}
