import { callbackToAsyncIterable } from '../generation/async-iterable.js';
import { type DecodeLoopResult, decodeLoop } from '../generation/decode-loop.js';
import { draftTokensForTarget } from '../generation/draft-tokens-for-target.js';
import { forwardWithPrefix, prefixApplies } from '../generation/forward-with-prefix.js';
import { isUniform, keptCounts, validateKeptIndices } from '../primitives/kept-indices.js';
import { createPolicy } from '../registry/policy-registry.js';
import { type Budget, resolveBudget } from '../spec/budget.js';
import type { CapabilityName } from '../spec/capabilities.js';
import type { KeptIndices } from '../spec/common.js';
import {
  AbortError,
  DraftError,
  InvalidArgumentError,
  PolicyOutputError,
  PromptTooLongError,
  throwIfAborted,
  UnsupportedCapabilityError,
  VocabMismatchError,
} from '../spec/errors.js';
import type { GenerationOptionsV1, GenerationResultV1, TimingsV1, UsageV1 } from '../spec/generation.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1, TextStreamEndV1, TextTargetV1 } from '../spec/model.js';
import type { PrefixCachesV1 } from '../spec/prefix-cache.js';
import type {
  CachePolicyV1,
  DecodePolicyV1,
  LookaheadProviderV1,
  PolicyConfig,
  PromptCompressionResultV1,
  PromptCompressorV1,
  SelectionContextV1,
} from '../spec/policy.js';
import { compressAcrossTokenizers, DEFAULT_MAX_UNKNOWN_TOKEN_FRACTION, draftEncoding, keptText, runCompressor } from './compress-stage.js';

/** Default budgets when neither the pipeline nor the policy config gives one (ALGORITHMS.md defaults). */
export const DEFAULT_KV_BUDGET: Budget = Object.freeze({ tokens: 256 });
export const DEFAULT_PROMPT_BUDGET: Budget = Object.freeze({ tokens: 1024 });

export interface PipelineOptions {
  /** An in-process model, or a text-only endpoint (then only prompt compression applies). */
  target: CausalLMV1 | TextTargetV1;
  draft?: CausalLMV1;
  /** Stage 1, an instance or a registered config. */
  compressor?: PromptCompressorV1 | PolicyConfig;
  /** Stage 2. */
  lookahead?: LookaheadProviderV1 | PolicyConfig;
  /** Stage 3. */
  cachePolicy?: CachePolicyV1 | PolicyConfig;
  /** Stage 4. */
  decodePolicy?: DecodePolicyV1 | PolicyConfig;
  /**
   * KV budget C per (layer, KV head), window included. Default: the cache policy config's `budget` (a number C
   * or a `Budget`), else 256 tokens.
   */
  budget?: Budget;
  /**
   * Prompt-compression budget. Default: the compressor config's `budget` (number or `Budget`), else `budget`, else
   * 1024 tokens. Counted in the compressor's (= the draft's) tokens when draft and target share a tokenizer, and
   * in **target** tokens when they do not: the target then receives about that many tokens of the original text
   * (kept draft tokens are mapped back to their spans of the prompt; the draft budget is calibrated, see
   * `compressAcrossTokenizers`). Through a text target it is counted in draft tokens.
   */
  promptBudget?: Budget;
  /**
   * Largest fraction of the prompt's draft tokens that may be the draft tokenizer's unknown token when a
   * compressor hands a target of another tokenizer the kept original text (default 0.5). Above it a
   * `PromptNotRepresentableError` is thrown before any model runs.
   */
  maxUnknownTokenFraction?: number;
  /**
   * When draft and target vocabularies differ (tokenizer fingerprints), let prompts and lookahead cross as text
   * and be re-tokenised (default true). False: throw VocabMismatchError at construction instead.
   */
  allowTextCrossing?: boolean;
  /** Forwarded to the target prefill (bounds activation memory on long prompts). */
  prefillChunkSize?: number;
}

/** A prompt: text (encoded with the target's tokenizer, special tokens added), or token ids of the target. */
export type PipelineInput = string | { inputIds: readonly number[]; text?: string };

