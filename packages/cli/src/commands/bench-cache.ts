import { type CacheBenchReport, type CacheBenchRow, MIN_PROMPT_LENGTH, runCacheBench } from '@draft/bench';
import { CACHE_BENCH_FLAGS, commonBenchOptions, withFlagNames } from '../bench-flags.js';
import { progressPrinter } from '../bench-progress.js';
import { parseMethodOptions } from '../method-options.js';
import { bundledModelsDir, resolveModelDir } from '../model-dirs.js';
import { intOption, parseList } from '../options.js';
import { readPrompt } from './generate.js';

export const BENCH_CACHE_USAGE = `  draft bench cache [--target DIR] [--draft DIR] [--methods full,snapkv,speckv] [--budget N] [--window N]
                    [--length N] [--questions N] [--prompt-file DOC --question TEXT...] [--max-new-tokens N]
                    [--method-option M.NAME=V]... [--store-queries N|all] [--json]`;

export interface BenchCacheFlags {
  target?: string;
  draft?: string;
  dtype?: string;
  'draft-dtype'?: string;
  methods?: string;
  budget?: string;
  window?: string;
  length?: string;
  questions?: string;
  'prompt-file'?: string;
  question?: string[];
  'max-new-tokens'?: string;
  'method-option'?: string[];
  /** Queries stored in the cache (default: 'all' when a method scores with every prompt query, as H2O, else 128). */
  'store-queries'?: string;
  threads?: string;
  json?: boolean;
}

/** `draft bench cache --json`: exactly this object (the report of `runCacheBench`). */
export type BenchCacheResult = CacheBenchReport;
export type BenchCacheRow = CacheBenchRow;

/** `draft bench cache`: the flags as `runCacheBench` options (@draft/bench; the document file read here). */
export async function runBenchCache(flags: BenchCacheFlags, io: { stderr: (t: string) => void; signal?: AbortSignal }): Promise<BenchCacheResult> {
  return withFlagNames(CACHE_BENCH_FLAGS, async () => {
    const methods = parseList(flags.methods ?? 'full,snapkv,speckv');
    const options = {
      target: resolveModelDir('target', flags.target),
      // Only SpecKV needs the draft: without a flag or bundled models, a run of other methods needs none.
      draft: flags.draft !== undefined || bundledModelsDir() ? resolveModelDir('draft', flags.draft) : undefined,
      ...commonBenchOptions(flags),
      methods,
      methodOptions: parseMethodOptions(flags['method-option'], methods),
      budget: intOption('budget', flags.budget, 1),
      length: intOption('length', flags.length, MIN_PROMPT_LENGTH),
      questionCount: intOption('questions', flags.questions, 1),
      maxNewTokens: intOption('max-new-tokens', flags['max-new-tokens'], 1),
      storeQueries: flags['store-queries'] === 'all' ? ('all' as const) : intOption('store-queries', flags['store-queries'], 0),
      questions: flags.question,
    };
    const document = flags['prompt-file'] === undefined ? undefined : await readPrompt({ 'prompt-file': flags['prompt-file'] });
    return runCacheBench({ ...options, document, signal: io.signal, onProgress: progressPrinter(io.stderr, false) });
  });
}

/** The table `draft bench cache` prints without `--json`. */
export function formatBenchCache(r: BenchCacheResult): string {
  const lines = [
    `document: ${r.documentTokens} tokens, cache file ${(r.fileBytes / (1024 * 1024)).toFixed(2)} MiB, built once in ${r.buildMs.toFixed(0)} ms, opened in ${r.openMs.toFixed(0)} ms`,
    '| method | questions | TTFT fresh (ms) | TTFT cached (ms) | ratio fresh/cached | saved per question (ms) | tokens equal |',
    '|---|---|---|---|---|---|---|',
    ...r.rows.map(
      (row) =>
        `| ${row.method} | ${row.questions} | ${row.freshTtftMs.toFixed(1)} | ${row.cachedTtftMs.toFixed(1)} | ${row.ttftRatio.toFixed(2)}× | ${row.savedMsPerQuestion.toFixed(1)} | ${row.tokensEqual}/${row.questions} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
