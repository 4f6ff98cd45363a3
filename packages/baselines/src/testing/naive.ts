// Test-only brute-force references: explicit loops, full sorts, no code shared with the implementation.

export interface NaiveShape {
  hq: number;
  hkv: number;
  d: number;
  n: number;
  lookahead: number;
  window: number;
}

function softmaxRow(q: Float32Array, qOff: number, k: Float32Array, kBase: number, visible: number, d: number): number[] {
  const logits: number[] = [];
  for (let j = 0; j < visible; j++) {
    let dot = 0;
    for (let x = 0; x < d; x++) dot += q[qOff + x] * k[kBase + j * d + x];
    logits.push(dot * (1 / Math.sqrt(d)));
  }
  const top = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => Math.fround(e / sum));
}

/** Window-query scores of the m = n − W − 1 candidates, per KV head (w = W + 1 + L queries, causal). */
export function naiveWindowScores(q: Float32Array, k: Float32Array, s: NaiveShape, reduce: 'max' | 'mean' | 'sum'): number[][] {
  const group = s.hq / s.hkv;
  const w = s.window + 1 + s.lookahead;
  const total = s.n + s.lookahead;
  const m = s.n - s.window - 1;
  const out: number[][] = [];
  for (let kvh = 0; kvh < s.hkv; kvh++) {
    const score: number[] = new Array(m).fill(reduce === 'max' ? -Infinity : 0);
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      for (let i = 0; i < w; i++) {
        const probs = softmaxRow(q, (h * w + i) * s.d, k, kvh * total * s.d, s.n - s.window + i, s.d);
        for (let j = 0; j < m; j++) score[j] = reduce === 'max' ? Math.max(score[j], probs[j]) : score[j] + probs[j];
      }
    }
    out.push(score.map((v) => Math.fround(reduce === 'mean' ? v / (group * w) : v)));
  }
  return out;
}

/** H2O: per KV head, sum over its query heads (each summed over all n causal queries, then rounded to f32). */
export function naiveH2OScores(q: Float32Array, k: Float32Array, s: { hq: number; hkv: number; d: number; n: number; window: number }): number[][] {
  const group = s.hq / s.hkv;
  const m = s.n - s.window - 1;
  const out: number[][] = [];
  for (let kvh = 0; kvh < s.hkv; kvh++) {
    const total = new Array(m).fill(0);
    for (let g = 0; g < group; g++) {
      const h = kvh * group + g;
      const head = new Array(s.n).fill(0);
      for (let i = 0; i < s.n; i++) {
        const probs = softmaxRow(q, (h * s.n + i) * s.d, k, kvh * s.n * s.d, i + 1, s.d);
        for (let j = 0; j <= i; j++) head[j] += probs[j];
      }
      for (let j = 0; j < m; j++) total[j] += Math.fround(head[j]);
    }
    out.push(total.map((v) => Math.fround(v)));
  }
  return out;
}

export function naivePool(scores: number[], kernel: number, type: 'max' | 'avg'): number[] {
  const half = (kernel - 1) / 2;
  return scores.map((_, j) => {
    const inside: number[] = [];
    for (let t = j - half; t <= j + half; t++) if (t >= 0 && t < scores.length) inside.push(scores[t]);
    return type === 'max' ? Math.max(...inside) : Math.fround(inside.reduce((a, b) => a + b, 0) / kernel);
  });
}

/** Positions of the k best scores (ties -> lower position), ascending. */
export function naiveTop(scores: number[], k: number): number[] {
  const order = scores.map((_, j) => j).sort((a, b) => (scores[b] !== scores[a] ? scores[b] - scores[a] : a - b));
  return order.slice(0, k).sort((a, b) => a - b);
}

export function naiveWithWindow(selected: number[], n: number, window: number): number[] {
  const out = selected.slice();
  for (let p = n - window - 1; p < n - 1; p++) out.push(p);
  return out;
}

export const asArrays = (kept: readonly (readonly Int32Array[])[]) => kept.map((heads) => heads.map((h) => Array.from(h)));

/** One layer, one head, d = 1; every query is +1 so candidate scores are monotone in the key values. */
export function scalarCase(candidateKeys: number[], window: number, lookahead = 0) {
  const n = candidateKeys.length + window + 1;
  const keys = new Float32Array(n + lookahead);
  keys.set(candidateKeys);
  const queries = new Float32Array(window + 1 + lookahead).fill(1);
  return { queries: [queries], keys: [keys], numHeads: 1, numKvHeads: 1, headDim: 1, promptLength: n, windowSize: window };
}
