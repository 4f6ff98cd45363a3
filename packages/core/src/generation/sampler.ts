import { InvalidArgumentError } from '../spec/errors.js';

/**
 * A logits processor edits one row of logits **in place** (transformers.js style: processors are a list
 * applied in order). `context.tokens` holds the tokens generated so far.
 */
export type LogitsProcessor = (logits: Float32Array, context: { tokens: readonly number[] }) => void;

export interface SamplerOptions {
  /** 0 (default) = greedy (argmax, lowest index on ties). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). Tokens tied with the k-th are kept. */
  topK?: number;
  /** Nucleus mass in (0, 1] (1 = off): keep the smallest most-likely set whose probability reaches topP. */
  topP?: number;
  /** Seed of the sampling PRNG (mulberry32). Default 0. */
  seed?: number;
  /** OpenAI's presence penalty over the generated tokens (0 = off). */
  presencePenalty?: number;
  /** OpenAI's frequency penalty over the generated tokens (0 = off). */
  frequencyPenalty?: number;
  /** CTRL's repetition penalty θ > 0 over the generated tokens (1 = off). */
  repetitionPenalty?: number;
  /** Extra processors, applied after the penalties, temperature, top-k and top-p. */
  processors?: readonly LogitsProcessor[];
}

export interface Sampler {
  readonly greedy: boolean;
  /** The processors applied before sampling, in order. */
  readonly processors: readonly LogitsProcessor[];
  /** Picks the next token. Does not modify `logits` (works on a copy). */
  sample(logits: Float32Array, context?: { tokens: readonly number[] }): number;
}

/** mulberry32: a small, fast, seedable 32-bit PRNG. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * OpenAI's presence and frequency penalties (and vLLM's): for every token t generated so far (count c_t ≥ 1),
 * `logit[t] -= presence + frequency · c_t`. Counts come from `context.tokens` (the generated tokens, not the
 * prompt, as in OpenAI's definition and vLLM).
 */
export function presenceFrequencyProcessor(presencePenalty: number, frequencyPenalty: number): LogitsProcessor {
  return (logits, { tokens }) => {
    const counts = new Map<number, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) if (t >= 0 && t < logits.length) logits[t] -= presencePenalty + frequencyPenalty * c;
  };
}

/**
 * CTRL's repetition penalty (Keskar et al. 2019, §4.1) as transformers' `RepetitionPenaltyLogitsProcessor`
 * applies it: each token already in `context.tokens` (once, however often it occurs) has a positive logit
 * divided by θ and a negative one multiplied by θ, so θ > 1 discourages repeats. Unlike transformers, the
 * prompt is not included (the decode loop sees only generated tokens).
 */
export function repetitionPenaltyProcessor(repetitionPenalty: number): LogitsProcessor {
  return (logits, { tokens }) => {
    for (const t of new Set(tokens)) {
      if (t < 0 || t >= logits.length) continue;
      logits[t] = logits[t] > 0 ? logits[t] / repetitionPenalty : logits[t] * repetitionPenalty;
    }
  };
}

/** Divides logits by `temperature`. */
export function temperatureProcessor(temperature: number): LogitsProcessor {
  return (logits) => {
    for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  };
}

/** Sets every logit below the k-th largest to −∞ (ties with the k-th are kept, as in transformers). */
export function topKProcessor(topK: number): LogitsProcessor {
  return (logits) => {
    if (topK <= 0 || topK >= logits.length) return;
    const sorted = Float32Array.from(logits).sort().reverse();
    const threshold = sorted[topK - 1];
    for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = Number.NEGATIVE_INFINITY;
  };
}

/**
 * Nucleus filtering: sorts tokens by probability (descending, lower index first on ties) and keeps the
 * shortest prefix whose cumulative probability reaches `topP` (at least one token); the rest get −∞.
 */
export function topPProcessor(topP: number): LogitsProcessor {
  return (logits) => {
    if (topP >= 1) return;
    const probs = softmax(logits);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
    let cumulative = 0;
    let keep = 0;
    while (keep < order.length) {
      cumulative += probs[order[keep]];
      keep++;
      if (cumulative >= topP) break;
    }
    for (let r = keep; r < order.length; r++) logits[order[r]] = Number.NEGATIVE_INFINITY;
  };
}

/** Softmax in float64 accumulation; −∞ logits get probability 0. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = logits[i] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(logits[i] - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Validates sampling options; throws InvalidArgumentError naming the option. */
export function validateSamplerOptions(options: SamplerOptions): void {
  const { temperature = 0, topK = 0, topP = 1, seed = 0 } = options;
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    throw new InvalidArgumentError({ argument: 'temperature', value: temperature, expected: 'a finite number ≥ 0' });
  }
  if (!(Number.isInteger(topK) && topK >= 0)) throw new InvalidArgumentError({ argument: 'topK', value: topK, expected: 'an integer ≥ 0' });
  if (!(topP > 0 && topP <= 1)) throw new InvalidArgumentError({ argument: 'topP', value: topP, expected: 'a number in (0, 1]' });
  if (!Number.isInteger(seed)) throw new InvalidArgumentError({ argument: 'seed', value: seed, expected: 'an integer' });
  for (const name of ['presencePenalty', 'frequencyPenalty'] as const) {
    const value = options[name] ?? 0;
    if (!Number.isFinite(value)) throw new InvalidArgumentError({ argument: name, value, expected: 'a finite number' });
  }
  const repetition = options.repetitionPenalty ?? 1;
  if (!(Number.isFinite(repetition) && repetition > 0)) {
    throw new InvalidArgumentError({ argument: 'repetitionPenalty', value: repetition, expected: 'a finite number > 0' });
  }
}

/**
 * Creates a sampler. Greedy (argmax) when `temperature` is 0 and no penalties or extra processors are given;
 * otherwise applies the penalties (repetition, then presence/frequency: before temperature, as transformers and
 * vLLM order them) → temperature → top-k → top-p → extra processors and draws from the softmax with a mulberry32
 * PRNG seeded by `seed`, so equal seeds give equal token sequences.
 */
export function createSampler(options: SamplerOptions = {}): Sampler {
  validateSamplerOptions(options);
  const { temperature = 0, topK = 0, topP = 1, seed = 0 } = options;
  const greedy = temperature === 0;
  const processors: LogitsProcessor[] = [];
  const { presencePenalty = 0, frequencyPenalty = 0, repetitionPenalty = 1 } = options;
  if (repetitionPenalty !== 1) processors.push(repetitionPenaltyProcessor(repetitionPenalty));
  if (presencePenalty !== 0 || frequencyPenalty !== 0) processors.push(presenceFrequencyProcessor(presencePenalty, frequencyPenalty));
  if (!greedy) {
    if (temperature !== 1) processors.push(temperatureProcessor(temperature));
    if (topK > 0) processors.push(topKProcessor(topK));
    if (topP < 1) processors.push(topPProcessor(topP));
  }
  processors.push(...(options.processors ?? []));
  const random = mulberry32(seed);
  return {
    greedy,
    processors,
    sample(logits, context = { tokens: [] }) {
      if (greedy && processors.length === 0) return argmax(logits);
      const row = Float32Array.from(logits);
      for (const processor of processors) processor(row, context);
      if (greedy) return argmax(row);
      const probs = softmax(row);
      const u = random();
      let cumulative = 0;
      let last = 0;
      for (let i = 0; i < probs.length; i++) {
        if (probs[i] === 0) continue;
        cumulative += probs[i];
        last = i;
        if (u < cumulative) return i;
      }
      return last;
    },
  };
}
