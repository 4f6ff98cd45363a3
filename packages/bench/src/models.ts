import { loadModel, type ModelDtype, type OrtCausalLM } from '@draft/runtime';
import type { MethodPlan } from '@draft/methods';
import type { BenchSettings } from './run-fingerprint.js';

/** Methods whose selections differ per KV head or layer (need `raggedCache`). */
export const RAGGED_METHODS = Object.freeze(['adakv', 'pyramidkv']);

export interface BenchModels {
  target: OrtCausalLM;
  draft?: OrtCausalLM;
  /** Whether the target was loaded with a ragged cache (and why not, when asked for and refused). */
  ragged: boolean;
  raggedRefused?: string;
  dispose(): Promise<void>;
}

/** The weight files a bench loads (undefined = the folder's default). */
export interface BenchDtypes {
  dtype?: ModelDtype;
  draftDtype?: ModelDtype;
}

/**
 * Bench settings entries for the dtypes given (none when absent, so runs recorded before the dtype options
 * existed still resume; keyed by the CLI flags that set them, as recorded since): the model fingerprint hashes
 * every file under onnx/, not which one was loaded.
 */
export function dtypeSettings(dtypes: BenchDtypes, needsDraft: boolean): BenchSettings {
  return { ...(dtypes.dtype ? { dtype: dtypes.dtype } : {}), ...(needsDraft && dtypes.draftDtype ? { 'draft-dtype': dtypes.draftDtype } : {}) };
}

/**
 * Loads the target (with a ragged per-head cache when a requested method needs one; if the graph refuses,
 * e.g. fused GroupQueryAttention, it loads without and those methods are skipped by the pipeline's typed
 * error) and the draft when a plan needs it.
 */
export async function loadBenchModels(
  options: {
    targetDir: string;
    draftDir?: string;
    plans: readonly MethodPlan[];
    threads?: number;
    /** Load the target layer-wise (`loadModel({ layerwise })`). */
    layerwise?: boolean;
    /** The draft's `releaseMemoryWhenIdleMs` (the engine bench: its peak RSS). */
    draftReleaseMemoryWhenIdleMs?: number;
    /** The draft's `prefillScoreBudgetBytes` (the engine bench: its prefill peak sits on the target's arena). */
    draftPrefillScoreBudgetBytes?: number;
    /** `loadModel({ decodeEngine })` for target and draft ('native' needs @draft/cuda's engine registered). */
    decodeEngine?: 'ort' | 'native';
    /** `loadModel({ prefillEngine })` for target and draft ('native' needs decodeEngine 'native'). */
    prefillEngine?: 'ort' | 'native';
    /** `loadModel({ kvStorage })` for target and draft ('float16' needs both engines 'native'). */
    kvStorage?: 'float32' | 'float16';
  } & BenchDtypes,
): Promise<BenchModels> {
  const engines = {
    ...(options.decodeEngine ? { decodeEngine: options.decodeEngine } : {}),
    ...(options.prefillEngine ? { prefillEngine: options.prefillEngine } : {}),
    ...(options.kvStorage ? { kvStorage: options.kvStorage } : {}),
  };
  const layerwise = { ...(options.layerwise ? { layerwise: true } : {}), ...engines };
  const wantRagged = options.plans.some((p) => RAGGED_METHODS.includes(p.method));
  const wantDraft = options.plans.some((p) => p.needsDraft);
  let target: OrtCausalLM;
  let ragged = false;
  let raggedRefused: string | undefined;
  if (wantRagged) {
    try {
      target = await loadModel(options.targetDir, { raggedCache: true, threads: options.threads, dtype: options.dtype, ...layerwise });
      ragged = true;
    } catch (error) {
      if ((error as { code?: string })?.code !== 'UNSUPPORTED_CAPABILITY') throw error;
      raggedRefused = (error as Error).message;
      target = await loadModel(options.targetDir, { threads: options.threads, dtype: options.dtype, ...layerwise });
    }
  } else {
    target = await loadModel(options.targetDir, { threads: options.threads, dtype: options.dtype, ...layerwise });
  }
  let draft: OrtCausalLM | undefined;
  try {
    const draftOptions = {
      threads: options.threads,
      dtype: options.draftDtype,
      releaseMemoryWhenIdleMs: options.draftReleaseMemoryWhenIdleMs,
      prefillScoreBudgetBytes: options.draftPrefillScoreBudgetBytes,
      ...engines,
    };
    draft = wantDraft && options.draftDir ? await loadModel(options.draftDir, draftOptions) : undefined;
  } catch (error) {
    await target.dispose();
    throw error;
  }
  return {
    target,
    draft,
    ragged,
    raggedRefused,
    async dispose() {
      await Promise.all([target.dispose(), draft?.dispose()]);
    },
  };
}