export interface PipelineGenerateOptions extends GenerationOptionsV1 {
  /**
   * Lookahead tokens to request from the stage-2 provider (default: maxNewTokens, as SpecKV's L = maxNewTokens).
   * Not passed to the prompt compressor, which drafts with its own configured lookahead.
   */
  lookaheadTokens?: number;
  /**
   * Stored KV of the prompt's first tokens (e.g. a document cache from `@draft/runtime`'s `openDocumentCache`):
   * the prompt's token ids must start with `prefix.target.inputIds` and go on for at least one token; only the
   * rest is prefilled, and every KV method selects from the stored entries plus the new ones exactly as from a
   * fresh prefill. `prefix.draft` serves lookahead providers that run the draft. Not with a prompt compressor
   * (it rewrites the prompt): InvalidArgumentError. `usage.cachedPromptTokens` reports the reused tokens.
   */
  prefix?: PrefixCachesV1;
}

export interface PipelineStream extends AsyncIterable<string> {
  /** The full result once the stream ends (rejects with the stream's error). */
  readonly result: Promise<GenerationResultV1>;
}

export interface Pipeline {
  readonly target: CausalLMV1 | TextTargetV1;
  readonly draft: CausalLMV1 | undefined;
  readonly compressor: PromptCompressorV1 | undefined;
  readonly lookahead: LookaheadProviderV1 | undefined;
  readonly cachePolicy: CachePolicyV1 | undefined;
  readonly decodePolicy: DecodePolicyV1 | undefined;
  /**
   * Runs compress → lookahead → target prefill (prompt ++ lookahead, capturing queries) → policy.select →
   * gather → re-run of the last prompt token at its own position (n − 1) → decode. With n ≤ C there is no
   * lookahead and no selection (plain generation); with n ≤ the prompt budget there is no compression.
   * `usage.keptKvTokens[layer][kvHead]` counts the prompt entries the policy kept (the re-run last token is
   * not counted); without selection it is n for every head.
   */
  generate(prompt: PipelineInput, options: PipelineGenerateOptions): Promise<GenerationResultV1>;
  /**
   * Like generate, yielding text pieces as they are released. Through a text target, `finishReason` is the one
   * the target's stream returns (`TextStreamEndV1`); a stream that returns none gets 'length' when the completion,
   * counted with the draft's tokenizer, reached maxNewTokens, else 'stop' (always 'stop' without a draft).
   */
  stream(prompt: PipelineInput, options: PipelineGenerateOptions): PipelineStream;
}

function isTextTarget(target: CausalLMV1 | TextTargetV1): target is TextTargetV1 {
  return (target as TextTargetV1).kind === 'text';
}

function instantiate<T extends { specificationVersion: 'v1' }>(value: T | PolicyConfig | undefined, kind: 'cache' | 'compressor' | 'decode' | 'lookahead'): T | undefined {
  if (value === undefined) return undefined;
  if ((value as T).specificationVersion === 'v1') return value as T;
  return createPolicy(value as PolicyConfig, { kind }) as unknown as T;
}

/** A policy config's `budget`: a `Budget`, or a number C (= `{ tokens: C }`), as the policy options accept. */
function configBudget(value: unknown): Budget | undefined {
  const b = (value as { budget?: unknown } | undefined)?.budget;
  if (typeof b === 'number') return { tokens: b };
  return typeof b === 'object' && b !== null ? (b as Budget) : undefined;
}

