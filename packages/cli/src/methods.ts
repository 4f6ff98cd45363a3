import {
  type Budget,
  createPolicy,
  listPolicies,
  type PipelineOptions,
  type PolicyConfig,
  UnknownMethodError,
} from '@draft/core';
import { registerBaselines, registerPromptCompressionBaselines } from '@draft/baselines';
import { registerSpecKV } from '@draft/speckv';
import { registerSpecPC, specKVPC } from '@draft/specpc';

/** What the CLI's `--budget` and `--window` mean for a method. */
export interface MethodSettings {
  /** KV methods: entries kept per (layer, KV head), window included. Prompt compressors: prompt tokens kept. */
  budget?: number;
  /** The method's window W (defaults per method when absent). */
  windowSize?: number;
}

/** How a method needs the models: which stages it fills and whether it needs the draft. */
export interface MethodPlan {
  method: string;
  /** Pipeline stages (without target/draft). */
  stages: Omit<PipelineOptions, 'target' | 'draft'>;
  needsDraft: boolean;
  /** 'kv' budgets count cache entries; 'prompt' budgets count prompt tokens; 'none' for full / draft-only. */
  budgetKind: 'kv' | 'prompt' | 'none';
  /** The draft answers alone (the floor reference). */
  draftOnly?: boolean;
  /** The cache policy keeps different counts per layer or KV head: load the target with `raggedCache`. */
  needsRaggedCache?: boolean;
}

let registered = false;

/** Registers every built-in policy with core's registry (idempotent). */
export function registerBuiltInMethods(): void {
  if (registered) return;
  registered = true;
  registerSpecKV({ override: true });
  registerBaselines({ override: true });
  registerSpecPC({ override: true });
  registerPromptCompressionBaselines({ override: true });
}

/** Methods with a fixed meaning on the command line. Registered third-party policies come on top. */
export const BUILT_IN_METHODS = Object.freeze([
  'full',
  'draft-only',
  'speckv',
  'snapkv',
  'pyramidkv',
  'adakv',
  'streamingllm',
  'h2o',
  'laq',
  'specpc',
  'speckv-pc',
  'specprefill',
  'selfinfo',
  'random-pc',
  'recency-pc',
]);

/** CLI method names of prompt-compression baselines → their registry types. */
const METHOD_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  selfinfo: 'self-information',
  'random-pc': 'random',
  'recency-pc': 'recency',
});

/** Every method name `--method` accepts now: built-ins plus registered cache policies and compressors. */
export function knownMethods(): string[] {
  registerBuiltInMethods();
  const extra = listPolicies()
    .filter((p) => p.kind === 'cache' || p.kind === 'compressor')
    .map((p) => p.type)
    .filter((t) => !BUILT_IN_METHODS.includes(t) && !Object.values(METHOD_ALIASES).includes(t));
  return [...BUILT_IN_METHODS, ...extra.sort()];
}

/** Maps a method name and the CLI's budget/window to pipeline stages. */
export function planMethod(method: string, settings: MethodSettings): MethodPlan {
  registerBuiltInMethods();
  const budget: Budget | undefined = settings.budget === undefined ? undefined : { tokens: settings.budget };
  const window = settings.windowSize === undefined ? {} : { windowSize: settings.windowSize };
  const kv = (type: string): PolicyConfig => ({ type, ...window });
  switch (method) {
    case 'full':
      return { method, stages: {}, needsDraft: false, budgetKind: 'none' };
    case 'draft-only':
      return { method, stages: {}, needsDraft: true, budgetKind: 'none', draftOnly: true };
    case 'speckv':
      return { method, stages: { cachePolicy: kv('speckv'), lookahead: { type: 'draft-lookahead' }, budget }, needsDraft: true, budgetKind: 'kv' };
    case 'laq':
      return {
        method,
        stages: { cachePolicy: kv('laq'), lookahead: { type: 'target-pseudo-lookahead', ...window }, budget },
        needsDraft: false,
        budgetKind: 'kv',
      };
    case 'speckv-pc': {
      const cascade = specKVPC(window);
      return {
        method,
        stages: { compressor: cascade.compressor, lookahead: cascade.lookahead, cachePolicy: kv('speckv'), budget },
        needsDraft: true,
        budgetKind: 'kv',
      };
    }
  }
  const type = METHOD_ALIASES[method] ?? method;
  const info = listPolicies().find((p) => p.type === type);
  if (info?.kind === 'cache') {
    const policy = createPolicy(kv(type), { kind: 'cache' });
    const needsRaggedCache = policy.requires.includes('raggedKvHeads') || policy.requires.includes('raggedLayers');
    return { method, stages: { cachePolicy: policy, budget }, needsDraft: false, budgetKind: 'kv', needsRaggedCache };
  }
  if (info?.kind === 'compressor') {
    const compressor = createPolicy({ type, ...window }, { kind: 'compressor' });
    return { method, stages: { compressor, promptBudget: budget }, needsDraft: compressor.needs === 'draft', budgetKind: 'prompt' };
  }
  throw new UnknownMethodError({ method, known: knownMethods() });
}
