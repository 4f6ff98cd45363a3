import {
  type Budget,
  budgetFor,
  type BudgetOption,
  type CausalLMV1,
  forwardWithPrefix,
  greedyContinue,
  InvalidArgumentError,
  type KvCacheV1,
  type LookaheadInputV1,
  type LookaheadProviderV1,
  type LookaheadResultV1,
  type PolicyConfig,
  type PoolType,
  requireInteger,
  requireOneOf,
  throwIfAborted,
  UnsupportedCapabilityError,
  validateBudgetOption,
  validateKernel,
} from '@draft/core';
import { selectSnapKV } from './select-snapkv.js';

/** SnapKV budget when neither the option nor the run gives one. */
const DEFAULT_BUDGET = 256;

export interface TargetPseudoLookaheadOptions {
  /** Pseudo-answer tokens the target generates. Default 8 (a port choice: "a few tokens"). */
  maxNewTokens?: number;
  /**
   * C of the SnapKV cache the target generates with (number or core `Budget`). Default: the run's KV budget
   * (`LookaheadInputV1.budget`, which core's pipeline fills with its resolved C), else 256.
   */
  budget?: BudgetOption;
  /** SnapKV window W. Default 32. */
  windowSize?: number;
  /** SnapKV pooling kernel, odd. Default 7. */
  kernelSize?: number;
  /** SnapKV pooling. Default 'max'. */
  poolType?: PoolType;
}

/**
 * LAQ++'s lookahead (ALGORITHMS.md "Baselines"): the **target** writes a short pseudo-answer with a
 * SnapKV-compressed cache — prefill the prompt capturing the last W + 1 queries, keep SnapKV's C entries per
 * (layer, KV head), re-run the last prompt token at position n − 1, then greedy decode (EOS kept). Its
 * tokens are already in the target's vocabulary. Needs no draft; the target must offer 'queryCapture' and
 * 'kvSelection'. For n ≤ C the cache is not compressed.
 *
 * Budget: its own `budget` option when set; otherwise the run's C from `LookaheadInputV1.budget` (in core's
 * pipeline, the same C the LAQ++ cache policy keeps), otherwise 256. The window W must be < that C.
 */
export class TargetPseudoLookahead implements LookaheadProviderV1 {
  readonly specificationVersion = 'v1' as const;
  readonly type: string = 'target-pseudo-lookahead';
  readonly needs = 'target' as const;
  readonly maxNewTokens: number;
  /** The configured SnapKV budget; undefined = the run's C (`LookaheadInputV1.budget`), else 256. */
  readonly budget: Budget | undefined;
  readonly windowSize: number;
  readonly kernelSize: number;
  readonly poolType: PoolType;

  constructor(options: TargetPseudoLookaheadOptions = {}) {
    this.maxNewTokens = requireInteger('maxNewTokens', options.maxNewTokens ?? 8, 0);
    this.windowSize = requireInteger('windowSize', options.windowSize ?? 32, 1);
    this.budget = validateBudgetOption(options.budget, this.windowSize);
    this.kernelSize = validateKernel(options.kernelSize ?? 7);
    this.poolType = requireOneOf('poolType', options.poolType ?? 'max', ['max', 'avg'] as const);
  }

  async lookahead(input: LookaheadInputV1): Promise<LookaheadResultV1> {
    const { target, signal } = input;
    const ids = Array.from(input.inputIds);
    const n = ids.length;
    if (n === 0) throw new InvalidArgumentError({ argument: 'inputIds', value: [], expected: 'a non-empty prompt' });
    if (this.maxNewTokens === 0) return { tokenIds: [], text: '', draftTokens: 0 };
    const budget = budgetFor(this.budget ?? input.budget ?? DEFAULT_BUDGET, n, this.windowSize);
    const compress = n > budget;
    if (compress) for (const capability of ['queryCapture', 'kvSelection'] as const) requireCapability(target, capability);
    throwIfAborted(signal);
    input.onProgress?.({ stage: 'lookahead', completed: 0, total: this.maxNewTokens });
    // A stored target prefix (document cache) saves the document's prefill; the SnapKV window's queries that
    // fall inside it come from the prefix (or the whole prompt runs when it stores too few).
    const prefill = await forwardWithPrefix({
      model: target,
      inputIds: ids,
      prefix: input.prefixes?.target,
      onMismatch: 'full',
      captureQueries: compress ? this.windowSize + 1 : undefined,
      signal,
    });
    const owned: KvCacheV1[] = [prefill.cache];
    try {
      let cache = prefill.cache;
      let logits = prefill.logits;
      if (compress) {
        const { numLayers, numHeads, numKvHeads, headDim } = target.info;
        if (!prefill.queries || prefill.queries.length !== numLayers) {
          // The backend claims queryCapture but returned none: a capability failure, as in SpecPC / SpecPrefill.
          throw new UnsupportedCapabilityError({
            capability: 'queryCapture',
            component: 'TargetPseudoLookahead (LAQ++)',
            backend: target.name,
            message: `TargetPseudoLookahead (LAQ++): the target '${target.name}' returned ${prefill.queries?.length ?? 'no'} captured query layers; expected ${numLayers}.`,
          });
        }
        const kept: Int32Array[][] = [];
        for (let layer = 0; layer < numLayers; layer++) {
          throwIfAborted(signal);
          const keys = await cache.readKeys(layer);
          kept.push(
            selectSnapKV({
              queries: [prefill.queries[layer]],
              keys: [keys],
              numHeads,
              numKvHeads,
              headDim,
              promptLength: n,
              budget,
              windowSize: this.windowSize,
              kernelSize: this.kernelSize,
              poolType: this.poolType,
            })[0],
          );
        }
        const compact = await cache.gather(kept);
        owned.push(compact);
        // Re-run the last prompt token over the compacted cache at its own position (as the pipeline does).
        const rerun = await target.forward({ inputIds: [ids[n - 1]], positionIds: [n - 1], cache: compact, signal });
        owned.push(rerun.cache);
        cache = rerun.cache;
        logits = rerun.logits;
      }
      const { tokens } = await greedyContinue({ model: target, cache, logits, maxNewTokens: this.maxNewTokens, signal, onProgress: input.onProgress, stage: 'lookahead' });
      return { tokenIds: tokens, text: target.tokenizer.decode(tokens, { skipSpecialTokens: true }), draftTokens: 0 };
    } finally {
      for (const cache of owned) cache.dispose();
    }
  }

  toConfig(): PolicyConfig {
    return {
      type: 'target-pseudo-lookahead',
      maxNewTokens: this.maxNewTokens,
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      windowSize: this.windowSize,
      kernelSize: this.kernelSize,
      poolType: this.poolType,
    };
  }
}

function requireCapability(model: CausalLMV1, capability: 'queryCapture' | 'kvSelection'): void {
  if (!model.capabilities[capability]) {
    throw new UnsupportedCapabilityError({ capability, component: 'TargetPseudoLookahead (LAQ++)', backend: model.name });
  }
}

/** `new TargetPseudoLookahead(options)`. */
export function targetPseudoLookahead(options: TargetPseudoLookaheadOptions = {}): TargetPseudoLookahead {
  return new TargetPseudoLookahead(options);
}
