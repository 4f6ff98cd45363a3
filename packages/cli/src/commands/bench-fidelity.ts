import { basename } from 'node:path';
import { FIDELITY_DEFAULTS, type FidelityReport, MIN_PROMPT_LENGTH, runFidelity } from '@draft/bench';
import { FIDELITY_FLAGS, commonBenchOptions, withFlagNames } from '../bench-flags.js';
import { progressPrinter } from '../bench-progress.js';
import { parseMethodOptions } from '../method-options.js';
import { resolveModelDir } from '../model-dirs.js';
import { intOption, parseIntList, parseList } from '../options.js';
import { readPromptFile } from '../prompt-file.js';
import { cliPackages } from '../version.js';
import type { BenchIo } from './bench-ruler.js';

export interface BenchFidelityFlags {
  target?: string;
  draft?: string;
  /** Weight files (`--dtype`, `--draft-dtype`; transformers.js dtype names). */
  dtype?: string;
  'draft-dtype'?: string;
  methods?: string;
  budgets?: string;
  lengths?: string;
  'prompt-file'?: string[];
  steps?: string;
  seed?: string;
  window?: string;
  /** Repeated `<method>.<name>=<value>` (`--method-option`). */
  'method-option'?: string[];
  threads?: string;
  out?: string;
  json?: boolean;
}

/** `draft bench fidelity`: the flags as `runFidelity` options (@draft/bench; prompt files read here), progress on stderr. */
export async function runBenchFidelity(flags: BenchFidelityFlags, io: BenchIo): Promise<FidelityReport> {
  return withFlagNames(FIDELITY_FLAGS, async () => {
    const methods = flags.methods === undefined ? undefined : parseList(flags.methods);
    const options = {
      target: resolveModelDir('target', flags.target),
      draft: resolveModelDir('draft', flags.draft),
      ...commonBenchOptions(flags),
      methods,
      // full is always in the run (the reference), so an option for it is refused by its planning, not here.
      methodOptions: parseMethodOptions(flags['method-option'], [...new Set(['full', ...(methods ?? FIDELITY_DEFAULTS.methods)])]),
      budgets: flags.budgets === undefined ? undefined : parseList(flags.budgets),
      lengths: flags.lengths === undefined ? undefined : parseIntList('lengths', flags.lengths, MIN_PROMPT_LENGTH),
      steps: intOption('steps', flags.steps, 1),
      seed: intOption('seed', flags.seed, 0),
    };
    // Every prompt file is read (and size-checked) before any model loads.
    const prompts = [];
    for (const file of flags['prompt-file'] ?? []) prompts.push({ name: basename(file), text: await readPromptFile(file) });
    return runFidelity({
      ...options,
      prompts,
      out: flags.out,
      signal: io.signal,
      onProgress: progressPrinter(io.stderr, io.tty ?? false),
      recordPackages: cliPackages(),
    });
  });
}
