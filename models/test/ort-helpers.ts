import * as ort from 'onnxruntime-node';
import type { KvEntry } from '../src/reference-forward.js';
import type { ModelSpec } from '../src/spec.js';

export async function createSession(modelPath: string | Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(modelPath as any, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
}

export interface OrtStepResult {
  logits: Float32Array;
  present: KvEntry[];
}

/** One batch-1 ORT call with explicit positions; past entries are [Hkv, P, d]. */
export async function ortStep(
  session: ort.InferenceSession,
  spec: ModelSpec,
  inputIds: number[],
  positionIds: number[],
  past: KvEntry[] | null,
  attentionMask?: number[],
): Promise<OrtStepResult> {
  const S = inputIds.length;
  const { numKvHeads: Hkv, headDim: d } = spec;
  const P = past ? past[0].key.length / (Hkv * d) : 0;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, S]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from((attentionMask ?? new Array(P + S).fill(1)).map(BigInt)), [1, P + S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(positionIds.map(BigInt)), [1, S]),
  };
  for (let i = 0; i < spec.numLayers; i++) {
    feeds[`past_key_values.${i}.key`] = new ort.Tensor('float32', past ? past[i].key : new Float32Array(0), [1, Hkv, P, d]);
    feeds[`past_key_values.${i}.value`] = new ort.Tensor('float32', past ? past[i].value : new Float32Array(0), [1, Hkv, P, d]);
  }
  const out = await session.run(feeds);
  const present: KvEntry[] = [];
  for (let i = 0; i < spec.numLayers; i++) {
    present.push({ key: out[`present.${i}.key`].data as Float32Array, value: out[`present.${i}.value`].data as Float32Array });
  }
  return { logits: out.logits.data as Float32Array, present };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmaxRows(logits: Float32Array, vocab: number): number[] {
  const rows = logits.length / vocab;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < vocab; j++) if (logits[r * vocab + j] > logits[r * vocab + best]) best = j;
    out.push(best);
  }
  return out;
}
