import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
export const TORCH_LLAMA = `${MODELS}fixtures/torch-llama`;
export const TINY_LLAMA = `${MODELS}fixtures/tiny-llama`;
export const TINY_QWEN2_GQA = `${MODELS}fixtures/tiny-qwen2-gqa`;
export const TINY_QWEN3 = `${MODELS}fixtures/tiny-qwen3`;

export interface GoldenCase {
  prompt: number[];
  prompt_length: number;
  prefill_last_logits_first16: number[];
  prefill_last_argmax: number;
  greedy: number[];
  text: string;
  compacted: { kept_past_indices: number[]; next_token: number; next_position: number; logits_first16: number[]; argmax: number; greedy: number[] };
}

export function torchGolden(): { tolerance: { logits_abs: number }; cases: GoldenCase[] } {
  return JSON.parse(readFileSync(`${TORCH_LLAMA}/golden.json`, 'utf8'));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, n = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}
