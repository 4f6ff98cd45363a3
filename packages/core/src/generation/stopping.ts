/**
 * Stopping criteria for generation: token ids (the model's EOS ids plus user stop ids) and stop strings.
 * A stop token is never part of the output; text is cut **before** a stop string.
 */
export interface StopCriteria {
  /** True when `id` ends generation (EOS or a stop token id). */
  isStopToken(id: number): boolean;
  /** Index in `text` where the first stop string starts, or -1. */
  findStopString(text: string): number;
  /**
   * Length of the longest suffix of `text` that is a proper prefix of some stop string: streaming callers
   * hold those characters back until they know whether a stop string follows.
   */
  pendingSuffixLength(text: string): number;
}

export function createStopCriteria(options: { eosTokenIds?: readonly number[]; stopTokenIds?: readonly number[]; stopStrings?: readonly string[] }): StopCriteria {
  const ids = new Set<number>([...(options.eosTokenIds ?? []), ...(options.stopTokenIds ?? [])]);
  const strings = (options.stopStrings ?? []).filter((s) => s.length > 0);
  return {
    isStopToken: (id) => ids.has(id),
    findStopString(text) {
      let first = -1;
      for (const s of strings) {
        const at = text.indexOf(s);
        if (at >= 0 && (first < 0 || at < first)) first = at;
      }
      return first;
    },
    pendingSuffixLength(text) {
      let longest = 0;
      for (const s of strings) {
        for (let k = Math.min(s.length - 1, text.length); k > longest; k--) {
          if (text.endsWith(s.slice(0, k))) {
            longest = k;
            break;
          }
        }
      }
      return longest;
    },
  };
}
