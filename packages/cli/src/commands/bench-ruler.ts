import { MIN_PROMPT_LENGTH, parseComparePairs, RULER_DEFAULTS, type RulerReport, runRuler } from '@draft/bench';
import { parseMethodOptions } from '../method-options.js';
import { resolveModelDir } from '../model-dirs.js';
import { intOption, parseIntList, parseList } from '../options.js';
import { type RemoteTargetFlags, remoteTargetFromFlags } from '../remote-target.js';
import { RULER_FLAGS, commonBenchOptions, withFlagNames } from '../bench-flags.js';
import { progressPrinter } from '../bench-progress.js';
import { cliPackages } from '../version.js';

export interface BenchRulerFlags extends RemoteTargetFlags {
  target?: string;
  draft?: string;
  /** Weight files (`--dtype`, `--draft-dtype`; transformers.js dtype names). */
  dtype?: string;
  'draft-dtype'?: string;
  methods?: string;
  budgets?: string;
  lengths?: string;
  tasks?: string;
  samples?: string;
  seed?: string;
  window?: string;
  /** Repeated `<method>.<name>=<value>` (`--method-option`). */
  'method-option'?: string[];
  'max-new-tokens'?: string;
  threads?: string;
  out?: string;
  json?: boolean;
  /** Method pairs to compare on the same samples, `a:b,c:d` (default: every pair of --methods). */
  compare?: string;
}

export interface BenchIo {
  /** Progress and log lines. */
  stderr: (text: string) => void;
  /** Redraw a progress bar (stderr is a terminal) instead of one line per run. */
  tty?: boolean;
  signal?: AbortSignal;
}

/** `draft bench ruler`: the flags as `runRuler` options (@draft/bench), progress on stderr; the report it returns. */
export async function runBenchRuler(flags: BenchRulerFlags, io: BenchIo): Promise<RulerReport> {
  return withFlagNames(RULER_FLAGS, async () => {
    const remote = await remoteTargetFromFlags(flags, io.signal);
    const methods = flags.methods === undefined ? undefined : parseList(flags.methods);
    const inRun = methods ?? RULER_DEFAULTS.methods;
    return runRuler({
      target: remote ? undefined : resolveModelDir('target', flags.target),
      remoteTarget: remote,
      draft: resolveModelDir('draft', flags.draft),
      ...commonBenchOptions(flags),
      methods,
      methodOptions: parseMethodOptions(flags['method-option'], inRun),
      budgets: flags.budgets === undefined ? undefined : parseList(flags.budgets),
      lengths: flags.lengths === undefined ? undefined : parseIntList('lengths', flags.lengths, MIN_PROMPT_LENGTH),
      tasks: flags.tasks === undefined ? undefined : parseList(flags.tasks),
      samples: intOption('samples', flags.samples, 1),
      seed: intOption('seed', flags.seed, 0),
      maxNewTokens: intOption('max-new-tokens', flags['max-new-tokens'], 1),
      compare: parseComparePairs(flags.compare, inRun),
      out: flags.out,
      signal: io.signal,
      onProgress: progressPrinter(io.stderr, io.tty ?? false),
      recordPackages: cliPackages(),
    });
  });
}
