import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createPipeline, InvalidArgumentError } from '@draft/core';
import type { ModelDtype, OrtCausalLM } from '@draft/runtime';
import { markdownTable, parseIntList, parseList, runMeta, runName, skipReason, writeJson, writeText } from '../bench/common.js';
import { type EngineJob, runEngineInChild, summarizeRuns } from '../bench/engines.js';
import { defaultGgufPath, type LlamaCppKvType } from '../bench/llamacpp.js';
import { type BenchModels, benchDtypes, loadBenchModels } from '../bench/models.js';
import { Progress } from '../bench/progress.js';
import { fillerIds } from '../bench/ruler-tasks.js';
import { lineChart } from '../bench/svg.js';
import { openTransformers } from '../bench/transformers-peer.js';
import { readTaskFormat } from '../bench/task-format.js';
import { type MethodOptionMap, methodLabel, parseMethodOptions, withMethodOptions } from '../method-options.js';
import { type MethodPlan, planMethod } from '../methods.js';
import { bundledModelsDir } from '../model-dirs.js';
import { intOption } from '../options.js';
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

export interface PerfRow {
  /**
   * CLI method name, `transformers.js` (full KV in @huggingface/transformers on the same folder), or `llama.cpp` /
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
  /** The `--method-option`s of the method, when it had any. */
  methodOptions?: MethodOptionMap;
}

export interface PerfBenchJson {
  results: PerfRow[];
}

export const PERF_DEFAULTS = Object.freeze({
  methods: 'full,speckv,snapkv,streamingllm,laq,specpc',
  budget: 256,
  lengths: '1K,2K,4K,8K',
  newTokens: 32,
  repeats: 1,
  out: 'bench-results/perf',
});

/**
 * `draft bench perf`: TTFT, total time, decode tokens/s, draft share, kept KV bytes and peak RSS per method and
 * context length, with full KV and transformers.js rows as references, ratios side by side from one run.
 */
export async function runBenchPerf(flags: BenchPerfFlags, io: BenchIo): Promise<PerfBenchJson> {
  const { targetDir, draftDir } = perfModelDirs(flags, io);
  const methods = parseList(flags.methods ?? PERF_DEFAULTS.methods);
  if (!methods.includes('full')) methods.unshift('full');
  const budget = intOption('budget', flags.budget, 1) ?? PERF_DEFAULTS.budget;
  const lengths = parseIntList('lengths', flags.lengths ?? PERF_DEFAULTS.lengths, 16);
  const newTokens = intOption('new-tokens', flags['new-tokens'], 1) ?? PERF_DEFAULTS.newTokens;
  const repeats = intOption('repeats', flags.repeats, 1) ?? PERF_DEFAULTS.repeats;
  const windowSize = intOption('window', flags.window, 1);
  const threads = intOption('threads', flags.threads, 1);
  const dtypes = benchDtypes(flags);
  const out = resolve(flags.out ?? PERF_DEFAULTS.out);
  const methodOptions = parseMethodOptions(flags['method-option'], methods);
  const plans = methods.map((m) => planMethod(m, { budget: m === 'full' ? undefined : budget, windowSize, options: methodOptions[m] }));
  const peers = parseList(flags.peers ?? 'transformers.js');
  for (const p of peers) {
    if (p !== 'transformers.js' && p !== 'llama.cpp') throw new InvalidArgumentError({ argument: '--peers', value: p, expected: "'transformers.js' and/or 'llama.cpp'" });
  }
  const withTransformers = flags.transformers !== false && peers.includes('transformers.js');
  // llama.cpp twice: its default f16 KV cache, and f32 KV like ours.
  const llamaKvTypes: LlamaCppKvType[] = peers.includes('llama.cpp') ? ['f16', 'f32'] : [];
  const ggufPath = resolve(flags.gguf ?? defaultGgufPath(targetDir));
  mkdirSync(out, { recursive: true });

  const rows: PerfRow[] = [];
  const progress = new Progress(lengths.length * (methods.length + (withTransformers ? 1 : 0) + llamaKvTypes.length), io.stderr, io.tty ?? false);
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
        const row = await perfRun(plan, models, ids, length, plan.budgetKind === 'none' ? null : budget, newTokens, repeats, io.signal);
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
        const row = await llamaCppRun(ggufPath, kvType, models.target, ids, length, newTokens, repeats, threads ?? 2, io.signal);
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
          ...runMeta({ seeds: { prompt: 0 } }),
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
  const report: PerfBenchJson = { results: rows };
  writeText(join(out, 'summary.md'), perfMarkdown(rows, { newTokens, budget, repeats, target: targetDir }));
  writeText(join(out, 'latency-vs-length.svg'), perfChart(rows, 'latency'));
  writeText(join(out, 'memory-vs-length.svg'), perfChart(rows, 'memory'));
  writeJson(join(out, 'results.json'), report);
  return report;
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

/** Samples process RSS every 5 ms while `fn` runs (the ORT worker shares the process, so this covers it). */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peak };
  } finally {
    clearInterval(timer);
  }
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

