import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPipeline, type GenerationResultV1, InvalidArgumentError } from '@draft/core';
import { buildDocumentCache, loadModel, type OrtCausalLM, openDocumentCache } from '@draft/runtime';
import { parseMethodOptions } from '../method-options.js';
import { planMethod } from '../methods.js';
import { resolveModelDir } from '../model-dirs.js';
import { dtypeOption, intOption } from '../options.js';
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

/** One method's side-by-side timings: every question run fresh and from the cache, alternating. */
export interface BenchCacheRow {
  method: string;
  questions: number;
  /** Median TTFT of a fresh run on document ++ question (ms). */
  freshTtftMs: number;
  /** Median TTFT from the cache (ms). */
  cachedTtftMs: number;
  /** freshTtftMs / cachedTtftMs, measured in the same run. */
  ttftRatio: number;
  /** Median of the per-question difference fresh − cached (ms). */
  savedMsPerQuestion: number;
  /** Questions whose cached tokens equal the fresh run's. */
  tokensEqual: number;
}

export interface BenchCacheResult {
  documentTokens: number;
  fileBytes: number;
  /** Building the cache once: document prefill on target (+ draft) and writing the file (ms). */
  buildMs: number;
  /** Opening it: verify (SHA-256), match the models, load the KV into the workers (ms). */
  openMs: number;
  rows: BenchCacheRow[];
}

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * A document in the bundled pair's symbolic format (models/target/task_format.json): i.i.d. filler words with
 * one `k v` fact per question, and the questions `Q k A`. A deterministic LCG keeps runs comparable.
 */
export function symbolicDocument(length: number, questions: number): { document: string; questions: string[] } {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const pad = (n: number) => String(n).padStart(2, '0');
  const words = Array.from({ length: Math.max(questions * 4, length - 2 * questions) }, () => `w${pad(Math.floor(next() * 64))}`);
  const asked: string[] = [];
  const gap = Math.floor(words.length / (questions + 1));
  for (let i = questions - 1; i >= 0; i--) {
    words.splice(gap * (i + 1), 0, `k${pad(i % 96)}`, `v${pad((i * 7 + 3) % 96)}`);
    asked.unshift(`Q k${pad(i % 96)} A`);
  }
  return { document: words.join(' '), questions: asked };
}

/** `draft bench cache`: time to first token per question with a document cache vs a fresh prefill, side by side. */
export async function runBenchCache(flags: BenchCacheFlags, io: { stderr: (t: string) => void; signal?: AbortSignal }): Promise<BenchCacheResult> {
  const methods = (flags.methods ?? 'full,snapkv,speckv').split(',').filter(Boolean);
  const budget = intOption('budget', flags.budget, 1) ?? 128;
  const windowSize = intOption('window', flags.window, 1);
  const length = intOption('length', flags.length, 16) ?? 2048;
  const count = intOption('questions', flags.questions, 1) ?? 5;
  const maxNewTokens = intOption('max-new-tokens', flags['max-new-tokens'], 1) ?? 8;
  const threads = intOption('threads', flags.threads, 1);
  const storeQueriesFlag = flags['store-queries'] === 'all' ? 'all' : intOption('store-queries', flags['store-queries'], 0);
  const dtype = dtypeOption('dtype', flags.dtype);
  const draftDtype = dtypeOption('draft-dtype', flags['draft-dtype']);
  const methodOptions = parseMethodOptions(flags['method-option'], methods);
  const plans = methods.map((method) => planMethod(method, { budget, windowSize, options: methodOptions[method] ?? {} }));
  for (const plan of plans) {
    if (plan.draftOnly || plan.stages.compressor !== undefined) {
      throw new InvalidArgumentError({ argument: '--methods', value: plan.method, expected: 'full or KV methods (a document cache serves no prompt compressor)' });
    }
  }
  let document: string;
  let questions: string[];
  if (flags['prompt-file'] !== undefined) {
    if (!flags.question?.length) throw new InvalidArgumentError({ argument: '--question', value: undefined, expected: 'one or more --question TEXT with --prompt-file' });
    document = await readPrompt({ 'prompt-file': flags['prompt-file'] });
    questions = flags.question;
  } else ({ document, questions } = symbolicDocument(length, count));

  const models: OrtCausalLM[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'draft-bench-cache-'));
  try {
    const target = await loadModel(resolveModelDir('target', flags.target), { dtype, threads, raggedCache: plans.some((p) => p.needsRaggedCache) });
    models.push(target);
    const draft = plans.some((p) => p.needsDraft) ? await loadModel(resolveModelDir('draft', flags.draft), { dtype: draftDtype, threads }) : undefined;
    if (draft) models.push(draft);
    const pipelines = plans.map((plan) => createPipeline({ target, draft: plan.needsDraft ? draft : undefined, ...plan.stages }));
    const storeQueries = storeQueriesFlag ?? (pipelines.some((p) => p.cachePolicy?.queryWindow === 'all') ? 'all' : undefined);
    const file = join(dir, 'document.dkv');
    let t = performance.now();
    const built = await buildDocumentCache({ target, draft, document, path: file, storeQueries, signal: io.signal });
    const buildMs = performance.now() - t;
    t = performance.now();
    const cache = await openDocumentCache(file, { target, draft, signal: io.signal });
    const openMs = performance.now() - t;
    try {
      const rows: BenchCacheRow[] = [];
      for (const [p, plan] of plans.entries()) {
        const pipeline = pipelines[p];
        const run = (ids: number[], cached: boolean): Promise<GenerationResultV1> =>
          pipeline.generate({ inputIds: ids }, { maxNewTokens, signal: io.signal, ...(cached ? { prefix: cache.prefix } : {}) });
        // Warm-up (not timed): first runs pay allocation and kernel set-up.
        const warm = cache.promptIds(questions[0]);
        await run(warm, false);
        await run(warm, true);
        const fresh: number[] = [];
        const cached: number[] = [];
        let equal = 0;
        for (const [i, q] of questions.entries()) {
          const ids = cache.promptIds(q);
          // Alternate which goes first so drift on a shared machine hits both sides alike.
          const order = i % 2 === 0 ? [false, true] : [true, false];
          const results = new Map<boolean, GenerationResultV1>();
          for (const c of order) results.set(c, await run(ids, c));
          const f = results.get(false) as GenerationResultV1;
          const c = results.get(true) as GenerationResultV1;
          fresh.push(f.timings.ttftMs);
          cached.push(c.timings.ttftMs);
          if (f.tokens.join(',') === c.tokens.join(',')) equal++;
        }
        const row: BenchCacheRow = {
          method: plan.method,
          questions: questions.length,
          freshTtftMs: median(fresh),
          cachedTtftMs: median(cached),
          ttftRatio: median(fresh) / Math.max(1e-9, median(cached)),
          savedMsPerQuestion: median(fresh.map((f, i) => f - cached[i])),
          tokensEqual: equal,
        };
        rows.push(row);
        io.stderr(`bench cache: ${plan.method} done\n`);
      }
      return { documentTokens: built.header.target.tokenCount, fileBytes: built.fileBytes, buildMs, openMs, rows };
    } finally {
      cache.dispose();
    }
  } finally {
    await Promise.all(models.map((m) => m.dispose()));
    rmSync(dir, { recursive: true, force: true });
  }
}

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
