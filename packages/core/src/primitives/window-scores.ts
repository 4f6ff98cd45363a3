import { InvalidArgumentError } from '../spec/errors.js';

/** Shapes of one layer's window queries and keys (batch 1). */
export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** w: window queries, the last w positions of the N keys. */
  queryCount: number;
  /** N: keys. */
  keyCount: number;
}

export type ReduceOp = 'max' | 'mean' | 'sum';

export interface WindowScoreOptions extends AttentionShape {
  /**
   * The last w keys are the window's own positions: query i may only see tail key j ≤ i (default true).
   * Set false when the queries come after every key.
   */
  causalTail?: boolean;
  /** Logit scale; default 1/√headDim. */
  scale?: number;
}

/**
 * Reference window attention probabilities, materialised: softmax in fp32 (accumulated in fp64) over all N
 * keys of `Q·Kᵀ·scale` with a causal tail.
 *
 * @param queries post-RoPE queries, (numHeads, queryCount, headDim)
 * @param keys post-RoPE keys, (numKvHeads, keyCount, headDim)
 * @returns probabilities, (numHeads, queryCount, keyCount); masked entries are 0
 */
export function windowScores(queries: Float32Array, keys: Float32Array, options: WindowScoreOptions): Float32Array {
  validateShape(queries, keys, options);
  const { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, keyCount: n } = options;
  const group = hq / hkv;
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const causal = options.causalTail ?? true;
  const out = new Float32Array(hq * w * n);
  const row = new Float64Array(n);
  for (let h = 0; h < hq; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < w; i++) {
      const qOff = (h * w + i) * d;
      const visible = causal ? n - w + i + 1 : n;
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        const kOff = (kvh * n + j) * d;
        let dot = 0;
        for (let x = 0; x < d; x++) dot += queries[qOff + x] * keys[kOff + x];
        row[j] = dot * scale;
        if (row[j] > max) max = row[j];
      }
      let sum = 0;
      for (let j = 0; j < visible; j++) {
        row[j] = Math.exp(row[j] - max);
        sum += row[j];
      }
      const oOff = (h * w + i) * n;
      for (let j = 0; j < visible; j++) out[oOff + j] = row[j] / sum;
    }
  }
  return out;
}

export interface ReduceOptions {
  numHeads: number;
  numKvHeads: number;
  queryCount: number;
  keyCount: number;
  op: ReduceOp;
  /** Optional per-query weights (length queryCount) applied before reducing (SpecPC's 0→1 ramp). */
  queryWeights?: Float32Array;
}

/**
 * GQA-aware reduce of window probabilities to one score per (KV head, key): over the G query heads of each
 * KV head and over the window queries. 'mean' divides by G·w.
 *
 * @param probs (numHeads, queryCount, keyCount)
 * @returns (numKvHeads, keyCount), higher score = keep
 */
export function reduceScores(probs: Float32Array, options: ReduceOptions): Float32Array {
  const { numHeads: hq, numKvHeads: hkv, queryCount: w, keyCount: n, op, queryWeights } = options;
  validateReduce(options);
  if (probs.length !== hq * w * n) {
    throw new InvalidArgumentError({ argument: 'probs.length', value: probs.length, expected: `numHeads·queryCount·keyCount = ${hq * w * n}` });
  }
  const group = hq / hkv;
  const out = new Float32Array(hkv * n);
  const acc = new Float64Array(n);
  for (let kvh = 0; kvh < hkv; kvh++) {
    acc.fill(op === 'max' ? -Infinity : 0);
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      for (let i = 0; i < w; i++) {
        const weight = queryWeights ? queryWeights[i] : 1;
        const off = (h * w + i) * n;
        if (op === 'max') {
          for (let j = 0; j < n; j++) {
            const v = probs[off + j] * weight;
            if (v > acc[j]) acc[j] = v;
          }
        } else {
          for (let j = 0; j < n; j++) acc[j] += probs[off + j] * weight;
        }
      }
    }
    const div = op === 'mean' ? group * w : 1;
    for (let j = 0; j < n; j++) out[kvh * n + j] = acc[j] / div;
  }
  return out;
}

export interface FusedWindowScoreOptions extends WindowScoreOptions {
  op: ReduceOp;
  queryWeights?: Float32Array;
  /** Keys per chunk (default 1024): memory stays O(queryCount × chunkSize). */
  chunkSize?: number;
}

/**
 * Window scoring without the full score matrix: `reduceScores(windowScores(Q, K))` computed in key chunks.
 * Pass 1 streams keys to get each query's softmax max and denominator (online rescaling); pass 2 streams
 * them again, normalises and reduces. Equal to the materialised reference up to float rounding.
 *
 * @returns (numKvHeads, keyCount), higher score = keep
 */
