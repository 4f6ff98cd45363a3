import { describe, expect, it } from 'vitest';
import { AbortError, PolicyOutputError } from '../spec/errors.js';
import type { KvCacheV1 } from '../spec/kv-cache.js';
import type { CausalLMV1, ForwardRequestV1 } from '../spec/model.js';
import type { DecodePolicyV1 } from '../spec/policy.js';
import { callbackToAsyncIterable } from './async-iterable.js';
import { decodeLoop } from './decode-loop.js';

/** A fake model over a 6-token vocabulary ('a'..'e', EOS=5) that always predicts (last + 1) mod 5. */
function fakeModel(): { model: CausalLMV1; forwards: number[][]; disposed: number[] } {
  const forwards: number[][] = [];
  const disposed: number[] = [];
  const cacheAt = (next: number): KvCacheV1 =>
    ({ nextPosition: next, numLayers: 1, numKvHeads: 1, lengths: [[next]], dispose: () => disposed.push(next), gather: async () => cacheAt(next) }) as unknown as KvCacheV1;
  const logitsFor = (id: number) => {
    const l = new Float32Array(6);
    l[(id + 1) % 5] = 1;
    return l;
  };
  const model = {
    specificationVersion: 'v1',
    name: 'fake',
    info: { architecture: 'fake', numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 1, vocabSize: 6, maxPositions: 100, eosTokenIds: [5] },
    tokenizer: {
      vocabSize: 6,
      fingerprint: 'x',
      encode: () => [],
      decode: (ids: readonly number[]) => ids.map((i) => 'abcde'[i] ?? '').join(''),
    },
    async forward(request: ForwardRequestV1) {
      const ids = Array.from(request.inputIds);
      forwards.push(ids);
      return { logits: logitsFor(ids[ids.length - 1]), cache: cacheAt(request.cache!.nextPosition + ids.length) };
    },
  } as unknown as CausalLMV1;
  return { model, forwards, disposed };
}

const first = (id: number) => {
  const l = new Float32Array(6);
  l[id] = 1;
  return l;
};

describe('decodeLoop', () => {
  it('generates greedily, feeds tokens back and disposes intermediate caches', async () => {
    const { model, forwards, disposed } = fakeModel();
    const seen: string[] = [];
    const r = await decodeLoop({
      model,
      cache: { nextPosition: 3 } as unknown as KvCacheV1,
      firstLogits: first(0),
      promptLength: 3,
      generation: { maxNewTokens: 4, onToken: (t) => seen.push(`${t.id}:${t.text}`) },
    });
    expect(r.tokens).toEqual([0, 1, 2, 3]);
    expect(r.text).toBe('abcd');
    expect(r.finishReason).toBe('length');
    expect(forwards).toEqual([[0], [1], [2]]);
    expect(seen).toEqual(['0:a', '1:b', '2:c', '3:d']);
    expect(r.cache.nextPosition).toBe(6);
    expect(disposed).toEqual([4, 5]);
  });

  it('stops on EOS (excluded) and on stop strings (text cut before)', async () => {
    const { model } = fakeModel();
    const eos = await decodeLoop({ model, cache: { nextPosition: 1 } as unknown as KvCacheV1, firstLogits: first(5), promptLength: 1, generation: { maxNewTokens: 5 } });
    expect(eos).toMatchObject({ tokens: [], text: '', finishReason: 'stop' });
    const pieces: string[] = [];
    const s = await decodeLoop({
      model,
      cache: { nextPosition: 1 } as unknown as KvCacheV1,
      firstLogits: first(0),
      promptLength: 1,
      generation: { maxNewTokens: 9, stopStrings: ['cd'] },
      onText: (p) => pieces.push(p),
    });
    expect(s.finishReason).toBe('stop');
    expect(s.text).toBe('ab');
    expect(s.tokens).toEqual([0, 1, 2, 3]);
    // 'c' was held back as a possible start of 'cd', and never released.
    expect(pieces.join('')).toBe('ab');
  });

  it('stops on user stop token ids', async () => {
    const { model } = fakeModel();
    const r = await decodeLoop({ model, cache: { nextPosition: 1 } as unknown as KvCacheV1, firstLogits: first(1), promptLength: 1, generation: { maxNewTokens: 9, stopTokenIds: [3] } });
    expect(r.tokens).toEqual([1, 2]);
    expect(r.finishReason).toBe('stop');
  });

  it('aborts within one step with the partial result', async () => {
    const { model } = fakeModel();
    const controller = new AbortController();
    const error = await decodeLoop({
      model,
      cache: { nextPosition: 1 } as unknown as KvCacheV1,
      firstLogits: first(0),
      promptLength: 1,
      generation: { maxNewTokens: 9, signal: controller.signal, onToken: (t) => t.id === 1 && controller.abort() },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).partial).toMatchObject({ tokens: [0, 1], text: 'ab', finishReason: 'abort' });
  });

  it("rejects a decode policy's bad output with PolicyOutputError and disposes the step's cache", async () => {
    const outputs: [string, unknown, RegExp][] = [
      ['out of range', [[Int32Array.of(0, 4)]], /decode policy 'bad' kept index 4 at layer 0, head 0; valid indices are 0..3/],
      ['unsorted', [[Int32Array.of(2, 1)]], /decode policy 'bad' returned an unsorted index 1/],
      ['no heads', [[]], /decode policy 'bad' returned 0 heads for layer 0/],
      ['not an array', [[undefined]], /decode policy 'bad' returned no index array at layer 0, head 0/],
    ];
    for (const [, output, pattern] of outputs) {
      const { model, disposed } = fakeModel();
      const bad: DecodePolicyV1 = { specificationVersion: 'v1', type: 'bad', requires: [], afterStep: async () => output as never, toConfig: () => ({ type: 'bad' }) };
      const run = decodeLoop({ model, cache: { nextPosition: 3 } as unknown as KvCacheV1, firstLogits: first(0), promptLength: 3, decodePolicy: bad, generation: { maxNewTokens: 4 } });
      const error = await run.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PolicyOutputError);
      expect((error as Error).message).toMatch(pattern);
      expect(disposed).toEqual([4]); // the cache of the one forward step (length 4)
    }
  });

  it('streams through callbackToAsyncIterable', async () => {
    const { model } = fakeModel();
    const it = callbackToAsyncIterable<string, string>(async (push) => {
      const r = await decodeLoop({ model, cache: { nextPosition: 1 } as unknown as KvCacheV1, firstLogits: first(2), promptLength: 1, generation: { maxNewTokens: 3 }, onText: push });
      return r.text;
    });
    const pieces: string[] = [];
    for await (const p of it) pieces.push(p);
    expect(pieces).toEqual(['c', 'd', 'e']);
    await expect(it.result).resolves.toBe('cde');
  });
});
