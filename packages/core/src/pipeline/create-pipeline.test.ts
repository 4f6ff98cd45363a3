import { describe, expect, it, vi } from 'vitest';
import { defineCachePolicy } from '../policies/define-cache-policy.js';
import { range } from '../primitives/kept-indices.js';
import { registerPolicy } from '../registry/policy-registry.js';
import { InvalidArgumentError, PolicyOutputError, UnknownMethodError, UnsupportedCapabilityError, VocabMismatchError } from '../spec/errors.js';
import type { CachePolicyV1, DecodeStepContextV1, LookaheadInputV1, LookaheadProviderV1, PromptCompressorV1, SelectionContextV1 } from '../spec/policy.js';
import type { TextCompletionRequestV1 } from '../spec/model.js';
import { FakeCausalLM } from '../testing/fake-causal-lm.js';
import { createFakeTokenizer } from '../testing/fake-tokenizer.js';
import { FakeTextTarget } from '../testing/fake-text-target.js';
import { createPipeline } from './create-pipeline.js';

const PROMPT = 'abcdefghijklmnopqrs'; // 19 characters + BOS = 20 tokens
const N = 20;
const letter = (position: number) => String.fromCharCode(97 + (position % 26));

/** Keeps the first `sinks` and the last W = budget − sinks of [0, n − 1) (StreamingLLM-like), recording its context. */
function sinkPolicy(options: { sinks?: number; queryWindow?: number; usesLookahead?: boolean; requires?: CachePolicyV1['requires'] } = {}) {
  const seen: { context?: SelectionContextV1; keyShapes: number[]; queryShapes: number[] } = { keyShapes: [], queryShapes: [] };
  const policy = defineCachePolicy({
    type: 'sinks-test',
    queryWindow: options.queryWindow ?? 2,
    usesLookahead: options.usesLookahead ?? false,
    requires: options.requires,
    async select(context) {
      seen.context = context;
      seen.keyShapes.push((await context.keys(0)).length);
      seen.queryShapes.push((await context.queries(0)).length);
      const sinks = options.sinks ?? 4;
      const n = context.promptLength;
      const kept = new Int32Array([...range(0, sinks), ...range(n - 1 - (context.budget - sinks), n - 1)]);
      return Array.from({ length: context.numLayers }, () => Array.from({ length: context.numKvHeads }, () => kept));
    },
  });
  return { policy, seen };
}

function fixedLookahead(tokens: number[], needs: 'draft' | 'target' = 'target'): LookaheadProviderV1 & { calls: number } {
  const provider = {
    specificationVersion: 'v1' as const,
    type: 'fixed-lookahead',
    needs,
    calls: 0,
    async lookahead() {
      provider.calls++;
      return { tokenIds: tokens, text: '', draftTokens: tokens.length };
    },
  };
  return provider;
}

/** Keeps every other token (needs no model). */
const everyOther: PromptCompressorV1 = {
  specificationVersion: 'v1',
  type: 'every-other',
  needs: 'none',
  async compress(input) {
    const kept = Int32Array.from({ length: Math.min(input.budget, Math.ceil(input.inputIds.length / 2)) }, (_, i) => 2 * i);
    const ids = Array.from(kept, (i) => input.inputIds[i]);
    return { keptIndices: kept, inputIds: ids, text: ids.map((id) => String.fromCharCode(id)).join(''), draftTokens: 2 };
  },
  toConfig: () => ({ type: 'every-other' }),
};