/** Full fp32 KV of a prompt, computed: 2 · layers · KV heads · n · head dim · 4 bytes (peers report none). */
function fullKvBytes(ours: OrtCausalLM, n: number): number {
  const { numLayers, numKvHeads, headDim } = ours.info;
  return 2 * numLayers * numKvHeads * n * headDim * 4;
}

const NO_MEASUREMENT = { ttftMs: null, totalMs: null, decodeTokensPerSecond: null, draftShare: null, kvBytes: null, peakRssBytes: null };

async function transformersRun(
  targetDir: string,
  ours: OrtCausalLM,
  ids: number[],
  length: number,
  newTokens: number,
  repeats: number,
  threads?: number,
  dtype?: ModelDtype,
): Promise<PerfRow> {
  const base = { method: 'transformers.js', budget: null, length, newTokens };
  let engine: Awaited<ReturnType<typeof openTransformers>>;
  try {
    engine = await openTransformers({ targetDir, threads, dtype });
  } catch (error) {
    return { ...base, ...NO_MEASUREMENT, skipped: (error as Error).message.split('\n')[0] };
  }
  try {
    const results: { run: Awaited<ReturnType<typeof engine.greedy>>; peak: number }[] = [];
    for (let i = 0; i < repeats + 1; i++) {
      const { value: run, peak } = await withPeakRss(() => engine.greedy(ids, newTokens));
      // The first call is a warm-up, as for our runtime.
      if (i > 0 && run.tokens.length > 0) results.push({ run, peak });
    }
    const s = summarizeRuns(results.map((r) => r.run));
    return {
      ...base,
      ttftMs: s.ttftMs,
      totalMs: s.totalMs,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      draftShare: 0,
      kvBytes: fullKvBytes(ours, ids.length),
      peakRssBytes: Math.max(...results.map((r) => r.peak)),
      ...(engine.info.importedVia !== '@draft/cli' ? { note: `imported via ${engine.info.importedVia}` } : {}),
    };
  } catch (error) {
    return { ...base, ...NO_MEASUREMENT, skipped: `transformers.js failed: ${(error as Error).message.split('\n')[0]}` };
  } finally {
    await engine.dispose();
  }
}

const llamaCppMethod = (kvType: LlamaCppKvType) => (kvType === 'f16' ? 'llama.cpp' : 'llama.cpp-f32kv');

/** node-llama-cpp on the GGUF of the same weights, in its own process (so the peak RSS is its own). */
async function llamaCppRun(ggufPath: string, kvType: LlamaCppKvType, ours: OrtCausalLM, ids: number[], length: number, newTokens: number, repeats: number, threads: number, signal?: AbortSignal): Promise<PerfRow> {
  const base = { method: llamaCppMethod(kvType), budget: null, length, newTokens };
  if (!existsSync(ggufPath)) return { ...base, ...NO_MEASUREMENT, skipped: `${ggufPath} missing (pnpm --filter @draft/models make:gguf, or pass --gguf FILE)` };
  const job: EngineJob = { engine: 'llama.cpp', ggufPath, kvType, threads, inputIds: ids, newTokens, repeats };
  try {
    const r = await runEngineInChild(job, { signal });
    const s = summarizeRuns(r.runs);
    return {
      ...base,
      ttftMs: s.ttftMs,
      totalMs: s.totalMs,
      decodeTokensPerSecond: s.decodeTokensPerSecond,
      draftShare: 0,
      // f16 KV holds half the bytes of our fp32 cache.
      kvBytes: fullKvBytes(ours, ids.length) / (kvType === 'f16' ? 2 : 1),
      peakRssBytes: r.peakRssBytes,
      note: `${r.info.binary}; flash attention ${String(r.info.flashAttention)}; batch ${r.info.batchSize}; own process`,
    };
  } catch (error) {
    return { ...base, ...NO_MEASUREMENT, skipped: `llama.cpp failed: ${(error as Error).message.split('\n')[0]}` };
  }
}

