import { type CausalLMV1, createPipeline, DraftError, type ForwardRequestV1, type ForwardResultV1, type ModelInfoV1 } from '@draft/core';
import type { MethodPlan } from '@draft/methods';

/**
 * Next-token distributions of a method, teacher-forced on a reference continuation.
 *
 * How: the method runs through the real pipeline (`createPipeline` with the plan's stages), so compression,
 * lookahead, selection, gather and the re-run of the last prompt token are exactly what `generate` does. The
 * target is wrapped in a proxy that passes every call through until the pipeline reports progress stage
 * `'decode'` (emitted once, right before the decode loop starts). At that moment the last logits the proxy
 * returned are the method's first-token distribution. The decode loop's first `forward` then carries the
 * method's compacted cache; the proxy runs the reference continuation `forced[0..N−2]` over that cache in one
 * call with `logits: 'all'` instead, which gives the distributions of steps 1..N−1 conditioned on the
 * reference tokens (not on the method's own choices). While armed the proxy reports no EOS ids so that the
 * loop cannot stop before that call. The generation options are those of the free-running run
 * (maxNewTokens = N, so SpecKV/LAQ look ahead N tokens and compressors get their defaults); right after the
 * forced call the proxy aborts the run through its own AbortController, so no further step runs.
 *
 * Returns `steps × vocab` logits (row i = the distribution of generated token i).
 */
export async function teacherForcedLogits(
  plan: MethodPlan,
  models: { target: CausalLMV1; draft?: CausalLMV1 },
  promptIds: readonly number[],
  forced: readonly number[],
  signal?: AbortSignal,
): Promise<Float32Array> {
  const V = models.target.info.vocabSize;
  if (forced.length === 0) return new Float32Array(0);
  if (plan.draftOnly) {
    const draft = models.draft;
    if (!draft) throw new DraftError('INVALID_ARGUMENT', 'draft-only needs a draft model.');
    return forcedOnModel(draft, promptIds, forced, signal);
  }
  // Same options as the free-running generation (maxNewTokens = N, so lookahead L = N); once the forced
  // call is done, our own abort ends the decode loop (the pipeline disposes its caches on abort).
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  const proxy = new ForcingProxy(models.target, forced, () => controller.abort(FORCED_DONE));
  const pipeline = createPipeline({ target: proxy, draft: plan.needsDraft ? models.draft : undefined, ...plan.stages });
  try {
    await pipeline.generate(
      { inputIds: promptIds },
      {
        maxNewTokens: forced.length,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage === 'decode' && p.completed === 0) proxy.arm();
        },
      },
    );
  } catch (error) {
    if (!(controller.signal.aborted && controller.signal.reason === FORCED_DONE && (error as { code?: string })?.code === 'ABORTED')) throw error;
  } finally {
    signal?.removeEventListener('abort', onOuterAbort);
  }
  if (!proxy.firstLogits) throw new DraftError('INTERNAL', `teacher forcing of '${plan.method}': the pipeline never reached its decode stage.`);
  if (forced.length > 1 && !proxy.forcedLogits) throw new DraftError('INTERNAL', `teacher forcing of '${plan.method}': the decode loop made no forward call.`);
  const out = new Float32Array(forced.length * V);
  out.set(proxy.firstLogits, 0);
  if (proxy.forcedLogits) out.set(proxy.forcedLogits.subarray(0, (forced.length - 1) * V), V);
  return out;
}

/** A model driven by hand: prefill the prompt, then the forced tokens with `logits: 'all'`. */
async function forcedOnModel(model: CausalLMV1, promptIds: readonly number[], forced: readonly number[], signal?: AbortSignal): Promise<Float32Array> {
  const V = model.info.vocabSize;
  const prefill = await model.forward({ inputIds: promptIds, signal });
  const out = new Float32Array(forced.length * V);
  out.set(prefill.logits.subarray(prefill.logits.length - V), 0);
  try {
    if (forced.length > 1) {
      const rest = await model.forward({ inputIds: forced.slice(0, -1), cache: prefill.cache, logits: 'all', signal });
      out.set(rest.logits, V);
      rest.cache.dispose();
    }
  } finally {
    prefill.cache.dispose();
  }
  return out;
}

const FORCED_DONE = Symbol('teacher forcing done');

class ForcingProxy implements CausalLMV1 {
  readonly specificationVersion = 'v1' as const;
  private armed = false;
  private last: Float32Array | undefined;
  firstLogits: Float32Array | undefined;
  forcedLogits: Float32Array | undefined;

  constructor(
    private readonly inner: CausalLMV1,
    private readonly forced: readonly number[],
    private readonly onForced: () => void,
  ) {}

  get name() {
    return this.inner.name;
  }
  get capabilities() {
    return this.inner.capabilities;
  }
  get tokenizer() {
    return this.inner.tokenizer;
  }
  get info(): ModelInfoV1 {
    return this.armed ? { ...this.inner.info, eosTokenIds: [] } : this.inner.info;
  }

  arm(): void {
    this.armed = true;
    this.firstLogits = this.last;
  }

  async forward(request: ForwardRequestV1): Promise<ForwardResultV1> {
    const V = this.inner.info.vocabSize;
    if (this.armed && !this.forcedLogits && request.cache) {
      const r = await this.inner.forward({ inputIds: this.forced.slice(0, -1), cache: request.cache, logits: 'all', signal: request.signal });
      this.forcedLogits = r.logits;
      this.onForced();
      return { ...r, logits: r.logits.subarray(r.logits.length - V) };
    }
    const r = await this.inner.forward(request);
    this.last = r.logits.slice(r.logits.length - V);
    return r;
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

/** KL(P ‖ Q) in nats between two logit rows (softmax in float64). */
export function klDivergence(p: Float32Array, q: Float32Array): number {
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    const pi = Math.exp(lp[i]);
    if (pi > 0) kl += pi * (lp[i] - lq[i]);
  }
  return Math.max(0, kl);
}

function logSoftmax(x: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of x) if (v > max) max = v;
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const log = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - log);
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Greedy agreement with the reference: the share of positions before the first divergence, and overall. */
export function agreement(reference: readonly number[], tokens: readonly number[]): { prefix: number; overall: number } {
  const n = reference.length;
  if (n === 0) return { prefix: 1, overall: 1 };
  let prefix = 0;
  while (prefix < n && tokens[prefix] === reference[prefix]) prefix++;
  let equal = 0;
  for (let i = 0; i < n; i++) if (tokens[i] === reference[i]) equal++;
  return { prefix: prefix / n, overall: equal / n };
}
