import { fileURLToPath } from 'node:url';
import type { ModelSpec } from './spec.js';
import { CHAT_TEMPLATE } from './tokenizer.js';

/** Names of the committed fixture folders (relative to the package root). */
/** `random-draft` / `random-target`: a random-weight pair with a byte-level tokenizer, for mechanics tests on
 * natural-language text (the trained default pair in models/draft and models/target speaks a symbolic vocabulary). */
export type FixtureName = 'tiny-llama' | 'tiny-qwen2-gqa' | 'tiny-qwen3' | 'random-draft' | 'random-target';

const FIXTURE_DIRS: Record<FixtureName, string> = {
  'tiny-llama': 'fixtures/tiny-llama',
  'tiny-qwen2-gqa': 'fixtures/tiny-qwen2-gqa',
  'tiny-qwen3': 'fixtures/tiny-qwen3',
  'random-draft': 'fixtures/random-draft',
  'random-target': 'fixtures/random-target',
};

/**
 * Absolute path of a committed fixture folder (works from src/ and dist/: both sit one level below the package
 * root). Also accepts 'perf' / 'perf-gqa' (generated on demand by `pnpm --filter @draft/models make:perf`).
 */
export function fixturePath(name: FixtureName | 'perf' | 'perf-gqa' | 'perf-draft'): string {
  const rel = name === 'perf' || name === 'perf-gqa' || name === 'perf-draft' ? name : FIXTURE_DIRS[name];
  if (!rel) throw new Error(`unknown fixture ${name}`);
  return fileURLToPath(new URL(`../${rel}`, import.meta.url));
}

export const TINY_SIZES = {
  vocabSize: 512,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  intermediateSize: 128,
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
} as const;

export interface FixtureDef {
  name: FixtureName;
  spec: ModelSpec;
  chatTemplate: string | null;
}

export const DEFAULT_WEIGHT_SCALE = 0.2;

export const FIXTURES: FixtureDef[] = [
  {
    name: 'tiny-llama',
    spec: { architecture: 'llama', attention: 'decomposed', ...TINY_SIZES, maxPositions: 2048, tieWordEmbeddings: false, seed: 1, weightScale: DEFAULT_WEIGHT_SCALE },
    chatTemplate: null,
  },
  {
    name: 'tiny-qwen2-gqa',
    spec: { architecture: 'qwen2', attention: 'gqa', ...TINY_SIZES, maxPositions: 2048, tieWordEmbeddings: true, seed: 2, weightScale: DEFAULT_WEIGHT_SCALE },
    chatTemplate: CHAT_TEMPLATE,
  },
  {
    // Qwen3: q_norm / k_norm (per-head RMSNorm) before RoPE, no q/k/v bias, decomposed attention.
    name: 'tiny-qwen3',
    spec: { architecture: 'qwen3', attention: 'decomposed', ...TINY_SIZES, maxPositions: 2048, tieWordEmbeddings: true, seed: 8, weightScale: DEFAULT_WEIGHT_SCALE },
    chatTemplate: null,
  },
  {
    name: 'random-draft',
    spec: { architecture: 'llama', attention: 'decomposed', ...TINY_SIZES, maxPositions: 4096, tieWordEmbeddings: false, seed: 3, weightScale: DEFAULT_WEIGHT_SCALE },
    chatTemplate: CHAT_TEMPLATE,
  },
  {
    name: 'random-target',
    spec: {
      architecture: 'llama',
      attention: 'decomposed',
      ...TINY_SIZES,
      hiddenSize: 128,
      numLayers: 4,
      numHeads: 8,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 256,
      maxPositions: 4096,
      tieWordEmbeddings: false,
      seed: 4,
      weightScale: DEFAULT_WEIGHT_SCALE,
    },
    chatTemplate: CHAT_TEMPLATE,
  },
];

export const PERF_SPEC: ModelSpec = {
  architecture: 'llama',
  attention: 'decomposed',
  vocabSize: 512,
  hiddenSize: 512,
  numLayers: 12,
  numHeads: 8,
  numKvHeads: 2,
  headDim: 64,
  intermediateSize: 1408,
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
  maxPositions: 16384,
  tieWordEmbeddings: false,
  seed: 5,
  weightScale: 0.07,
};

/** A draft for the perf-shaped target: same tokenizer and positions, 2 layers, a quarter of the width. */
export const PERF_DRAFT_SPEC: ModelSpec = {
  ...PERF_SPEC,
  hiddenSize: 256,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 704,
  seed: 6,
};
