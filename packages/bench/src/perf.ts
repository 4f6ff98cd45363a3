import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPipeline, InvalidArgumentError } from '@draft/core';
import { type MethodOptionMap, type MethodPlan, planMethod, withMethodOptions } from '@draft/methods';
import { defaultGgufPath, type LlamaCppKvType } from './llamacpp.js';
import { type BenchModels, loadBenchModels } from './models.js';
import { type BenchMethodOptions, type BenchModelOptions, type BenchRunOptions, checkInteger, checkIntegers, checkMethodOptions, checkModelOptions, checkNames, MIN_PROMPT_LENGTH } from './options.js';
import { withPeakRss } from './peers.js';
import { llamaCppMethod, llamaCppRun, transformersRun } from './perf-peers.js';
import { perfChart, perfMarkdown } from './perf-report.js';
import { ProgressReporter } from './progress.js';
import { fillerIds } from './ruler-tasks.js';
import { runName, writeJson, writeText } from './run-files.js';
import { runMeta } from './run-meta.js';
import { skipReason } from './skip-reason.js';
import { readTaskFormat } from './task-format.js';

/** A peer engine timed beside ours on the same weights. */
export type PerfPeer = 'transformers.js' | 'llama.cpp';

/** `runPerf` options: the settings of `draft bench perf`'s flags, as values. */
export interface PerfOptions extends BenchModelOptions, BenchMethodOptions, BenchRunOptions {
  /** C for every budgeted method (default 256). */
  budget?: number;
  /** Context lengths in tokens, each ≥ 16 (default 1K, 2K, 4K, 8K). */
  lengths?: readonly number[];
  /** Generated tokens per run (default 32). */
  newTokens?: number;
  /** Measured runs per row; medians are reported (default 1). */
  repeats?: number;
  /** Peers (default transformers.js; `[]` for none; llama.cpp gives an f16-KV and an f32-KV row). */
  peers?: readonly PerfPeer[];
  /** GGUF of the target for llama.cpp (default `<target>/gguf/model-f32.gguf`, written by `make:gguf`). */
  gguf?: string;
}

export interface PerfRow {
  /**
   * Method name, `transformers.js` (full KV in @huggingface/transformers on the same folder), or `llama.cpp` /
   * `llama.cpp-f32kv` (full KV in node-llama-cpp on a GGUF of the same weights, f16 / f32 KV cache).
   */
  method: string;
  budget: number | null;
  length: number;
  ttftMs: number | null;
  totalMs: number | null;
  decodeTokensPerSecond: number | null;
  /** (draft + compression) time / total time. */
  draftShare: number | null;
  kvBytes: number | null;
  /**
   * Highest process RSS sampled every 5 ms during the run (ORT runs in a worker of this process); for llama.cpp
   * rows the peak RSS of the child process that ran it alone.
   */
  peakRssBytes: number | null;
  /**
   * Peak KV bytes held by the target's worker allocator during the run (caches and forward steps in flight,
   * capacity slack included; `OrtCausalLM.kvMemoryStats`). Our rows only.
   */
  peakKvBytes?: number | null;
  newTokens: number;
  /** Ratios to full KV of the same length, same process run. */
  vsFull?: { ttft: number; totalTime: number; decodeTokensPerSecond: number; kvBytes: number };
  skipped?: string;
  /** e.g. how transformers.js was imported. */
  note?: string;
  /** The method options of the method, when it had any. */
  methodOptions?: MethodOptionMap;
}

/** What `runPerf` returns, results.json holds and `draft bench perf --json` prints. */
export interface PerfReport {
  results: PerfRow[];
}

export const PERF_DEFAULTS = Object.freeze({
  methods: Object.freeze(['full', 'speckv', 'snapkv', 'streamingllm', 'laq', 'specpc']),
  budget: 256,
  lengths: Object.freeze([1024, 2048, 4096, 8192]),
  peers: Object.freeze(['transformers.js'] as PerfPeer[]),
  newTokens: 32,
  repeats: 1,
  out: 'bench-results/perf',
});

/**
 * TTFT, total time, decode tokens/s, draft share, kept KV bytes and peak RSS per method and context length, with
 * full KV and the peers (transformers.js, llama.cpp) as references, ratios side by side from one run. Writes
 * per-run files, summary.md, latency-vs-length.svg, memory-vs-length.svg and results.json in `out`.
 */
