import { DraftError, InvalidArgumentError } from '@draft/core';
import type { ModelDtype } from '@draft/runtime';
import { dtypeOption, intOption } from './options.js';

/** The flags of `draft bench …` by the @draft/bench option they set (the API names its options in errors). */
export type FlagNames = Readonly<Record<string, string>>;

const COMMON: FlagNames = {
  target: '--target',
  remoteTarget: '--target-url',
  draft: '--draft',
  dtype: '--dtype',
  draftDtype: '--draft-dtype',
  threads: '--threads',
  methods: '--methods',
  windowSize: '--window',
};

export const RULER_FLAGS: FlagNames = { ...COMMON, budgets: '--budgets', lengths: '--lengths', length: '--lengths', tasks: '--tasks', samples: '--samples', seed: '--seed', maxNewTokens: '--max-new-tokens', compare: '--compare' };
export const FIDELITY_FLAGS: FlagNames = { ...COMMON, budgets: '--budgets', lengths: '--lengths', prompts: '--prompt-file', steps: '--steps', seed: '--seed' };
export const PERF_FLAGS: FlagNames = { ...COMMON, budget: '--budget', lengths: '--lengths', newTokens: '--new-tokens', repeats: '--repeats', peers: '--peers', gguf: '--gguf' };
export const CACHE_BENCH_FLAGS: FlagNames = {
  ...COMMON,
  budget: '--budget',
  length: '--length',
  questionCount: '--questions',
  questions: '--question',
  document: '--prompt-file',
  maxNewTokens: '--max-new-tokens',
  storeQueries: '--store-queries',
};
export const KERNELS_BENCH_FLAGS: FlagNames = { keyLengths: '--key-lengths' };

/**
 * Runs a bench API call; an InvalidArgumentError naming one of its options comes out naming the flag that sets it
 * (`Invalid --tasks: …` as before the harness moved to @draft/bench), the original as its cause.
 */
export async function withFlagNames<T>(names: FlagNames, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw asFlagError(error, names);
  }
}

function asFlagError(error: unknown, names: FlagNames): unknown {
  if (!DraftError.isInstance(error) || error.code !== 'INVALID_ARGUMENT') return error;
  const { argument, value, expected } = error.details as { argument?: unknown; value?: unknown; expected?: unknown };
  const flag = typeof argument === 'string' ? names[argument] : undefined;
  if (flag === undefined) return error;
  return new InvalidArgumentError({ argument: flag, value, expected: String(expected), cause: error });
}

/** The flags every `draft bench` takes besides the model folders, as API options: weight files, threads, window. */
export function commonBenchOptions(flags: { dtype?: string; 'draft-dtype'?: string; threads?: string; window?: string }): {
  dtype?: ModelDtype;
  draftDtype?: ModelDtype;
  threads?: number;
  windowSize?: number;
} {
  return {
    dtype: dtypeOption('dtype', flags.dtype),
    draftDtype: dtypeOption('draft-dtype', flags['draft-dtype']),
    threads: intOption('threads', flags.threads, 1),
    windowSize: intOption('window', flags.window, 1),
  };
}
