import {
  type Budget,
  createPolicy,
  DraftError,
  InvalidArgumentError,
  listPolicies,
  type PipelineOptions,
  type PolicyConfig,
  UnknownMethodError,
} from '@draft/core';
import { registerBaselines, registerPromptCompressionBaselines } from '@draft/baselines';
import { registerSpecKV } from '@draft/speckv';
import { registerSpecPC, type SpecKVPC, type SpecKVPCOptions, specKVPC } from '@draft/specpc';
import { formatMethodOptions, type MethodOptionMap, type MethodOptionValue } from './method-options.js';

/** What the CLI's `--budget` and `--window` mean for a method. */
export interface MethodSettings {
  /** KV methods: entries kept per (layer, KV head), window included. Prompt compressors: prompt tokens kept. */
  budget?: number;
  /** The method's window W (defaults per method when absent). */
  windowSize?: number;
  /**
   * Options of the method's policy (`--method-option`), merged into its config after `windowSize` (so they win):
   * the cache policy's for KV methods (LAQ++: `windowSize` also goes to its lookahead), the compressor's for
   * prompt compressors and SpecKV-PC (whose `budget` is C_pc). Names the policy does not take, `budget` (use
   * `budget` above) and any option for full / draft-only are InvalidArgumentErrors; values are validated by the policy.
   */
  options?: MethodOptionMap;
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
  /** The `options` it was planned with, when there were any. */
  methodOptions?: MethodOptionMap;
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

/** Maps a method name and the CLI's budget/window (and method options) to pipeline stages. */
export function planMethod(method: string, settings: MethodSettings): MethodPlan {
  registerBuiltInMethods();
  const options = settings.options ?? {};
  if (Object.keys(options).length === 0) return plan(method, settings, {});
  checkReservedNames(method, options);
  return { ...plan(method, settings, options), methodOptions: { ...options } };
}

function plan(method: string, settings: MethodSettings, options: MethodOptionMap): MethodPlan {
  const budget: Budget | undefined = settings.budget === undefined ? undefined : { tokens: settings.budget };
  const window = settings.windowSize === undefined ? {} : { windowSize: settings.windowSize };
  const hasOptions = Object.keys(options).length > 0;
  const kv = (type: string): PolicyConfig => ({ type, ...window, ...options });
  const cache = (config: PolicyConfig) => createPolicy(config, { kind: 'cache' });
  switch (method) {
    case 'full':
      return { method, stages: {}, needsDraft: false, budgetKind: 'none' };
    case 'draft-only':
      return { method, stages: {}, needsDraft: true, budgetKind: 'none', draftOnly: true };
    case 'speckv':
      // The pipeline builds the policy from its config; build it here too so a bad option fails before any run.
      if (hasOptions) withOptions(method, options, () => cache({ type: method, ...window }), () => cache(kv(method)));
      return { method, stages: { cachePolicy: kv('speckv'), lookahead: { type: 'draft-lookahead' }, budget }, needsDraft: true, budgetKind: 'kv' };
    case 'laq': {
      if (hasOptions) withOptions(method, options, () => cache({ type: method, ...window }), () => cache(kv(method)));
      // W is the pseudo-lookahead's window too (as --window is).
      const lookaheadWindow = options.windowSize === undefined ? window : { windowSize: options.windowSize };
      return {
        method,
        stages: { cachePolicy: kv('laq'), lookahead: { type: 'target-pseudo-lookahead', ...lookaheadWindow }, budget },
        needsDraft: false,
        budgetKind: 'kv',
      };
    }
    case 'speckv-pc': {
      // Method options go to the cascade's SpecPC stage (its `budget` is C_pc); --window goes to both stages.
      const cascade = hasOptions
        ? withOptions(method, options, () => specKVPCOptions(specKVPC(window)), () => specKVPC({ ...window, ...options } as SpecKVPCOptions), {
            configOf: specKVPCOptions,
            // Its ReusedLookahead validates these under its own names.
            aliases: { onMissing: 'onMissingLookahead', maxNewTokens: 'lookaheadTokens' },
          })
        : specKVPC(window);
      return {
        method,
        stages: { compressor: cascade.compressor, lookahead: cascade.lookahead, cachePolicy: { type: 'speckv', ...window }, budget },
        needsDraft: true,
        budgetKind: 'kv',
      };
    }
  }
  const type = METHOD_ALIASES[method] ?? method;
  const info = listPolicies().find((p) => p.type === type);
  if (info?.kind === 'cache') {
    const policy = hasOptions ? withOptions(method, options, () => cache({ type, ...window }), () => cache(kv(type))) : cache(kv(type));
    const needsRaggedCache = policy.requires.includes('raggedKvHeads') || policy.requires.includes('raggedLayers');
    return { method, stages: { cachePolicy: policy, budget }, needsDraft: false, budgetKind: 'kv', needsRaggedCache };
  }
  if (info?.kind === 'compressor') {
    const compressor = (config: PolicyConfig) => createPolicy(config, { kind: 'compressor' });
    const built = hasOptions ? withOptions(method, options, () => compressor({ type, ...window }), () => compressor({ type, ...window, ...options })) : compressor({ type, ...window });
    return { method, stages: { compressor: built, promptBudget: budget }, needsDraft: built.needs === 'draft', budgetKind: 'prompt' };
  }
  throw new UnknownMethodError({ method, known: knownMethods() });
}

/** Method options no policy gets: any for full / draft-only, `type`, and `budget` (--budget sets it) except SpecKV-PC's C_pc. */
function checkReservedNames(method: string, options: MethodOptionMap): void {
  for (const [name, value] of Object.entries(options)) {
    const expected =
      method === 'full' || method === 'draft-only'
        ? `no method options: '${method}' has no policy`
        : name === 'type'
          ? 'an option other than type (the method picks the policy)'
          : name === 'budget' && method !== 'speckv-pc'
            ? 'an option other than budget (set it with --budget / --budgets)'
            : undefined;
    if (expected) throw new InvalidArgumentError({ argument: '--method-option', value: optionText(method, name, value), expected });
  }
}

interface HasConfig {
  toConfig(): PolicyConfig;
}

/** SpecKV-PC's options as a config: its SpecPC stage's, plus `onMissingLookahead`. */
function specKVPCOptions(cascade: SpecKVPC): HasConfig {
  return { toConfig: () => ({ ...cascade.compressor.toConfig(), onMissingLookahead: cascade.lookahead.onMissing }) };
}

/**
 * Builds a method's policy with its method options and checks them. An InvalidArgumentError the policy throws
 * for one of them (an unknown key, a bad value) becomes one naming that `--method-option`; a name the policy
 * ignored (absent from its `toConfig()`) is rejected with the names it takes (those of its default config).
 * `aliases` map the argument names a stage's validation uses to option names.
 */
function withOptions<T>(
  method: string,
  options: MethodOptionMap,
  createDefault: () => HasConfig,
  create: () => T,
  { configOf = (built) => built as HasConfig, aliases = {} }: { configOf?: (built: T) => HasConfig; aliases?: Readonly<Record<string, string>> } = {},
): T {
  const unknownName = (name: string, cause?: unknown) => {
    const accepted = Object.keys(createDefault().toConfig()).filter((k) => k !== 'type' && (k !== 'budget' || method === 'speckv-pc'));
    return new InvalidArgumentError({
      argument: '--method-option',
      value: optionText(method, name, options[name]),
      expected: `an option '${method}' takes: ${accepted.join(', ')}`,
      cause,
    });
  };
  let built: T;
  try {
    built = create();
  } catch (error) {
    if (!DraftError.isInstance(error) || error.code !== 'INVALID_ARGUMENT') throw error;
    const details = (error.details ?? {}) as { argument?: unknown; expected?: unknown };
    const argument = String(details.argument ?? '');
    // core's optionsFromConfig names an unknown key `config.<key>`; the policies' validators name the option.
    const unknown = Object.keys(options).find((name) => argument === `config.${name}`);
    if (unknown !== undefined) throw unknownName(unknown, error);
    const bad = Object.keys(options).find((name) => (aliases[argument] ?? argument) === name);
    if (bad === undefined) throw error;
    throw new InvalidArgumentError({
      argument: '--method-option',
      value: optionText(method, bad, options[bad]),
      expected: `${String(details.expected ?? 'a valid value')} ('${method}' option ${bad})`,
      cause: error,
    });
  }
  const config = configOf(built).toConfig();
  for (const name of Object.keys(options)) if (!Object.hasOwn(config, name)) throw unknownName(name);
  return built;
}

function optionText(method: string, name: string, value: MethodOptionValue): string {
  return `${method}.${formatMethodOptions({ [name]: value })}`;
}