export async function runPerf(options: PerfOptions): Promise<PerfReport> {
  const { target: targetDir, draft: draftDir, threads, ...dtypes } = checkModelOptions(options);
  const methods = checkNames('methods', options.methods ?? PERF_DEFAULTS.methods);
  if (!methods.includes('full')) methods.unshift('full');
  const budget = checkInteger('budget', options.budget, 1) ?? PERF_DEFAULTS.budget;
  const lengths = checkIntegers('lengths', options.lengths ?? PERF_DEFAULTS.lengths, MIN_PROMPT_LENGTH);
  const newTokens = checkInteger('newTokens', options.newTokens, 1) ?? PERF_DEFAULTS.newTokens;
  const repeats = checkInteger('repeats', options.repeats, 1) ?? PERF_DEFAULTS.repeats;
  const windowSize = checkInteger('windowSize', options.windowSize, 1);
  const out = resolve(options.out ?? PERF_DEFAULTS.out);
  const methodOptions = checkMethodOptions(options.methodOptions, methods);
  const plans = methods.map((m) => planMethod(m, { budget: m === 'full' ? undefined : budget, windowSize, options: methodOptions[m] }));
  const peers = options.peers ?? PERF_DEFAULTS.peers;
  for (const p of peers) {
    if (p !== 'transformers.js' && p !== 'llama.cpp') throw new InvalidArgumentError({ argument: 'peers', value: p, expected: "'transformers.js' and/or 'llama.cpp'" });
  }
  const withTransformers = peers.includes('transformers.js');
  // llama.cpp twice: its default f16 KV cache, and f32 KV like ours.
  const llamaKvTypes: LlamaCppKvType[] = peers.includes('llama.cpp') ? ['f16', 'f32'] : [];
  const ggufPath = resolve(options.gguf ?? defaultGgufPath(targetDir));
  mkdirSync(out, { recursive: true });

  const rows: PerfRow[] = [];
  const progress = new ProgressReporter(lengths.length * (methods.length + (withTransformers ? 1 : 0) + llamaKvTypes.length), options.onProgress);
  const models = await loadBenchModels({ targetDir, draftDir, plans, threads, ...dtypes });
  const format = readTaskFormat(targetDir);
  try {
    // Warm-up: the first ORT runs of a session are slower (allocations); not measured.
    await createPipeline({ target: models.target }).generate({ inputIds: [1, 2, 3, 4] }, { maxNewTokens: 2 });
    if (models.draft) await models.draft.generate({ inputIds: [1, 2, 3, 4] }, { maxNewTokens: 2 });
    for (const length of lengths) {
      const ids = fillerIds({ length, seed: 0, tokenizer: models.target.tokenizer, format });
      const lengthRows: PerfRow[] = [];
      for (const plan of plans) {
        const label = `${plan.method} L${length}`;
        progress.update(label, 'running');
        const row = await perfRun(plan, models, ids, length, plan.budgetKind === 'none' ? null : budget, newTokens, repeats, options.signal);
        lengthRows.push(row);
        progress.finish(label, row.skipped ? `skipped (${row.skipped})` : `TTFT ${row.ttftMs?.toFixed(0)} ms, ${row.decodeTokensPerSecond?.toFixed(1)} tok/s`);
      }
      if (withTransformers) {
        progress.update(`transformers.js L${length}`, 'running');
        const row = await transformersRun(targetDir, models.target, ids, length, newTokens, repeats, threads, dtypes.dtype);
        lengthRows.push(row);
        progress.finish(`transformers.js L${length}`, row.skipped ? `skipped (${row.skipped})` : `TTFT ${row.ttftMs?.toFixed(0)} ms`);
      }
      for (const kvType of llamaKvTypes) {
        const label = `${llamaCppMethod(kvType)} L${length}`;
        progress.update(label, 'running');
        const row = await llamaCppRun(ggufPath, kvType, models.target, ids, length, newTokens, repeats, threads ?? 2, options.signal);
        lengthRows.push(row);
        progress.finish(label, row.skipped ? `skipped (${row.skipped})` : `TTFT ${row.ttftMs?.toFixed(0)} ms, ${row.decodeTokensPerSecond?.toFixed(1)} tok/s`);
      }
      const full = lengthRows.find((r) => r.method === 'full' && !r.skipped);
      for (const r of lengthRows) {
        if (full && !r.skipped && r.ttftMs !== null && full.ttftMs && full.totalMs && full.decodeTokensPerSecond && full.kvBytes) {
          r.vsFull = {
            ttft: r.ttftMs / full.ttftMs,
            totalTime: (r.totalMs ?? 0) / full.totalMs,
            decodeTokensPerSecond: (r.decodeTokensPerSecond ?? 0) / full.decodeTokensPerSecond,
            kvBytes: (r.kvBytes ?? 0) / full.kvBytes,
          };
        }
        const dir = join(out, 'runs', runName({ method: r.method, budget: r.budget, length, task: 'perf', options: r.methodOptions }));
        writeJson(join(dir, 'config.json'), {
          method: r.method,
          budget: r.budget,
          length,
          newTokens,
          repeats,
          windowSize: windowSize ?? null,
          methodOptions: r.methodOptions ?? {},
          threads: threads ?? null,
          dtype: dtypes.dtype ?? null,
          draftDtype: dtypes.draftDtype ?? null,
          target: targetDir,
          draft: draftDir,
        });
        writeJson(join(dir, 'run_meta.json'), {
          ...runMeta({ seeds: { prompt: 0 } }, options.recordPackages),
          raggedCache: models.ragged,
          models: { target: { dir: targetDir, ...models.target.info }, draft: models.draft ? { dir: draftDir, ...models.draft.info } : null },
        });
        writeText(join(dir, 'predictions.jsonl'), `${JSON.stringify({ promptTokens: ids.length, ...r })}\n`);
        writeJson(join(dir, 'metrics.json'), r);
      }
      rows.push(...lengthRows);
    }
  } finally {
    progress.end();
    await models.dispose();
  }
  const report: PerfReport = { results: rows };
  writeText(join(out, 'summary.md'), perfMarkdown(rows, { newTokens, budget, repeats, target: targetDir }));
  writeText(join(out, 'latency-vs-length.svg'), perfChart(rows, 'latency'));
  writeText(join(out, 'memory-vs-length.svg'), perfChart(rows, 'memory'));
  writeJson(join(out, 'results.json'), report);
  return report;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function perfRun(plan: MethodPlan, models: BenchModels, ids: number[], length: number, budget: number | null, newTokens: number, repeats: number, signal?: AbortSignal): Promise<PerfRow> {
  const base = { method: plan.method, budget, length, newTokens, ...withMethodOptions(plan.methodOptions) };
  const measured: PerfRow[] = [];
  try {
    for (let i = 0; i < repeats; i++) {
      await models.target.kvMemoryStats({ resetPeak: true });
      const { value: r, peak } = await withPeakRss(async () => {
        if (plan.draftOnly) return models.draft!.generate({ inputIds: ids }, { maxNewTokens: newTokens, signal });
        const pipeline = createPipeline({ target: models.target, draft: plan.needsDraft ? models.draft : undefined, ...plan.stages });
        return pipeline.generate({ inputIds: ids }, { maxNewTokens: newTokens, signal });
      });
      const t = r.timings;
      measured.push({
        ...base,
        ttftMs: t.ttftMs,
        totalMs: t.totalMs,
        decodeTokensPerSecond: t.decodeTokensPerSecond,
        draftShare: t.totalMs > 0 ? (t.draftMs + t.compressMs) / t.totalMs : 0,
        kvBytes: r.kvBytes.afterPrefill,
        peakRssBytes: peak,
        peakKvBytes: plan.draftOnly ? null : (await models.target.kvMemoryStats()).peakLiveBytes,
      });
    }
  } catch (error) {
    const reason = skipReason(error);
    if (!reason) throw error;
    return { ...base, ttftMs: null, totalMs: null, decodeTokensPerSecond: null, draftShare: null, kvBytes: null, peakRssBytes: null, skipped: reason };
  }
  const pick = (k: 'ttftMs' | 'totalMs' | 'decodeTokensPerSecond' | 'draftShare') => median(measured.map((m) => m[k] as number));
  return { ...measured[0], ttftMs: pick('ttftMs'), totalMs: pick('totalMs'), decodeTokensPerSecond: pick('decodeTokensPerSecond'), draftShare: pick('draftShare'), peakRssBytes: Math.max(...measured.map((m) => m.peakRssBytes ?? 0)), peakKvBytes: measured[0].peakKvBytes === null ? null : Math.max(...measured.map((m) => m.peakKvBytes ?? 0)) };
}