describe('createPipeline: capability validation at construction', () => {
  it('names the missing capability and the component', () => {
    const target = new FakeCausalLM({ name: 'tiny' });
    const { policy } = sinkPolicy({ requires: ['queryCapture', 'kvSelection', 'raggedKvHeads'] });
    try {
      createPipeline({ target, cachePolicy: policy });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect(error).toMatchObject({ capability: 'raggedKvHeads', component: "cache policy 'sinks-test'", code: 'UNSUPPORTED_CAPABILITY' });
      expect((error as Error).message).toMatch(/target 'tiny'/);
    }
    const noAll = new FakeCausalLM({ capabilities: { allQueryCapture: false } });
    const h2oLike = defineCachePolicy({ type: 'all-queries', queryWindow: 'all', select: () => [] });
    expect(() => createPipeline({ target: noAll, cachePolicy: h2oLike })).toThrow(/allQueryCapture/);
  });

  it('rejects KV policies, lookahead and decode policies on a text target', () => {
    const target = new FakeTextTarget();
    expect(() => createPipeline({ target, cachePolicy: sinkPolicy().policy })).toThrow(UnsupportedCapabilityError);
    expect(() => createPipeline({ target, lookahead: fixedLookahead([1]) })).toThrow(/lookahead 'fixed-lookahead' needs the capability 'tokenIds'/);
  });

  it('rejects a compressor in front of a text target without a draft (nothing could tokenise the prompt)', () => {
    const target = new FakeTextTarget({ name: 'remote' });
    try {
      createPipeline({ target, compressor: everyOther });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect(error).toMatchObject({ capability: 'draft', component: "prompt compressor 'every-other'" });
      expect((error as Error).message).toMatch(/text target 'remote' needs a draft model to tokenise the prompt/);
    }
    expect(() => createPipeline({ target, draft: new FakeCausalLM(), compressor: everyOther })).not.toThrow();
  });

  it('requires a draft for stages that need one, and a shared vocabulary when text crossing is off', () => {
    const target = new FakeCausalLM();
    const needsDraft = { ...everyOther, needs: 'draft' as const };
    expect(() => createPipeline({ target, compressor: needsDraft })).toThrow(/needs a draft model/);
    expect(() => createPipeline({ target, cachePolicy: sinkPolicy().policy, lookahead: fixedLookahead([1], 'draft') })).toThrow(UnsupportedCapabilityError);
    const draft = new FakeCausalLM({ tokenizer: createFakeTokenizer({ shift: 3 }) });
    expect(() => createPipeline({ target, draft, compressor: everyOther, allowTextCrossing: false })).toThrow(VocabMismatchError);
    expect(() => createPipeline({ target, draft, compressor: everyOther })).not.toThrow();
  });

  it('requires a lookahead provider for a policy that scores with lookahead, and a policy for a provider', () => {
    const target = new FakeCausalLM();
    expect(() => createPipeline({ target, cachePolicy: sinkPolicy({ usesLookahead: true }).policy })).toThrow(InvalidArgumentError);
    expect(() => createPipeline({ target, lookahead: fixedLookahead([1]) })).toThrow(/cachePolicy/);
  });

  it('builds policies from registered configs and reports unknown types', () => {
    const undo = registerPolicy('sinks-registered', () => sinkPolicy().policy, { kind: 'cache', description: 'test' });
    try {
      const pipeline = createPipeline({ target: new FakeCausalLM(), cachePolicy: { type: 'sinks-registered', budget: { tokens: 8 } } });
      expect(pipeline.cachePolicy?.type).toBe('sinks-test');
    } finally {
      undo();
    }
    expect(() => createPipeline({ target: new FakeCausalLM(), cachePolicy: { type: 'nope' } })).toThrow(UnknownMethodError);
  });

  it("takes a config's numeric budget as { tokens: C } (cache policy and compressor)", async () => {
    const undoCache = registerPolicy('sinks-numeric', () => sinkPolicy().policy, { kind: 'cache', description: 'test' });
    const undoCompressor = registerPolicy('every-other-numeric', () => everyOther, { kind: 'compressor', description: 'test' });
    try {
      const target = new FakeCausalLM();
      const kv = await createPipeline({ target, cachePolicy: { type: 'sinks-numeric', budget: 8 } }).generate(PROMPT, { maxNewTokens: 1 });
      expect(kv.usage.keptKvTokens).toEqual([[8, 8], [8, 8]]);
      const pc = await createPipeline({ target, compressor: { type: 'every-other-numeric', budget: 12 } }).generate(PROMPT, { maxNewTokens: 1 });
      expect(pc.usage.compressedPromptTokens).toBe(10);
      expect(() => createPipeline({ target, cachePolicy: { type: 'sinks-numeric', budget: 0 } })).toThrow(InvalidArgumentError);
    } finally {
      undoCache();
      undoCompressor();
    }
  });
});

