import type { RulerMetric } from './ruler-tasks.js';

/**
 * RULER's metrics, per sample (0..1). `string_match_all`: the fraction of reference strings contained in the
 * prediction (case-insensitive); `string_match_part` (qa): 1 if any reference is contained, else 0 (RULER:
 * max over references of containment). With `tokens` (symbolic formats) containment is on whole tokens split
 * by whitespace, so that value `v1` is not found inside `v12`.
 */
export function scorePrediction(metric: RulerMetric, prediction: string, references: readonly string[], options: { tokens?: boolean } = {}): number {
  if (references.length === 0) return 0;
  const contains = options.tokens ? tokenContains(prediction) : (ref: string) => prediction.toLowerCase().includes(ref.toLowerCase());
  const hits = references.map((r) => (contains(r) ? 1 : 0));
  return metric === 'string_match_part' ? Math.max(...hits) : hits.reduce<number>((a, b) => a + b, 0) / references.length;
}

function tokenContains(prediction: string): (ref: string) => boolean {
  const padded = ` ${prediction.trim().split(/\s+/).join(' ')} `;
  return (ref) => padded.includes(` ${ref.trim().split(/\s+/).join(' ')} `);
}

/** The part of a prediction the metric sees: cut at the first stop string (answer_end). */
export function cutPrediction(text: string, stopStrings: readonly string[]): string {
  let end = text.length;
  for (const s of stopStrings) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}