/**
 * Builds a pipeline and validates that every stage's required capabilities are offered (UnsupportedCapabilityError
 * naming the capability and the component), that stages needing a draft have one (a compressor in front of a
 * text target always does: the draft tokenises the prompt), and that vocabularies can cross.
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  const { target, draft } = options;
  if (!target || (target as { specificationVersion?: string }).specificationVersion !== 'v1') {
    throw new InvalidArgumentError({ argument: 'target', value: typeof target, expected: 'a CausalLMV1 or TextTargetV1' });
  }
  const compressor = instantiate<PromptCompressorV1>(options.compressor, 'compressor');
  const lookahead = instantiate<LookaheadProviderV1>(options.lookahead, 'lookahead');
  const cachePolicy = instantiate<CachePolicyV1>(options.cachePolicy, 'cache');
  const decodePolicy = instantiate<DecodePolicyV1>(options.decodePolicy, 'decode');
  const kvBudget = options.budget ?? configBudget(options.cachePolicy) ?? DEFAULT_KV_BUDGET;
  const promptBudget = options.promptBudget ?? configBudget(options.compressor) ?? options.budget ?? DEFAULT_PROMPT_BUDGET;
  resolveBudget(kvBudget, 1);
  resolveBudget(promptBudget, 1);
  const maxUnknownTokenFraction = options.maxUnknownTokenFraction ?? DEFAULT_MAX_UNKNOWN_TOKEN_FRACTION;
  if (!(maxUnknownTokenFraction >= 0 && maxUnknownTokenFraction <= 1)) {
    throw new InvalidArgumentError({ argument: 'maxUnknownTokenFraction', value: maxUnknownTokenFraction, expected: 'a number in [0, 1]' });
  }

  const backend = target.name;
  const requireCapability = (capability: CapabilityName, component: string) => {
    if (!target.capabilities[capability]) throw new UnsupportedCapabilityError({ capability, component, backend: `target '${backend}'` });
  };
  if (isTextTarget(target)) {
    // A text endpoint offers none of the KV capabilities: name the first one each stage needs.
    if (cachePolicy) requireCapability(cachePolicy.requires[0] ?? 'kvSelection', `cache policy '${cachePolicy.type}'`);
    if (lookahead) requireCapability('tokenIds', `lookahead '${lookahead.type}'`);
    if (decodePolicy) requireCapability(decodePolicy.requires[0] ?? 'kvSelection', `decode policy '${decodePolicy.type}'`);
  } else {
    if (cachePolicy) {
      const component = `cache policy '${cachePolicy.type}'`;
      for (const c of cachePolicy.requires) requireCapability(c, component);
      requireCapability('kvSelection', component);
      // Query-free policies (StreamingLLM, key-norm) need no capture.
      if (cachePolicy.queryWindow === 'all') requireCapability('allQueryCapture', component);
      else if (cachePolicy.queryWindow > 0 || cachePolicy.usesLookahead) requireCapability('queryCapture', component);
    }
    if (decodePolicy) for (const c of decodePolicy.requires) requireCapability(c, `decode policy '${decodePolicy.type}'`);
    if (lookahead && !cachePolicy) {
      throw new InvalidArgumentError({ argument: 'lookahead', value: lookahead.type, expected: 'a cachePolicy to use the lookahead tokens' });
    }
    if (cachePolicy?.usesLookahead && !lookahead) {
      throw new InvalidArgumentError({
        argument: 'lookahead',
        value: undefined,
        expected: `a lookahead provider: cache policy '${cachePolicy.type}' scores with lookahead tokens`,
      });
    }
  }
  if (compressor && isTextTarget(target) && !draft) {
    // A text target has no tokenizer here: the prompt reaches a compressor as draft token ids.
    throw new UnsupportedCapabilityError({
      capability: 'draft',
      component: `prompt compressor '${compressor.type}'`,
      backend: `target '${target.name}'`,
      message: `prompt compressor '${compressor.type}' in front of text target '${target.name}' needs a draft model to tokenise the prompt; pass { draft }.`,
    });
  }
  if (compressor?.needs === 'draft' && !draft) {
    throw new UnsupportedCapabilityError({ capability: 'draft', component: `prompt compressor '${compressor.type}'`, message: `prompt compressor '${compressor.type}' needs a draft model; pass { draft }.` });
  }
  if (lookahead?.needs === 'draft' && !draft) {
    throw new UnsupportedCapabilityError({ capability: 'draft', component: `lookahead '${lookahead.type}'`, message: `lookahead '${lookahead.type}' needs a draft model; pass { draft }.` });
  }
  const targetTokenizer = isTextTarget(target) ? undefined : target.tokenizer;
  const sharedVocab = !draft || !targetTokenizer || draft.tokenizer.fingerprint === targetTokenizer.fingerprint;
  if (draft && targetTokenizer && !sharedVocab && options.allowTextCrossing === false) {
    throw new VocabMismatchError(
      `Draft '${draft.name}' and target '${target.name}' have different vocabularies (fingerprints '${draft.tokenizer.fingerprint}' and '${targetTokenizer.fingerprint}') and allowTextCrossing is false.`,
      { details: { draft: draft.tokenizer.fingerprint, target: targetTokenizer.fingerprint } },
    );
  }

  const run = (prompt: PipelineInput, generation: PipelineGenerateOptions, onText?: (piece: string) => void) =>
    isTextTarget(target)
      ? runText({ target, draft, compressor, promptBudget, maxUnknownTokenFraction }, prompt, generation, onText)
      : runCausal(
          { target, draft, compressor, lookahead, cachePolicy, decodePolicy, kvBudget, promptBudget, maxUnknownTokenFraction, sharedVocab, prefillChunkSize: options.prefillChunkSize },
          prompt,
          generation,
          onText,
        );

  return Object.freeze({
    target,
    draft,
    compressor,
    lookahead,
    cachePolicy,
    decodePolicy,
    generate: (prompt: PipelineInput, generation: PipelineGenerateOptions) => run(prompt, generation),
    stream(prompt: PipelineInput, generation: PipelineGenerateOptions): PipelineStream {
      return callbackToAsyncIterable<string, GenerationResultV1>((push) => run(prompt, generation, push));
    },
  });
}

interface CausalStages {
  target: CausalLMV1;
  draft?: CausalLMV1;
  compressor?: PromptCompressorV1;
  lookahead?: LookaheadProviderV1;
  cachePolicy?: CachePolicyV1;
  decodePolicy?: DecodePolicyV1;
  kvBudget: Budget;
  promptBudget: Budget;
  maxUnknownTokenFraction: number;
  sharedVocab: boolean;
  prefillChunkSize?: number;
}

const now = () => performance.now();

function emptyTimings(): TimingsV1 {
  return { compressMs: 0, draftMs: 0, prefillMs: 0, selectMs: 0, decodeMs: 0, ttftMs: 0, totalMs: 0, decodeTokensPerSecond: 0 };
}

/** Stage 1 with the budget counted in the compressor's own tokens. Returns undefined when the prompt fits the budget. */
async function compressStage(
  compressor: PromptCompressorV1 | undefined,
  draft: CausalLMV1 | undefined,
  promptBudget: Budget,
  text: string,
  draftIds: readonly number[],
  generation: PipelineGenerateOptions,
): Promise<PromptCompressionResultV1 | undefined> {
  if (!compressor) return undefined;
  const budget = resolveBudget(promptBudget, draftIds.length);
  if (draftIds.length <= budget) return undefined;
  return runCompressor(compressor, { draft, text, draftIds, budget, signal: generation.signal, onProgress: generation.onProgress });
}