describe('pipeline.generate on a CausalLM target', () => {
  it('passes n ≤ C through as plain generation: no lookahead, no selection, no re-run', async () => {
    const target = new FakeCausalLM();
    const { policy, seen } = sinkPolicy();
    const lookahead = fixedLookahead([120, 121]);
    const result = await createPipeline({ target, cachePolicy: policy, lookahead, budget: { tokens: N } }).generate(PROMPT, { maxNewTokens: 3 });
    expect(lookahead.calls).toBe(0);
    expect(seen.context).toBeUndefined();
    expect(target.calls[0]).toMatchObject({ positionIds: Array.from(range(0, N)), captureQueries: undefined, cacheLength: 0 });
    expect(target.calls.map((c) => c.positionIds[0])).toEqual([0, N, N + 1]);
    expect(result.text).toBe(letter(N) + letter(N + 1) + letter(N + 2));
    expect(result.usage).toEqual({ promptTokens: N, compressedPromptTokens: N, keptKvTokens: [[N, N], [N, N]], completionTokens: 3, draftTokens: 0 });
    const plain = await createPipeline({ target: new FakeCausalLM() }).generate(PROMPT, { maxNewTokens: 3 });
    expect(plain.text).toBe(result.text);
    expect(target.tracker.live).toBe(0);
  });

  it('prefills prompt ++ lookahead, selects, drops the lookahead KV and re-runs the last prompt token at n − 1', async () => {
    const target = new FakeCausalLM();
    const { policy, seen } = sinkPolicy({ queryWindow: 2 });
    const lookahead = fixedLookahead([120, 121, 122]);
    const pipeline = createPipeline({ target, cachePolicy: policy, lookahead, budget: { tokens: 8 } });
    const ids = target.tokenizer.encode(PROMPT);
    const result = await pipeline.generate(PROMPT, { maxNewTokens: 3 });

    const [prefill, rerun, ...decode] = target.calls;
    expect(prefill.inputIds).toEqual([...ids, 120, 121, 122]);
    expect(prefill.positionIds).toEqual(Array.from(range(0, N + 3)));
    expect(prefill.captureQueries).toBe(2 + 3);
    // Context: lazy per-layer tensors of the right shapes.
    expect(seen.context).toMatchObject({ promptLength: N, lookaheadLength: 3, budget: 8, queryCount: 5, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 });
    expect(seen.keyShapes).toEqual([2 * (N + 3) * 4]);
    expect(seen.queryShapes).toEqual([4 * 5 * 4]);
    // Re-run: the last prompt token alone, at position n − 1, over the 8 kept entries (lookahead dropped).
    expect(rerun).toMatchObject({ inputIds: [ids[N - 1]], positionIds: [N - 1], cacheLength: 8, cacheNextPosition: N - 1 });
    // Decode continues at n, n + 1 (not n + L).
    expect(decode.map((c) => c.positionIds)).toEqual([[N], [N + 1]]);
    expect(result.text).toBe(letter(N) + letter(N + 1) + letter(N + 2));
    expect(result.tokens).toEqual([...result.text].map((c) => c.charCodeAt(0)));
    expect(result.usage).toEqual({ promptTokens: N, compressedPromptTokens: N, keptKvTokens: [[8, 8], [8, 8]], completionTokens: 3, draftTokens: 3 });
    // (8 kept + 1 re-run) entries × 2 layers × 2 heads × d 4 × (K + V) × 4 bytes.
    expect(result.kvBytes.afterPrefill).toBe(9 * 2 * 2 * 4 * 2 * 4);
    expect(result.kvBytes.final).toBe(11 * 2 * 2 * 4 * 2 * 4);
    expect(result.finishReason).toBe('length');
    for (const key of ['compressMs', 'draftMs', 'prefillMs', 'selectMs', 'decodeMs', 'ttftMs', 'totalMs', 'decodeTokensPerSecond'] as const) {
      expect(result.timings[key]).toBeGreaterThanOrEqual(0);
    }
    expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.ttftMs);
    expect(target.tracker.live).toBe(0);
  });

  it("hands the lookahead provider the run's resolved KV budget C", async () => {
    const seen: LookaheadInputV1[] = [];
    const lookahead = fixedLookahead([120]);
    lookahead.lookahead = async (input) => {
      seen.push(input);
      return { tokenIds: [120], text: '', draftTokens: 0 };
    };
    await createPipeline({ target: new FakeCausalLM(), cachePolicy: sinkPolicy().policy, lookahead, budget: { keepRatio: 0.5 } }).generate(PROMPT, { maxNewTokens: 1 });
    expect(seen.map((input) => input.budget)).toEqual([10]); // 0.5 × n = 20
  });

  it('compresses the prompt first and counts compressor and lookahead draft tokens', async () => {
    const target = new FakeCausalLM();
    const { policy, seen } = sinkPolicy({ sinks: 2 });
    const pipeline = createPipeline({ target, compressor: everyOther, promptBudget: { tokens: 12 }, cachePolicy: policy, lookahead: fixedLookahead([120]), budget: { tokens: 6 } });
    const result = await pipeline.generate(PROMPT, { maxNewTokens: 2 });
    // 20 tokens → every other → 10 tokens; 10 > C = 6 → select.
    expect(seen.context?.promptLength).toBe(10);
    expect(result.usage).toEqual({ promptTokens: 20, compressedPromptTokens: 10, keptKvTokens: [[6, 6], [6, 6]], completionTokens: 2, draftTokens: 3 });
    expect(target.calls[1].positionIds).toEqual([9]);
    expect(target.tracker.live).toBe(0);
  });

  it('rejects out-of-range, duplicate and unsorted policy output with PolicyOutputError and leaks no cache', async () => {
    const target = new FakeCausalLM();
    const cases: [string, (n: number) => Int32Array, RegExp][] = [
      ['out of range', (n) => Int32Array.of(0, n - 1), /kept index 19 at layer 0, head 0; valid indices are 0..18/],
      ['duplicate', () => Int32Array.of(3, 3), /duplicate index 3/],
      ['unsorted', () => Int32Array.of(5, 3), /unsorted index 3/],
    ];
    for (const [, make, pattern] of cases) {
      const raw: CachePolicyV1 = {
        specificationVersion: 'v1',
        type: 'raw',
        requires: [],
        queryWindow: 1,
        usesLookahead: false,
        select: async (c) => Array.from({ length: c.numLayers }, () => Array.from({ length: c.numKvHeads }, () => make(c.promptLength))),
        toConfig: () => ({ type: 'raw' }),
      };
      const pipeline = createPipeline({ target, cachePolicy: raw, budget: { tokens: 4 } });
      await expect(pipeline.generate(PROMPT, { maxNewTokens: 2 })).rejects.toThrow(PolicyOutputError);
      await expect(pipeline.generate(PROMPT, { maxNewTokens: 2 })).rejects.toThrow(pattern);
      expect(target.tracker.live).toBe(0);
    }
    // The model stays usable.
    expect((await createPipeline({ target }).generate(PROMPT, { maxNewTokens: 1 })).text).toBe(letter(N));
  });

  it("rejects a decode policy's out-of-range output with PolicyOutputError and leaks no cache", async () => {
    const target = new FakeCausalLM();
    const bad = { specificationVersion: 'v1' as const, type: 'bad-decode', requires: [], afterStep: async (c: DecodeStepContextV1) => c.cache.lengths.map((heads) => heads.map(() => Int32Array.of(0, 999))), toConfig: () => ({ type: 'bad-decode' }) };
    const run = createPipeline({ target, decodePolicy: bad }).generate(PROMPT, { maxNewTokens: 3 });
    await expect(run).rejects.toBeInstanceOf(PolicyOutputError);
    await expect(createPipeline({ target, decodePolicy: bad }).generate(PROMPT, { maxNewTokens: 3 })).rejects.toThrow(/decode policy 'bad-decode' kept index 999/);
    expect(target.tracker.live).toBe(0);
  });

  it('rejects ragged selections on a uniform-cache target at run time', async () => {
    const target = new FakeCausalLM();
    const ragged = defineCachePolicy({
      type: 'ragged',
      queryWindow: 1,
      select: (c) => Array.from({ length: c.numLayers }, () => [Int32Array.of(0, 1), Int32Array.of(0)]),
    });
    await expect(createPipeline({ target, cachePolicy: ragged, budget: { tokens: 4 } }).generate(PROMPT, { maxNewTokens: 1 })).rejects.toMatchObject({
      capability: 'raggedKvHeads',
    });
    expect(target.tracker.live).toBe(0);
  });

  it('aborts between stages and disposes what it made', async () => {
    const target = new FakeCausalLM();
    const controller = new AbortController();
    const lookahead = fixedLookahead([120]);
    lookahead.lookahead = async () => {
      controller.abort();
      return { tokenIds: [120], text: '', draftTokens: 1 };
    };
    const pipeline = createPipeline({ target, cachePolicy: sinkPolicy().policy, lookahead, budget: { tokens: 8 } });
    await expect(pipeline.generate(PROMPT, { maxNewTokens: 3, signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(target.tracker.live).toBe(0);
  });

  it('streams the same text as generate, with the result at the end', async () => {
    const target = new FakeCausalLM();
    const pipeline = createPipeline({ target, cachePolicy: sinkPolicy().policy, lookahead: fixedLookahead([120]), budget: { tokens: 8 } });
    const onToken = vi.fn();
    const stream = pipeline.stream(PROMPT, { maxNewTokens: 4, onToken });
    let text = '';
    for await (const piece of stream) text += piece;
    const result = await stream.result;
    expect(text).toBe(result.text);
    expect(text).toBe(letter(N) + letter(N + 1) + letter(N + 2) + letter(N + 3));
    expect(onToken).toHaveBeenCalledTimes(4);
    expect(target.tracker.live).toBe(0);
  });
});

describe('pipeline.generate on a text target', () => {
  it('compresses with the draft tokenizer, then completes remotely', async () => {
    const target = new FakeTextTarget();
    const draft = new FakeCausalLM({ name: 'draft' });
    const pipeline = createPipeline({ target, draft, compressor: everyOther, promptBudget: { tokens: 12 } });
    const result = await pipeline.generate(PROMPT, { maxNewTokens: 5 });
    // Draft ids: BOS + 19 letters; every other keeps BOS (id 1) and b, d, f, …, r.
    expect(target.requests[0].prompt).toBe('\u0001bdfhjlnpr');
    expect(result.text).toBe('echo:');
    expect(result.usage).toMatchObject({ promptTokens: 20, compressedPromptTokens: 10, draftTokens: 2, keptKvTokens: [] });
    const passthrough = await createPipeline({ target }).generate('short', { maxNewTokens: 50 });
    expect(passthrough.text).toBe('echo:short');
  });

  it("streams report the target's finish reason ('length' when cut by maxNewTokens)", async () => {
    const target = new FakeTextTarget({ reply: () => 'abcdefgh' });
    const streamed = async (pipeline: ReturnType<typeof createPipeline>, maxNewTokens: number) => {
      const stream = pipeline.stream('q', { maxNewTokens });
      let text = '';
      for await (const piece of stream) text += piece;
      return { text, result: await stream.result };
    };
    const cut = await streamed(createPipeline({ target }), 3);
    expect(cut.text).toBe('abc');
    expect(cut.result).toMatchObject({ text: 'abc', finishReason: 'length', usage: { completionTokens: 3 } });
    expect((await streamed(createPipeline({ target }), 50)).result.finishReason).toBe('stop');
    // A stream that returns no TextStreamEndV1: estimated with the draft's tokenizer.
    const bare = Object.assign(new FakeTextTarget(), {
      async *stream(request: TextCompletionRequestV1) {
        yield* 'abcdefgh'.slice(0, request.maxNewTokens);
      },
    });
    const draft = new FakeCausalLM({ name: 'draft' });
    expect((await streamed(createPipeline({ target: bare, draft }), 3)).result.finishReason).toBe('length');
    expect((await streamed(createPipeline({ target: bare, draft }), 50)).result.finishReason).toBe('stop');
  });
});