export function windowAttentionScores(queries: Float32Array, keys: Float32Array, options: FusedWindowScoreOptions): Float32Array {
  validateShape(queries, keys, options);
  validateReduce(options);
  const { numHeads: hq, numKvHeads: hkv, headDim: d, queryCount: w, keyCount: n, op, queryWeights } = options;
  const chunkSize = options.chunkSize ?? 1024;
  // A fractional chunk would index the logits buffer at fractional offsets (silently dropped writes).
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new InvalidArgumentError({ argument: 'chunkSize', value: chunkSize, expected: 'an integer ≥ 1' });
  }
  const chunk = Math.min(chunkSize, n);
  const group = hq / hkv;
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const causal = options.causalTail ?? true;
  const out = new Float32Array(hkv * n);
  const maxes = new Float64Array(w);
  const denoms = new Float64Array(w);
  const logits = new Float64Array(w * chunk);
  const acc = new Float64Array(n);
  for (let kvh = 0; kvh < hkv; kvh++) {
    acc.fill(op === 'max' ? -Infinity : 0);
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      maxes.fill(-Infinity);
      denoms.fill(0);
      // Pass 1: online max / denominator per query.
      for (let start = 0; start < n; start += chunk) {
        const end = Math.min(n, start + chunk);
        chunkLogits(queries, keys, h, kvh, start, end, w, n, d, scale, causal, logits, chunk);
        for (let i = 0; i < w; i++) {
          let m = maxes[i];
          for (let j = start; j < end; j++) {
            const v = logits[i * chunk + (j - start)];
            if (v > m) m = v;
          }
          if (m === -Infinity) continue;
          let s = denoms[i] * Math.exp(maxes[i] - m);
          if (maxes[i] === -Infinity) s = 0;
          for (let j = start; j < end; j++) {
            const v = logits[i * chunk + (j - start)];
            if (v !== -Infinity) s += Math.exp(v - m);
          }
          maxes[i] = m;
          denoms[i] = s;
        }
      }
      // Pass 2: normalise and reduce.
      for (let start = 0; start < n; start += chunk) {
        const end = Math.min(n, start + chunk);
        chunkLogits(queries, keys, h, kvh, start, end, w, n, d, scale, causal, logits, chunk);
        for (let i = 0; i < w; i++) {
          const weight = queryWeights ? queryWeights[i] : 1;
          const m = maxes[i];
          const s = denoms[i];
          for (let j = start; j < end; j++) {
            const v = logits[i * chunk + (j - start)];
            // fp32 probability, as the reference softmax produces.
            const p = Math.fround(v === -Infinity ? 0 : Math.exp(v - m) / s) * weight;
            if (op === 'max') {
              if (p > acc[j]) acc[j] = p;
            } else acc[j] += p;
          }
        }
      }
    }
    const div = op === 'mean' ? group * w : 1;
    for (let j = 0; j < n; j++) out[kvh * n + j] = acc[j] / div;
  }
  return out;
}

function chunkLogits(
  q: Float32Array,
  k: Float32Array,
  h: number,
  kvh: number,
  start: number,
  end: number,
  w: number,
  n: number,
  d: number,
  scale: number,
  causal: boolean,
  out: Float64Array,
  stride: number,
): void {
  for (let i = 0; i < w; i++) {
    const qOff = (h * w + i) * d;
    const visible = causal ? n - w + i + 1 : n;
    for (let j = start; j < end; j++) {
      if (j >= visible) {
        out[i * stride + (j - start)] = -Infinity;
        continue;
      }
      const kOff = (kvh * n + j) * d;
      let dot = 0;
      for (let x = 0; x < d; x++) dot += q[qOff + x] * k[kOff + x];
      out[i * stride + (j - start)] = dot * scale;
    }
  }
}

function validateReduce(o: { numHeads: number; numKvHeads: number; queryCount: number; op: ReduceOp; queryWeights?: Float32Array }): void {
  if (o.op !== 'max' && o.op !== 'mean' && o.op !== 'sum') {
    throw new InvalidArgumentError({ argument: 'op', value: o.op, expected: "'max' | 'mean' | 'sum'" });
  }
  if (!Number.isInteger(o.numHeads / o.numKvHeads) || o.numKvHeads < 1) {
    throw new InvalidArgumentError({ argument: 'numHeads', value: o.numHeads, expected: `a multiple of numKvHeads (${o.numKvHeads})` });
  }
  if (o.queryWeights !== undefined && o.queryWeights.length !== o.queryCount) {
    throw new InvalidArgumentError({ argument: 'queryWeights.length', value: o.queryWeights.length, expected: `queryCount (${o.queryCount})` });
  }
}

function validateShape(queries: Float32Array, keys: Float32Array, s: AttentionShape): void {
  const positive = (name: keyof AttentionShape) => {
    const v = s[name];
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError({ argument: name, value: v, expected: 'an integer ≥ 1' });
  };
  positive('numHeads');
  positive('numKvHeads');
  positive('headDim');
  positive('queryCount');
  positive('keyCount');
  if (s.numHeads % s.numKvHeads !== 0) {
    throw new InvalidArgumentError({ argument: 'numHeads', value: s.numHeads, expected: `a multiple of numKvHeads (${s.numKvHeads})` });
  }
  if (s.queryCount > s.keyCount) {
    throw new InvalidArgumentError({ argument: 'queryCount', value: s.queryCount, expected: `≤ keyCount (${s.keyCount})` });
  }
  if (queries.length !== s.numHeads * s.queryCount * s.headDim) {
    throw new InvalidArgumentError({
      argument: 'queries.length',
      value: queries.length,
      expected: `numHeads·queryCount·headDim = ${s.numHeads * s.queryCount * s.headDim}`,
    });
  }
  if (keys.length !== s.numKvHeads * s.keyCount * s.headDim) {
    throw new InvalidArgumentError({
      argument: 'keys.length',
      value: keys.length,
      expected: `numKvHeads·keyCount·headDim = ${s.numKvHeads * s.keyCount * s.headDim}`,
    });
  }
}
