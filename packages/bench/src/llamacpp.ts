/**
 * node-llama-cpp (llama.cpp) as a benchmark peer: greedy generation from token ids on a GGUF of the same weights
 * (`pnpm --filter @draft/models make:gguf`). node-llama-cpp is an optional peer: nothing here imports it
 * statically, and only its types are used at build time.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as NodeLlamaCpp from 'node-llama-cpp';
import { importOptionalPeer } from './peers.js';

export type LlamaCppKvType = 'f16' | 'f32';

/** Where `make:gguf` writes a model folder's GGUF (the models package's `ggufPath`). */
export function defaultGgufPath(modelDir: string, dtype: 'f32' | 'f16' = 'f32'): string {
  return join(modelDir, 'gguf', `model-${dtype}.gguf`);
}

export interface LlamaCppEngineOptions {
  ggufPath: string;
  /** CPU threads for evaluation (also the Llama instance's maximum). */
  threads: number;
  /** KV cache element type: llama.cpp's default f16, or f32 for a like-for-like comparison with an f32 runtime. */
  kvType: LlamaCppKvType;
  /** Context size to allocate (prompt + new tokens at least). */
  contextSize: number;
  /**
   * llama.cpp's flash attention; default `'auto'` (its default: on for the CPU). On, it rounds attention inputs to
   * f16 even with an f32 KV cache (measured on models/perf: a logit gap of 0.0137 read back as −0.0037), so exact
   * greedy agreement needs `false`.
   */
  flashAttention?: boolean | 'auto';
}

/** One greedy generation: timestamps as the engine-neutral fields every peer reports. */
export interface GreedyRun {
  tokens: number[];
  /** Call → first generated token (prefill + first argmax). */
  ttftMs: number;
  /** First → last generated token (tokens.length − 1 decode steps). */
  decodeMs: number;
  totalMs: number;
}

export interface LlamaCppEngine {
  readonly info: { flashAttention: boolean | 'auto'; threads: number; kvType: LlamaCppKvType; contextSize: number; batchSize: number; binary: string };
  greedy(inputIds: readonly number[], maxNewTokens: number): Promise<GreedyRun>;
  dispose(): Promise<void>;
}

/** Why node-llama-cpp cannot run here (not installed, no prebuilt binary for this machine), or undefined. */
export async function llamaCppUnavailable(): Promise<string | undefined> {
  const { module, reason } = await importOptionalPeer<typeof NodeLlamaCpp>('node-llama-cpp');
  if (!module) return reason;
  try {
    await module.getLlama({ build: 'never', gpu: false, logLevel: module.LlamaLogLevel.error, progressLogs: false });
    return undefined;
  } catch (error) {
    return `node-llama-cpp binary does not load here (${(error as Error).message.split('\n')[0]})`;
  }
}

/**
 * Loads the GGUF on the CPU with the prebuilt binary (`build: 'never'`: never compile llama.cpp from a benchmark).
 * Token ids go straight to the context sequence (no tokenizer, so no BOS is added).
 */
export async function openLlamaCpp(options: LlamaCppEngineOptions): Promise<LlamaCppEngine> {
  if (!existsSync(options.ggufPath)) throw new Error(`${options.ggufPath} missing (pnpm --filter @draft/models make:gguf <model>)`);
  const { module: m, reason } = await importOptionalPeer<typeof NodeLlamaCpp>('node-llama-cpp');
  if (!m) throw new Error(reason);
  const llama = await m.getLlama({ build: 'never', gpu: false, maxThreads: options.threads, logLevel: m.LlamaLogLevel.error, progressLogs: false });
  const model = await llama.loadModel({ modelPath: options.ggufPath, gpuLayers: 0 });
  const kv = options.kvType === 'f32' ? 'F32' : 'F16';
  let context: NodeLlamaCpp.LlamaContext;
  try {
    context = await model.createContext({
      contextSize: options.contextSize,
      threads: options.threads,
      flashAttention: options.flashAttention ?? 'auto',
      experimentalKvCacheKeyType: kv,
      experimentalKvCacheValueType: kv,
    });
  } catch (error) {
    await model.dispose();
    throw error;
  }
  const sequence = context.getSequence();
  return {
    info: {
      flashAttention: context.flashAttention,
      threads: options.threads,
      kvType: options.kvType,
      contextSize: context.contextSize,
      batchSize: context.batchSize,
      binary: `node-llama-cpp ${llama.buildType} (${llama.gpu === false ? 'cpu' : llama.gpu})`,
    },
    async greedy(inputIds, maxNewTokens) {
      await sequence.clearHistory();
      const tokens: number[] = [];
      const stamps: number[] = [];
      const start = performance.now();
      // temperature 0 = argmax; EOG tokens are yielded so that every run generates maxNewTokens tokens.
      for await (const token of sequence.evaluate(inputIds as NodeLlamaCpp.Token[], { temperature: 0, yieldEogToken: true })) {
        stamps.push(performance.now());
        tokens.push(token);
        if (tokens.length >= maxNewTokens) break;
      }
      const end = performance.now();
      return { tokens, ttftMs: stamps[0] - start, decodeMs: stamps[stamps.length - 1] - stamps[0], totalMs: end - start };
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
