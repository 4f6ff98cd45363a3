/**
 * Engines measured side by side, each in its own child process so that its peak RSS is its own: our pipeline
 * (any method `planMethod` knows), transformers.js and node-llama-cpp. One job = one engine × one prompt; the child warms up,
 * runs `repeats` greedy generations and reports per-run timestamps and the process's peak RSS.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPipeline } from '@draft/core';
import { planMethod } from '@draft/methods';
import { type GreedyRun, type LlamaCppKvType, openLlamaCpp } from './llamacpp.js';

export { defaultGgufPath } from './llamacpp.js';
import type { ModelDtype } from '@draft/runtime';
import { loadBenchModels } from './models.js';
import { useNativeKernelsIfBuilt } from './native-kernels.js';
import { processPeakRssBytes } from './peers.js';
import { openTransformers } from './transformers-peer.js';

interface JobBase {
  inputIds: number[];
  newTokens: number;
  /** Measured runs after one warm-up run on a short prompt. */
  repeats: number;
  threads: number;
}

export type EngineJob =
  | (JobBase & { engine: 'draft'; method: string; budget?: number; windowSize?: number; targetDir: string; draftDir?: string; /** `loadModel({ layerwise })` for the target. */ layerwise?: boolean; /** `loadModel({ decodeEngine })` for target and draft. */ decodeEngine?: 'ort' | 'native'; /** `loadModel({ prefillEngine })` for target and draft. */ prefillEngine?: 'ort' | 'native'; /** `loadModel({ kvStorage })` for target and draft. */ kvStorage?: 'float32' | 'float16'; /** `loadModel({ dtype })` for target and draft (which onnx/ file: 'fp16' = model_fp16.onnx). */ dtype?: ModelDtype })
  | (JobBase & { engine: 'transformers.js'; targetDir: string })
  | (JobBase & { engine: 'llama.cpp'; ggufPath: string; kvType: LlamaCppKvType; flashAttention?: boolean | 'auto' });

export interface EngineResult {
  runs: GreedyRun[];
  /** Peak RSS of the engine's process (model load, warm-up and runs). */
  peakRssBytes: number;
  /** Kept KV bytes after prefill (our pipeline only). */
  kvBytes?: number;
  /** Peak KV bytes of the target's allocator over the measured runs (our pipeline only). */
  peakKvBytes?: number;
  /** Engine details worth recording (binary, flash attention, batch size, import path). */
  info: Record<string, unknown>;
}

const WARMUP_IDS = [1, 2, 3, 4, 5, 6, 7, 8];
/** Longer than the gaps between a lookahead's decode steps, far shorter than a target prefill. */
const DRAFT_RELEASE_IDLE_MS = 100;
/**
 * The draft's prefill chunks materialise at most 8 MiB of scores per layer (the default is 32): its lookahead
 * runs on top of the target's arena from the previous request, so its peak is the run's (SpecKV at 8K on the
 * perf pair: 898 → 848–856 MiB peak at the same TTFT; decision record 2026-12-06-heap-trim.md).
 */
const DRAFT_PREFILL_SCORE_BUDGET_BYTES = 8 * 2 ** 20;