function perfMarkdown(rows: PerfRow[], info: { newTokens: number; budget: number; repeats: number; target: string }): string {
  const mib = (b: number | null) => (b === null ? '–' : (b / 2 ** 20).toFixed(1));
  const x = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(2)}×`);
  const table = markdownTable(
    ['method', 'length', 'budget', 'TTFT ms', 'vs full', 'total ms', 'vs full', 'decode tok/s', 'vs full', 'draft share', 'KV MiB', 'vs full', 'peak KV MiB', 'peak RSS MiB'],
    rows.map((r) =>
      r.skipped
        ? [methodLabel(r.method, r.methodOptions), r.length, r.budget ?? '–', `skipped: ${r.skipped}`, '', '', '', '', '', '', '', '', '', '']
        : [
            methodLabel(r.method, r.methodOptions),
            r.length,
            r.budget ?? '–',
            (r.ttftMs ?? 0).toFixed(1),
            x(r.vsFull?.ttft),
            (r.totalMs ?? 0).toFixed(1),
            x(r.vsFull?.totalTime),
            (r.decodeTokensPerSecond ?? 0).toFixed(1),
            x(r.vsFull?.decodeTokensPerSecond),
            `${(100 * (r.draftShare ?? 0)).toFixed(1)}%`,
            mib(r.kvBytes),
            x(r.vsFull?.kvBytes),
            mib(r.peakKvBytes ?? null),
            mib(r.peakRssBytes),
          ],
    ),
  );
  return `# Performance\n\nTarget ${info.target}; budget C = ${info.budget}; ${info.newTokens} new tokens, greedy; median of ${info.repeats}; ratios are to full KV at the same length, measured in the same process run. Peak RSS is the whole process (sampled every 5 ms), so it also holds the models and earlier allocations; peak KV is the target worker's KV allocator peak during the run (prefill chunks, compressed caches, decode steps)${rows.some((r) => r.method.startsWith('llama.cpp')) ? '; llama.cpp rows (node-llama-cpp on a GGUF of the same weights, full KV: `llama.cpp` its default f16 cache, `llama.cpp-f32kv` f32) ran alone in a child process, so their peak RSS is their own. Peer decode tok/s = (tokens − 1) / (last − first token time)' : ''}.\n\n${table}\n`;
}

function perfChart(rows: PerfRow[], kind: 'latency' | 'memory'): string {
  const ok = rows.filter((r) => !r.skipped);
  const methods = [...new Set(ok.map((r) => r.method))];
  const series = (pick: (r: PerfRow) => number | null) =>
    methods.map((m) => ({ name: methodLabel(m, ok.find((r) => r.method === m)?.methodOptions), points: ok.filter((r) => r.method === m && pick(r) !== null).map((r) => [r.length, pick(r) as number] as [number, number]) }));
  if (kind === 'latency') {
    return lineChart({
      title: 'Latency vs context length',
      xLabel: 'context length (tokens, log scale)',
      yLabel: 'ms',
      xLog: true,
      panels: [
        { title: 'time to first token (ms)', series: series((r) => r.ttftMs) },
        { title: 'total time (ms)', series: series((r) => r.totalMs) },
      ],
    });
  }
  return lineChart({
    title: 'Memory vs context length',
    xLabel: 'context length (tokens, log scale)',
    yLabel: 'MiB',
    xLog: true,
    panels: [
      { title: 'kept KV after prefill (MiB)', series: series((r) => (r.kvBytes === null ? null : r.kvBytes / 2 ** 20)) },
      { title: 'peak process RSS (MiB)', series: series((r) => (r.peakRssBytes === null ? null : r.peakRssBytes / 2 ** 20)) },
    ],
  });
}
