import { allButLast, requireInteger, validateBudgetWindow, validateWindowInPrompt, withWindow } from '@draft/core';

export interface SelectStreamingLLMOptions {
  /** Prompt length n. */
  promptLength: number;
  numLayers: number;
  numKvHeads: number;
  /** C per (layer, KV head), window included. Default 256. */
  budget?: number;
  /** W: recent prompt positions kept, 0 < W < C (and W < n when n > C). Default 32. */
  windowSize?: number;
}

/**
 * StreamingLLM at prefill (Xiao et al. 2024; ALGORITHMS.md "Baselines"): keep the first C − W prompt positions
 * (attention sinks) and the window [n − W − 1, n − 1); needs no scores. No compression when n ≤ C.
 *
 * @returns per layer, per KV head: [0, C − W) ++ [n − W − 1, n − 1).
 */
export function selectStreamingLLM(options: SelectStreamingLLMOptions): Int32Array[][] {
  const n = requireInteger('promptLength', options.promptLength, 1);
  const layers = requireInteger('numLayers', options.numLayers, 1);
  const hkv = requireInteger('numKvHeads', options.numKvHeads, 1);
  const { budget, windowSize } = validateBudgetWindow(options.budget ?? 256, options.windowSize ?? 32);
  let kept: Int32Array;
  // n ≤ C first: no compression, so n ≤ W is valid here (W < n matters only when selecting).
  if (n <= budget) kept = allButLast(n);
  else {
    validateWindowInPrompt(windowSize, n);
    const sinks = new Int32Array(budget - windowSize);
    for (let i = 0; i < sinks.length; i++) sinks[i] = i;
    kept = withWindow(sinks, n, windowSize);
  }
  return Array.from({ length: layers }, () => Array.from({ length: hkv }, () => kept.slice()));
}
