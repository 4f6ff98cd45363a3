import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MIN_PROMPT_LENGTH, PERF_DEFAULTS, type PerfPeer, type PerfReport, runPerf } from '@draft/bench';
import { InvalidArgumentError } from '@draft/core';
import { PERF_FLAGS, commonBenchOptions, withFlagNames } from '../bench-flags.js';
import { progressPrinter } from '../bench-progress.js';
import { parseMethodOptions } from '../method-options.js';
import { bundledModelsDir } from '../model-dirs.js';
import { intOption, parseIntList, parseList } from '../options.js';
import { cliPackages } from '../version.js';
import type { BenchIo } from './bench-ruler.js';

export interface BenchPerfFlags {
  target?: string;
  draft?: string;
  /** Weight files (`--dtype`, `--draft-dtype`; transformers.js dtype names). */
  dtype?: string;
  'draft-dtype'?: string;
  methods?: string;
  budget?: string;
  lengths?: string;
  'new-tokens'?: string;
  repeats?: string;
  window?: string;
  /** Repeated `<method>.<name>=<value>` (`--method-option`). */
  'method-option'?: string[];
  threads?: string;
  transformers?: boolean;
  /** Comma-separated peers: `transformers.js` (default), `llama.cpp` (node-llama-cpp, f16 and f32 KV rows). */
  peers?: string;
  /** GGUF of the target for the llama.cpp peer (default `<target>/gguf/model-f32.gguf`, written by make:gguf). */
  gguf?: string;
  out?: string;
  json?: boolean;
}

/**
 * `draft bench perf`: the flags as `runPerf` options (@draft/bench), progress on stderr. Without `--target` the
 * repository's perf-shaped pair (models/perf, generated when missing) is used.
 */
export async function runBenchPerf(flags: BenchPerfFlags, io: BenchIo): Promise<PerfReport> {
  return withFlagNames(PERF_FLAGS, async () => {
    const { targetDir, draftDir } = perfModelDirs(flags, io);
    const methods = flags.methods === undefined ? undefined : parseList(flags.methods);
    const inRun = methods ?? PERF_DEFAULTS.methods;
    const peers = flags.peers === undefined ? undefined : (parseList(flags.peers) as PerfPeer[]);
    return runPerf({
      target: targetDir,
      draft: draftDir,
      ...commonBenchOptions(flags),
      methods,
      methodOptions: parseMethodOptions(flags['method-option'], inRun.includes('full') ? inRun : ['full', ...inRun]),
      budget: intOption('budget', flags.budget, 1),
      lengths: flags.lengths === undefined ? undefined : parseIntList('lengths', flags.lengths, MIN_PROMPT_LENGTH),
      newTokens: intOption('new-tokens', flags['new-tokens'], 1),
      repeats: intOption('repeats', flags.repeats, 1),
      // --no-transformers drops the default peer (and a listed one).
      peers: flags.transformers === false ? (peers ?? PERF_DEFAULTS.peers).filter((p) => p !== 'transformers.js') : peers,
      gguf: flags.gguf,
      out: flags.out,
      signal: io.signal,
      onProgress: progressPrinter(io.stderr, io.tty ?? false),
      recordPackages: cliPackages(),
    });
  });
}

function perfModelDirs(flags: BenchPerfFlags, io: BenchIo): { targetDir: string; draftDir: string } {
  if (flags.target) {
    return { targetDir: resolve(flags.target), draftDir: resolve(flags.draft ?? join(dirname(resolve(flags.target)), `${basename(resolve(flags.target))}-draft`)) };
  }
  const models = bundledModelsDir();
  if (!models) throw new InvalidArgumentError({ argument: '--target', value: undefined, expected: 'a model folder (no models/ checkout found; pass --target DIR)' });
  const targetDir = join(models, 'perf');
  const draftDir = flags.draft ? resolve(flags.draft) : join(models, 'perf-draft');
  if (!existsSync(join(targetDir, 'onnx', 'model.onnx')) || (!flags.draft && !existsSync(join(draftDir, 'onnx', 'model.onnx')))) {
    io.stderr(`${targetDir} missing: generating it with 'pnpm --filter @draft/models make:perf --no-gqa' …\n`);
    try {
      execFileSync('pnpm', ['--filter', '@draft/models', 'make:perf', '--no-gqa'], { cwd: dirname(models), stdio: ['ignore', 'ignore', 'inherit'] });
    } catch (cause) {
      throw new InvalidArgumentError({ argument: '--target', value: targetDir, expected: "the perf model (run 'pnpm --filter @draft/models make:perf', or pass --target DIR)", cause });
    }
  }
  return { targetDir, draftDir };
}
