import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createPipeline, type GenerationResultV1, InvalidArgumentError } from '@draft/core';
import { planMethod } from '@draft/methods';
import { buildDocumentCache, loadModel, type OrtCausalLM, openDocumentCache } from '@draft/runtime';
import { type BenchMethodOptions, type BenchModelOptions, checkDtype, checkFolder, checkInteger, checkMethodOptions, checkNames, MIN_PROMPT_LENGTH } from './options.js';
import type { BenchProgressListener } from './progress.js';

/** `runCacheBench` options: the settings of `draft bench cache`'s flags, as values. */
export interface CacheBenchOptions extends Omit<BenchModelOptions, 'draft'>, BenchMethodOptions {
  /** Draft model folder: needed only when a method uses the draft (SpecKV). */
  draft?: string;
  /** C of every KV method (default 128). */
  budget?: number;
  /** Your document; without it a symbolic needle haystack for the bundled pair (`symbolicDocument`). */
  document?: string;
  /** The questions asked of `document` (required with it). */
  questions?: readonly string[];
  /** Tokens of the symbolic document, ≥ 16 (default 2048). */
  length?: number;
  /** Questions asked of the symbolic document (default 5). */
  questionCount?: number;
  /** Generated tokens per question (default 8). */
  maxNewTokens?: number;
  /** Queries stored in the cache (default: 'all' when a method scores with every prompt query, as H2O, else 128). */
  storeQueries?: number | 'all';
  signal?: AbortSignal;
  /** One `note` event as each method finishes. */
  onProgress?: BenchProgressListener;
}

/** One method's side-by-side timings: every question run fresh and from the cache, alternating. */
export interface CacheBenchRow {
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

/** What `runCacheBench` returns and `draft bench cache --json` prints. */
export interface CacheBenchReport {
  documentTokens: number;
  fileBytes: number;
  /** Building the cache once: document prefill on target (+ draft) and writing the file (ms). */
  buildMs: number;
  /** Opening it: verify (SHA-256), match the models, load the KV into the workers (ms). */
  openMs: number;
  rows: CacheBenchRow[];
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

/**
 * Time to first token per question with a document cache vs a fresh prefill, side by side: builds the cache once
 * (in a temporary folder), then runs every question fresh (document + question) and from the cache, alternating
 * which goes first, per method. Methods must be full or KV methods (a cache serves no prompt compressor).
 */
export async function runCacheBench(options: CacheBenchOptions): Promise<CacheBenchReport> {
  const methods = checkNames('methods', options.methods ?? ['full', 'snapkv', 'speckv']);
  const budget = checkInteger('budget', options.budget, 1) ?? 128;
  const windowSize = checkInteger('windowSize', options.windowSize, 1);
  const length = checkInteger('length', options.length, MIN_PROMPT_LENGTH) ?? 2048;
  const count = checkInteger('questionCount', options.questionCount, 1) ?? 5;
  const maxNewTokens = checkInteger('maxNewTokens', options.maxNewTokens, 1) ?? 8;
  const threads = checkInteger('threads', options.threads, 1);
  const storeQueriesOption = options.storeQueries === 'all' ? 'all' : checkInteger('storeQueries', options.storeQueries, 0);
  const dtype = checkDtype('dtype', options.dtype);
  const draftDtype = checkDtype('draftDtype', options.draftDtype);
  const targetDir = resolve(checkFolder('target', options.target));
  const methodOptions = checkMethodOptions(options.methodOptions, methods);
  const plans = methods.map((method) => planMethod(method, { budget, windowSize, options: methodOptions[method] ?? {} }));
  for (const plan of plans) {
    if (plan.draftOnly || plan.stages.compressor !== undefined) {
      throw new InvalidArgumentError({ argument: 'methods', value: plan.method, expected: 'full or KV methods (a document cache serves no prompt compressor)' });
    }
  }
  let document: string;
  let questions: string[];
  if (options.document !== undefined) {
    if (!options.questions?.length) throw new InvalidArgumentError({ argument: 'questions', value: options.questions, expected: 'one or more questions with a document' });
    document = options.document;
    questions = [...options.questions];
  } else ({ document, questions } = symbolicDocument(length, count));
  const needsDraft = plans.some((p) => p.needsDraft);
  const draftDir = needsDraft ? resolve(checkFolder('draft', options.draft)) : undefined;

  const models: OrtCausalLM[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'draft-bench-cache-'));
  try {
    const target = await loadModel(targetDir, { dtype, threads, raggedCache: plans.some((p) => p.needsRaggedCache) });
    models.push(target);
    const draft = draftDir ? await loadModel(draftDir, { dtype: draftDtype, threads }) : undefined;
    if (draft) models.push(draft);
    const pipelines = plans.map((plan) => createPipeline({ target, draft: plan.needsDraft ? draft : undefined, ...plan.stages }));
    const storeQueries = storeQueriesOption ?? (pipelines.some((p) => p.cachePolicy?.queryWindow === 'all') ? 'all' : undefined);
    const file = join(dir, 'document.dkv');
    let t = performance.now();
    const built = await buildDocumentCache({ target, draft, document, path: file, storeQueries, signal: options.signal });
    const buildMs = performance.now() - t;
    t = performance.now();
    const cache = await openDocumentCache(file, { target, draft, signal: options.signal });
    const openMs = performance.now() - t;
    try {
      const rows: CacheBenchRow[] = [];
      for (const [p, plan] of plans.entries()) {
        const pipeline = pipelines[p];
        const run = (ids: number[], cached: boolean): Promise<GenerationResultV1> =>
          pipeline.generate({ inputIds: ids }, { maxNewTokens, signal: options.signal, ...(cached ? { prefix: cache.prefix } : {}) });
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
        const row: CacheBenchRow = {
          method: plan.method,
          questions: questions.length,
          freshTtftMs: median(fresh),
          cachedTtftMs: median(cached),
          ttftRatio: median(fresh) / Math.max(1e-9, median(cached)),
          savedMsPerQuestion: median(fresh.map((f, i) => f - cached[i])),
          tokensEqual: equal,
        };
        rows.push(row);
        options.onProgress?.({ type: 'note', message: `bench cache: ${plan.method} done` });
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
