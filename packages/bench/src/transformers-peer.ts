/**
 * @huggingface/transformers as a benchmark peer on the same ONNX folder (full KV, the same weight file, same ORT threads).
 * Not a dependency of this package: imported from here when installed beside it; inside this monorepo from
 * @draft/runtime's devDependencies (recorded in `info.importedVia`).
 */
import { basename, dirname } from 'node:path';
import type { GreedyRun } from './llamacpp.js';
import { importOptionalPeer } from './peers.js';

interface TransformersModule {
  AutoModelForCausalLM: {
    from_pretrained(name: string, options: Record<string, unknown>): Promise<{ generate(o: Record<string, unknown>): Promise<{ data: ArrayLike<bigint> }>; dispose?: () => Promise<void> }>;
  };
  env: { allowRemoteModels: boolean; localModelPath: string };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => unknown;
}

export interface TransformersEngine {
  readonly info: { importedVia: string };
  greedy(inputIds: readonly number[], maxNewTokens: number): Promise<GreedyRun>;
  dispose(): Promise<void>;
}

/** Loads the folder in transformers.js; throws with the reason when the package is not resolvable. */
export async function openTransformers(options: { targetDir: string; threads?: number; dtype?: string }): Promise<TransformersEngine> {
  const { module, via, reason } = await importOptionalPeer<TransformersModule>('@huggingface/transformers', '@draft/runtime');
  if (!module) throw new Error(reason);
  module.env.allowRemoteModels = false;
  module.env.localModelPath = `${dirname(options.targetDir)}/`;
  const model = await module.AutoModelForCausalLM.from_pretrained(basename(options.targetDir), {
    // The same weight file as ours: both read the dtype names and, without one, transformers.js_config.dtype, else fp32 (on CPU).
    ...(options.dtype ? { dtype: options.dtype } : {}),
    local_files_only: true,
    device: 'cpu',
    session_options: { intraOpNumThreads: options.threads ?? 2, interOpNumThreads: 1 },
  });
  return {
    info: { importedVia: via ?? '' },
    async greedy(inputIds, maxNewTokens) {
      const n = inputIds.length;
      const input = new module.Tensor('int64', BigInt64Array.from(inputIds.map(BigInt)), [1, n]);
      const mask = new module.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
      const stamps: number[] = [];
      // generate() calls put() once with the prompt, then once per generated token.
      const streamer = { put: () => stamps.push(performance.now()), end: () => {} };
      const start = performance.now();
      const out = await model.generate({ input_ids: input, attention_mask: mask, max_new_tokens: maxNewTokens, min_new_tokens: maxNewTokens, do_sample: false, streamer });
      const totalMs = performance.now() - start;
      const gen = stamps.slice(1);
      return { tokens: Array.from(out.data, Number).slice(n), ttftMs: gen[0] - start, decodeMs: gen[gen.length - 1] - gen[0], totalMs };
    },
    async dispose() {
      await model.dispose?.();
    },
  };
}