async function runCausal(
  s: CausalStages,
  prompt: PipelineInput,
  generation: PipelineGenerateOptions,
  onText?: (piece: string) => void,
): Promise<GenerationResultV1> {
  const started = now();
  const timings = emptyTimings();
  const { target, draft } = s;
  const signal = generation.signal;
  const progress = (stage: string, completed: number, total?: number) => generation.onProgress?.({ stage, completed, total });
  let ids: number[] = typeof prompt === 'string' ? target.tokenizer.encode(prompt) : Array.from(prompt.inputIds);
  const text = typeof prompt === 'string' ? prompt : (prompt.text ?? target.tokenizer.decode(ids, { skipSpecialTokens: true }));
  const promptTokens = ids.length;
  if (promptTokens === 0) throw new InvalidArgumentError({ argument: 'prompt', value: prompt, expected: 'at least one token' });
  const prefix = generation.prefix?.target;
  if (prefix) {
    if (s.compressor) {
      throw new InvalidArgumentError({
        argument: 'prefix',
        value: `prompt compressor '${s.compressor.type}'`,
        expected: 'no prompt compressor with a stored prefix (compression rewrites the prompt, so the stored KV would not match it)',
      });
    }
    if (!prefixApplies(prefix, ids)) {
      throw new InvalidArgumentError({
        argument: 'prefix',
        value: `${prefix.inputIds.length} stored tokens`,
        expected: `a prompt of ${promptTokens} tokens that starts with the stored tokens and adds at least one`,
      });
    }
  }
  let reusedTokens = 0;
  let draftTokens = 0;
  let positions: Int32Array | undefined;
  let draftTokenIds: number[] | undefined;

  // Stage 1: prompt compression (draft vocabulary; crosses as text when the vocabularies differ).
  if (s.compressor) {
    throwIfAborted(signal);
    const t = now();
    progress('compress', 0, 1);
    if (s.sharedVocab || !draft) {
      const compressed = await compressStage(s.compressor, draft, s.promptBudget, text, ids, generation);
      if (compressed) {
        draftTokens += compressed.draftTokens;
        ids = Array.from(compressed.inputIds);
        if (compressed.positionIds && target.capabilities.positionIds) positions = Int32Array.from(compressed.positionIds);
        draftTokenIds = compressed.draftTokenIds;
      }
    } else {
      // Another tokenizer: the budget is in target tokens and the target re-tokenises the kept original text.
      // Kept positions are not carried (they count draft tokens); the target's positions are re-indexed.
      const budget = resolveBudget(s.promptBudget, promptTokens);
      if (promptTokens > budget) {
        const component = `prompt compressor '${s.compressor.type}'`;
        const encoding = draftEncoding({ draft, target: target.name, component, text, maxUnknownTokenFraction: s.maxUnknownTokenFraction });
        const crossed = await compressAcrossTokenizers({
          compressor: s.compressor,
          draft,
          targetTokenizer: target.tokenizer,
          text,
          encoding,
          budget,
          targetPromptTokens: promptTokens,
          signal,
          onProgress: generation.onProgress,
        });
        draftTokens += crossed.draftTokens;
        ids = crossed.targetIds;
        // SpecKV-PC's lookahead reuses the compression run's draft tokens: they cross as text.
        const produced = crossed.result.draftTokenIds;
        if (produced && produced.length > 0) {
          const stoppedAtEos = draft.info.eosTokenIds.includes(produced[produced.length - 1]);
          draftTokenIds = draftTokensForTarget({ tokens: produced, stoppedAtEos, draftTokenizer: draft.tokenizer, target }).tokenIds;
        }
      }
    }
    timings.compressMs = now() - t;
    progress('compress', 1, 1);
  }

  const n = ids.length;
  const positionOf = (i: number) => (positions ? positions[i] : i);
  const lastPromptPosition = positionOf(n - 1);
  if (lastPromptPosition + 1 > target.info.maxPositions) throw new PromptTooLongError({ promptTokens: lastPromptPosition + 1, maxPositions: target.info.maxPositions });
  const budget = s.cachePolicy ? resolveBudget(s.kvBudget, n) : Number.POSITIVE_INFINITY;
  const { numLayers, numKvHeads, numHeads, headDim } = target.info;

  // Every cache made here is disposed here, except the one handed back by decode (disposed at the end too).
  const owned = new Set<KvCacheV1>();
  const own = (c: KvCacheV1) => {
    owned.add(c);
    return c;
  };
  const release = (c: KvCacheV1 | undefined) => {
    if (c && owned.delete(c)) c.dispose();
  };
  let ttftAt: number | undefined;
  try {
    let cache: KvCacheV1;
    let firstLogits: Float32Array;
    let kept: number[][];

    if (!s.cachePolicy || n <= budget) {
      // Plain generation: no lookahead, no selection.
      throwIfAborted(signal);
      const t = now();
      progress('prefill', 0, n);
      const result = prefix
        ? await forwardWithPrefix({ model: target, inputIds: ids, prefix, signal, chunkSize: s.prefillChunkSize, component: `target '${target.name}'` })
        : await target.forward({ inputIds: ids, positionIds: positions, signal, chunkSize: s.prefillChunkSize });
      cache = own(result.cache);
      if (prefix) reusedTokens = prefix.inputIds.length;
      firstLogits = result.logits;
      timings.prefillMs = now() - t;
      progress('prefill', n, n);
      kept = cache.lengths.map((heads) => heads.map((v) => v));
    } else {
      const policy = s.cachePolicy;
      // Stage 2: lookahead.
      let lookaheadIds: number[] = [];
      if (s.lookahead) {
        throwIfAborted(signal);
        const t = now();
        progress('lookahead', 0);
        const la = await s.lookahead.lookahead({
          inputIds: ids,
          text: target.tokenizer.decode(ids, { skipSpecialTokens: true }),
          maxNewTokens: generation.lookaheadTokens ?? generation.maxNewTokens,
          target,
          draft,
          draftTokenIds,
          budget,
          signal,
          onProgress: generation.onProgress,
          ...(generation.prefix ? { prefixes: generation.prefix } : {}),
        });
        lookaheadIds = Array.from(la.tokenIds);
        draftTokens += la.draftTokens;
        timings.draftMs = now() - t;
        progress('lookahead', lookaheadIds.length);
      }
      const L = lookaheadIds.length;
      // Stage 3: prefill prompt ++ lookahead, capturing the window queries.
      throwIfAborted(signal);
      let t = now();
      progress('prefill', 0, n + L);
      const queryCount = policy.queryWindow === 'all' ? n + L : Math.min(n, policy.queryWindow) + L;
      const prefillPositions = positions
        ? Int32Array.from({ length: n + L }, (_, i) => (i < n ? positions[i] : lastPromptPosition + 1 + (i - n)))
        : undefined;
      const captureQueries = policy.queryWindow === 'all' ? ('all' as const) : queryCount > 0 ? queryCount : undefined;
      const prefillIds = L > 0 ? ids.concat(lookaheadIds) : ids;
      const source = `cache policy '${policy.type}'`;
      const baseContext = { numLayers, numHeads, numKvHeads, headDim, promptLength: n, lookaheadLength: L, budget, queryCount, signal };
      let compact: KvCacheV1;
      let selection: KeptIndices;
      const selectLayer = policy.selectLayer?.bind(policy);
      if (!prefix && selectLayer && captureQueries !== 'all' && target.prefillSelect) {
        // Layer-wise: each layer is selected right after its attention, so one layer's full KV exists at a time.
        const perLayer: Int32Array[][] = [];
        let selectMs = 0;
        const result = await target.prefillSelect({
          inputIds: prefillIds,
          positionIds: prefillPositions,
          captureQueries: captureQueries ?? 0,
          signal,
          chunkSize: s.prefillChunkSize,
          selectLayer: async ({ layer, keys, queries }) => {
            const started = now();
            const only = (what: string) => async (l: number) => {
              if (l !== layer) throw new PolicyOutputError(`${source} read the ${what} of layer ${l} while selecting layer ${layer}; a policy with selectLayer must read only its own layer.`, { details: { layer: l } });
              return what === 'keys' ? keys : queries;
            };
            const heads = await selectLayer({ ...baseContext, queries: only('queries'), keys: only('keys') }, layer);
            validateKeptIndices([heads], { numLayers: 1, numKvHeads, limit: n - 1, source });
            perLayer[layer] = heads;
            checkRagged(perLayer.filter(Boolean), target, policy.type);
            progress('select', layer + 1, numLayers);
            selectMs += now() - started;
            return heads;
          },
        });
        compact = own(result.cache);
        selection = perLayer;
        timings.selectMs = selectMs;
        timings.prefillMs = now() - t - selectMs;
        progress('prefill', n + L, n + L);
      } else {
        // With a stored prefix only the rest of the prompt and the lookahead run; the window's earlier queries come from the prefix.
        const prefill = prefix
          ? await forwardWithPrefix({ model: target, inputIds: prefillIds, prefix, captureQueries, signal, chunkSize: s.prefillChunkSize, component: source })
          : await target.forward({ inputIds: prefillIds, positionIds: prefillPositions, captureQueries, signal, chunkSize: s.prefillChunkSize });
        if (prefix) reusedTokens = prefix.inputIds.length;
        const full = own(prefill.cache);
        timings.prefillMs = now() - t;
        progress('prefill', n + L, n + L);

        t = now();
        const queries = prefill.queries;
        const context: SelectionContextV1 = {
          ...baseContext,
          async queries(layer) {
            const q = queries?.[layer];
            if (!q) throw new DraftError('INTERNAL', `target '${target.name}' returned no captured queries for layer ${layer}.`, { details: { layer } });
            return q;
          },
          keys: (layer) => full.readKeys(layer),
        };
        progress('select', 0, numLayers);
        selection = await policy.select(context);
        throwIfAborted(signal);
        validateKeptIndices(selection, { numLayers, numKvHeads, limit: n - 1, source });
        checkRagged(selection, target, policy.type);
        // Consumed: the full cache's layers go as the compact ones are made (peak: full + one layer's kept entries).
        compact = own(await full.gather(selection, { consume: true }));
        release(full);
        timings.selectMs = now() - t;
        progress('select', numLayers, numLayers);
      }

      // Re-run the last prompt token at its own position over the compacted cache (ALGORITHMS.md SpecKV step 5).
      t = now();
      const rerun = await target.forward({ inputIds: [ids[n - 1]], positionIds: [lastPromptPosition], cache: compact, signal });
      cache = own(rerun.cache);
      release(compact);
      timings.prefillMs += now() - t;
      if (cache.nextPosition !== lastPromptPosition + 1) {
        throw new DraftError(
          'INTERNAL',
          `target '${target.name}' cache continues at position ${cache.nextPosition} after the re-run at ${lastPromptPosition}; a gathered cache must continue after the largest position it holds.`,
        );
      }
      firstLogits = rerun.logits;
      kept = keptCounts(selection);
    }

    const afterPrefill = cache.byteSize();
    // Stage 4: decode.
    progress('decode', 0, generation.maxNewTokens);
    let decoded: DecodeLoopResult;
    try {
      decoded = await decodeLoop({
        model: target,
        cache,
        firstLogits,
        generation: {
          ...generation,
          onToken: (token) => {
            ttftAt ??= now();
            generation.onToken?.(token);
          },
        },
        decodePolicy: s.decodePolicy,
        promptLength: n,
        onText,
      });
    } catch (error) {
      const partial = (error as AbortError).partial as DecodeLoopResult | undefined;
      if (error instanceof AbortError && partial?.cache && partial.cache !== cache) partial.cache.dispose();
      throw error;
    }
    if (decoded.cache !== cache) own(decoded.cache);
    const final = decoded.cache.byteSize();
    timings.decodeMs = decoded.decodeMs;
    timings.totalMs = now() - started;
    timings.ttftMs = (ttftAt ?? now()) - started;
    timings.decodeTokensPerSecond = decoded.decodeMs > 0 ? decoded.tokens.length / (decoded.decodeMs / 1000) : 0;
    const usage: UsageV1 = {
      promptTokens,
      compressedPromptTokens: n,
      keptKvTokens: kept,
      completionTokens: decoded.tokens.length,
      draftTokens,
      ...(prefix ? { cachedPromptTokens: reusedTokens } : {}),
    };
    return { text: decoded.text, tokens: decoded.tokens, finishReason: decoded.finishReason, usage, timings, kvBytes: { afterPrefill, final } };
  } finally {
    for (const c of owned) c.dispose();
    owned.clear();
  }
}