/** Runs a job in this process (the child entry calls this; tests may too). */
export async function runEngine(job: EngineJob): Promise<EngineResult> {
  const runs: GreedyRun[] = [];
  if (job.engine === 'llama.cpp') {
    const engine = await openLlamaCpp({ ggufPath: job.ggufPath, threads: job.threads, kvType: job.kvType, flashAttention: job.flashAttention, contextSize: job.inputIds.length + job.newTokens + 1 });
    try {
      await engine.greedy(WARMUP_IDS, 2);
      for (let i = 0; i < job.repeats; i++) runs.push(await engine.greedy(job.inputIds, job.newTokens));
      return { runs, peakRssBytes: processPeakRssBytes(), info: { ...engine.info } };
    } finally {
      await engine.dispose();
    }
  }
  if (job.engine === 'transformers.js') {
    const engine = await openTransformers({ targetDir: job.targetDir, threads: job.threads });
    try {
      await engine.greedy(WARMUP_IDS, 2);
      for (let i = 0; i < job.repeats; i++) runs.push(await engine.greedy(job.inputIds, job.newTokens));
      return { runs, peakRssBytes: processPeakRssBytes(), info: { ...engine.info } };
    } finally {
      await engine.dispose();
    }
  }
  // Our pipeline, planned and loaded exactly as `draft bench perf` does (native kernels, as the CLI uses them).
  const kernels = await useNativeKernelsIfBuilt();
  const plan = planMethod(job.method, { budget: job.method === 'full' ? undefined : job.budget, windowSize: job.windowSize });
  // The draft runs once per request and then idles through the target's prefill: its session is released
  // meanwhile (`releaseMemoryWhenIdleMs`), so the run's peak is not the draft's prefill peak plus the target's.
  // The native heap trimmer (registered with the kernels above) returns what both free.
  const models = await loadBenchModels({
    targetDir: job.targetDir,
    draftDir: job.draftDir,
    plans: [plan],
    threads: job.threads,
    layerwise: job.layerwise,
    decodeEngine: job.decodeEngine,
    prefillEngine: job.prefillEngine,
    kvStorage: job.kvStorage,
    ...(job.dtype ? { dtype: job.dtype, draftDtype: job.dtype } : {}),
    draftReleaseMemoryWhenIdleMs: DRAFT_RELEASE_IDLE_MS,
    draftPrefillScoreBudgetBytes: DRAFT_PREFILL_SCORE_BUDGET_BYTES,
  });
  try {
    const pipeline = createPipeline({ target: models.target, draft: plan.needsDraft ? models.draft : undefined, ...plan.stages });
    let kvBytes = 0;
    const greedy = async (inputIds: number[], maxNewTokens: number): Promise<GreedyRun> => {
      const stamps: number[] = [];
      const start = performance.now();
      const r = await pipeline.generate({ inputIds }, { maxNewTokens, onToken: () => stamps.push(performance.now()) });
      kvBytes = r.kvBytes.afterPrefill;
      return { tokens: r.tokens, ttftMs: stamps[0] - start, decodeMs: stamps[stamps.length - 1] - stamps[0], totalMs: performance.now() - start };
    };
    await createPipeline({ target: models.target }).generate({ inputIds: WARMUP_IDS }, { maxNewTokens: 2 });
    if (models.draft) await models.draft.generate({ inputIds: WARMUP_IDS }, { maxNewTokens: 2 });
    await models.target.kvMemoryStats({ resetPeak: true });
    for (let i = 0; i < job.repeats; i++) runs.push(await greedy(job.inputIds, job.newTokens));
    const peakKvBytes = (await models.target.kvMemoryStats()).peakLiveBytes;
    return { runs, kvBytes, peakKvBytes, peakRssBytes: processPeakRssBytes(), info: { method: plan.method, pattern: models.target.graph.pattern, layerwise: models.target.graph.layerwise, decodeEngine: models.target.graph.decodeEngine, prefillEngine: models.target.graph.prefillEngine, kernels, ...(models.draft ? { draftSessionReleases: (await models.draft.sessionMemoryStats()).releases } : {}) } };
  } finally {
    await models.dispose();
  }
}

/** The built child entry (`dist/engine-child.js`), from dist or (under vitest) from src. */
function childEntry(): string {
  for (const rel of ['./engine-child.js', '../dist/engine-child.js']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('dist/engine-child.js missing: build @draft/bench first (pnpm --filter @draft/bench build)');
}

/**
 * Runs a job in a fresh Node process. The job travels on stdin, never on the command line (8K-token prompts; and
 * onnxruntime-node crashes in workers of a process with a ≥ ~15 KB argument, TOOLCHAIN.md).
 */
export function runEngineInChild(job: EngineJob, options: { signal?: AbortSignal } = {}): Promise<EngineResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childEntry()], { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        const parsed = JSON.parse(last) as EngineResult | { error: string };
        if ('error' in parsed) reject(new Error(parsed.error));
        else if (code !== 0) reject(new Error(`engine child exited with ${code}: ${err.slice(-500)}`));
        else resolve(parsed);
      } catch {
        reject(new Error(`engine child exited with ${code} and no result: ${err.slice(-500)}`));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Medians over runs: TTFT, decode time and decode tok/s as (tokens − 1) / (last − first token time). */
export function summarizeRuns(runs: readonly GreedyRun[]): { ttftMs: number; totalMs: number; decodeMs: number; decodeTokensPerSecond: number } {
  return {
    ttftMs: median(runs.map((r) => r.ttftMs)),
    totalMs: median(runs.map((r) => r.totalMs)),
    decodeMs: median(runs.map((r) => r.decodeMs)),
    decodeTokensPerSecond: median(runs.map((r) => (r.decodeMs > 0 ? (r.tokens.length - 1) / (r.decodeMs / 1000) : 0))),
  };
}
