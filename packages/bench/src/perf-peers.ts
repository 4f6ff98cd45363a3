// The peer rows of `runPerf`: transformers.js and node-llama-cpp on the same weights, full KV.
import { existsSync } from 'node:fs';
import type { ModelDtype, OrtCausalLM } from '@draft/runtime';
import { type EngineJob, runEngineInChild, summarizeRuns } from './engines.js';
import type { LlamaCppKvType } from './llamacpp.js';
import { withPeakRss } from './peers.js';
import type { PerfRow } from './perf.js';
import { openTransformers } from './transformers-peer.js';

/** Full fp32 KV of a prompt, computed: 2 · layers · KV heads · n · head dim · 4 bytes (peers report none). */
function fullKvBytes(ours: OrtCausalLM, n: number): number {
  const { numLayers, numKvHeads, headDim } = ours.info;
  return 2 * numLayers * numKvHeads * n * headDim * 4;
}

const NO_MEASUREMENT = { ttftMs: null, totalMs: null, decodeTokensPerSecond: null, draftShare: null, kvBytes: null, peakRssBytes: null };

/** transformers.js on the same folder and weight file (full KV), in this process; the first call is a warm-up. */
export async function transformersRun(
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
      ...(engine.info.importedVia !== '@draft/bench' ? { note: `imported via ${engine.info.importedVia}` } : {}),
    };
  } catch (error) {
    return { ...base, ...NO_MEASUREMENT, skipped: `transformers.js failed: ${(error as Error).message.split('\n')[0]}` };
  } finally {
    await engine.dispose();
  }
}

/** The row name of a llama.cpp KV type. */
export const llamaCppMethod = (kvType: LlamaCppKvType) => (kvType === 'f16' ? 'llama.cpp' : 'llama.cpp-f32kv');

/** node-llama-cpp on the GGUF of the same weights, in its own process (so the peak RSS is its own). */
export async function llamaCppRun(ggufPath: string, kvType: LlamaCppKvType, ours: OrtCausalLM, ids: number[], length: number, newTokens: number, repeats: number, threads: number, signal?: AbortSignal): Promise<PerfRow> {
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