function checkRagged(selection: KeptIndices, target: CausalLMV1, policyType: string): void {
  const component = `cache policy '${policyType}'`;
  if (!target.capabilities.raggedKvHeads && selection.some((heads) => !isUniform([heads]))) {
    throw new UnsupportedCapabilityError({ capability: 'raggedKvHeads', component, backend: `target '${target.name}'` });
  }
  if (!target.capabilities.raggedLayers && selection.some((heads) => heads[0]?.length !== selection[0][0]?.length)) {
    throw new UnsupportedCapabilityError({ capability: 'raggedLayers', component, backend: `target '${target.name}'` });
  }
}

async function runText(
  s: { target: TextTargetV1; draft?: CausalLMV1; compressor?: PromptCompressorV1; promptBudget: Budget; maxUnknownTokenFraction: number },
  prompt: PipelineInput,
  generation: PipelineGenerateOptions,
  onText?: (piece: string) => void,
): Promise<GenerationResultV1> {
  const started = now();
  const timings = emptyTimings();
  const { target, draft } = s;
  if (generation.prefix?.target) {
    throw new InvalidArgumentError({ argument: 'prefix', value: `text target '${target.name}'`, expected: 'an in-process target (a text target holds no KV to reuse)' });
  }
  let text: string;
  if (typeof prompt === 'string') text = prompt;
  else if (prompt.text !== undefined) text = prompt.text;
  else if (draft) text = draft.tokenizer.decode(prompt.inputIds, { skipSpecialTokens: true });
  else throw new InvalidArgumentError({ argument: 'prompt', value: 'token ids', expected: 'text (a text target has no tokenizer here)' });
  const fromText = typeof prompt === 'string' || prompt.text !== undefined;
  const draftIds = draft ? (fromText ? draft.tokenizer.encode(text) : Array.from(prompt.inputIds)) : undefined;
  let promptText = text;
  let compressedTokens = draftIds?.length ?? 0;
  let draftTokens = 0;
  if (s.compressor) {
    // createPipeline guarantees a draft (and so draftIds) whenever a compressor fronts a text target.
    if (!draft || !draftIds) throw new DraftError('INTERNAL', `prompt compressor '${s.compressor.type}' has no draft tokenizer for text target '${target.name}'.`);
    const t = now();
    const budget = resolveBudget(s.promptBudget, draftIds.length);
    if (draftIds.length > budget) {
      // With offsets the endpoint gets the kept original text (spacing, punctuation), not the draft's decoding.
      const encoding =
        fromText && draft.tokenizer.encodeWithOffsets
          ? draftEncoding({ draft, target: target.name, component: `prompt compressor '${s.compressor.type}'`, text, maxUnknownTokenFraction: s.maxUnknownTokenFraction })
          : undefined;
      const compressed = await runCompressor(s.compressor, { draft, text, draftIds, budget, signal: generation.signal, onProgress: generation.onProgress });
      promptText = encoding ? keptText(text, encoding.offsets, compressed.keptIndices) : compressed.text;
      compressedTokens = compressed.inputIds.length;
      draftTokens = compressed.draftTokens;
    }
    timings.compressMs = now() - t;
  }
  throwIfAborted(generation.signal);
  const request = {
    prompt: promptText,
    maxNewTokens: generation.maxNewTokens,
    temperature: generation.temperature,
    topP: generation.topP,
    seed: generation.seed,
    stop: generation.stopStrings,
    signal: generation.signal,
  };
  const t = now();
  let resultText: string;
  let finishReason: GenerationResultV1['finishReason'];
  let completionTokens: number | undefined;
  let remotePromptTokens: number | undefined;
  let estimatedFinish = false;
  if (onText) {
    resultText = '';
    const iterator = target.stream(request)[Symbol.asyncIterator]();
    let end: TextStreamEndV1 | undefined;
    let ended = false;
    try {
      for (;;) {
        const step = await iterator.next();
        if (step.done) {
          ended = true;
          end = step.value || undefined;
          break;
        }
        ttft(step.value);
        resultText += step.value;
        onText(step.value);
      }
    } finally {
      if (!ended) await iterator.return?.();
    }
    if (end?.finishReason) {
      finishReason = end.finishReason;
      completionTokens = end.usage?.completionTokens;
      remotePromptTokens = end.usage?.promptTokens;
    } else {
      // The stream did not say why it ended: estimated below from the completion length.
      finishReason = 'stop';
      estimatedFinish = true;
    }
  } else {
    const result = await target.complete(request);
    resultText = result.text;
    finishReason = result.finishReason;
    completionTokens = result.usage.completionTokens;
    remotePromptTokens = result.usage.promptTokens;
  }
  function ttft(_piece: string) {
    if (timings.ttftMs === 0) timings.ttftMs = now() - started;
  }
  timings.decodeMs = now() - t;
  if (timings.ttftMs === 0) timings.ttftMs = now() - started;
  timings.totalMs = now() - started;
  const completion = completionTokens ?? (draft ? draft.tokenizer.encode(resultText, { addSpecialTokens: false }).length : 0);
  // A stream without a TextStreamEndV1: 'length' when the completion (counted with the draft's tokenizer, the
  // only one here) reached maxNewTokens. Without a draft nothing can be counted and 'stop' is reported.
  if (estimatedFinish && draft && completion >= generation.maxNewTokens) finishReason = 'length';
  timings.decodeTokensPerSecond = timings.decodeMs > 0 ? completion / (timings.decodeMs / 1000) : 0;
  return {
    text: resultText,
    tokens: [],
    finishReason,
    usage: {
      promptTokens: draftIds?.length ?? remotePromptTokens ?? 0,
      compressedPromptTokens: draftIds ? compressedTokens : (remotePromptTokens ?? 0),
      keptKvTokens: [],
      completionTokens: completion,
      draftTokens,
    },
    timings,
    kvBytes: { afterPrefill: 0, final: 0 },
  };
}
