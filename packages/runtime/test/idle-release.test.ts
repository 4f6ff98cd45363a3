import { InvalidArgumentError } from '@draft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM } from '../src/index.js';
import { maxAbsDiff, TINY_LLAMA, TORCH_LLAMA } from './helpers.js';

// `releaseMemoryWhenIdleMs`: the worker releases its ORT session after idling and creates it again. Checked
// against a model loaded without the option: the same tokens and logits before and after a release, from new
// prompts and from a cache made before it.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function releasesAfter(model: OrtCausalLM, count: number): Promise<number> {
  for (let waited = 0; waited < 5000; waited += 10) {
    const { releases } = await model.sessionMemoryStats();
    if (releases >= count) return releases;
    await sleep(10);
  }
  return (await model.sessionMemoryStats()).releases;
}

describe.each([
  ['tiny-llama', TINY_LLAMA],
  ['torch-llama', TORCH_LLAMA],
])('releaseMemoryWhenIdleMs (%s)', (_name, dir) => {
  let released: OrtCausalLM;
  let plain: OrtCausalLM;
  const prompt = Array.from({ length: 40 }, (_, i) => 4 + ((i * 37) % 200));

  beforeAll(async () => {
    released = await loadModel(dir, { threads: 1, releaseMemoryWhenIdleMs: 20 });
    plain = await loadModel(dir, { threads: 1 });
  });
  afterAll(async () => {
    await released?.dispose();
    await plain?.dispose();
  });

  it('releases the session once after it ran, and generates the same tokens afterwards', async () => {
    expect(await released.sessionMemoryStats()).toMatchObject({ releaseMemoryWhenIdleMs: 20, releases: 0 });
    expect(await plain.sessionMemoryStats()).toMatchObject({ releaseMemoryWhenIdleMs: null, releases: 0 });
    const expected = (await plain.generate({ inputIds: prompt }, { maxNewTokens: 12 })).tokens;
    const before = (await released.generate({ inputIds: prompt }, { maxNewTokens: 12 })).tokens;
    expect(before).toEqual(expected);
    expect(await releasesAfter(released, 1)).toBe(1);
    // Freed KV buffers kept for reuse go too (the plain model still holds its own).
    expect((await plain.kvMemoryStats()).pooledBytes).toBeGreaterThan(0);
    expect((await released.kvMemoryStats()).pooledBytes).toBe(0);
    // Idle with nothing run since: no further release (stats requests do not count as runs).
    await sleep(100);
    expect((await released.sessionMemoryStats()).releases).toBe(1);
    const after = (await released.generate({ inputIds: prompt }, { maxNewTokens: 12 })).tokens;
    expect(after).toEqual(expected);
    expect(await releasesAfter(released, 2)).toBe(2);
    // The model without the option never releases.
    await sleep(60);
    expect((await plain.sessionMemoryStats()).releases).toBe(0);
  });

  it('keeps caches made before a release: the next step matches the model that never released', async () => {
    const mine = await released.forward({ inputIds: prompt });
    const theirs = await plain.forward({ inputIds: prompt });
    const count = (await released.sessionMemoryStats()).releases;
    expect(await releasesAfter(released, count + 1)).toBe(count + 1);
    const step = await released.forward({ inputIds: [7], cache: mine.cache });
    const reference = await plain.forward({ inputIds: [7], cache: theirs.cache });
    expect(maxAbsDiff(step.logits, reference.logits)).toBeLessThanOrEqual(1e-5);
    expect(step.cache.length).toBe(prompt.length + 1);
    for (const x of [mine.cache, theirs.cache, step.cache, reference.cache]) x.dispose();
  });

  it('runs requests that arrive while the session is being created again', async () => {
    const count = (await released.sessionMemoryStats()).releases;
    await released.forward({ inputIds: prompt }).then((r) => r.cache.dispose());
    // Send work right around the moment the idle timer fires: whichever way it lands, it runs once the new
    // session is there and gives the same tokens.
    await sleep(20);
    const [a, b] = await Promise.all([released.generate({ inputIds: prompt }, { maxNewTokens: 6 }), plain.generate({ inputIds: prompt }, { maxNewTokens: 6 })]);
    expect(a.tokens).toEqual(b.tokens);
    expect(await releasesAfter(released, count + 1)).toBeGreaterThanOrEqual(count + 1);
  });
});

describe('releaseMemoryWhenIdleMs errors', () => {
  for (const value of [-1, 1.5, Number.NaN, 2 ** 31, '10']) {
    it(`refuses ${String(value)} with a typed error before loading`, async () => {
      const error = await loadModel(TINY_LLAMA, { releaseMemoryWhenIdleMs: value as number }).catch((e) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.details).toMatchObject({ argument: 'releaseMemoryWhenIdleMs' });
      expect(error.message).toContain('[0, 2147483647]');
    });
  }
});
