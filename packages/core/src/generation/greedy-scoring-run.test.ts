import { describe, expect, it } from 'vitest';
import { UnsupportedCapabilityError } from '../spec/errors.js';
import { FakeCausalLM } from '../testing/fake-causal-lm.js';
import { greedyScoringRun } from './greedy-scoring-run.js';

const model = (options: ConstructorParameters<typeof FakeCausalLM>[0] = {}) => new FakeCausalLM({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, ...options });
const ids = Array.from({ length: 12 }, (_, i) => 97 + i);

describe('greedyScoringRun', () => {
  it('prefills capturing the last W queries, then scores each fed-back token with the keys so far', async () => {
    const draft = model();
    const steps: { index: number; queryLengths: number[]; keys: number }[] = [];
    const progress: number[] = [];
    const out = await greedyScoringRun({
      model: draft,
      inputIds: ids,
      maxNewTokens: 4,
      prefillQueries: 3,
      stage: 'compress',
      component: 'test',
      onProgress: (e) => progress.push(e.completed),
      async score(step) {
        steps.push({ index: step.index, queryLengths: step.queries.map((q) => q.length), keys: (await step.cache.readKeys(0)).length / (2 * 4) });
      },
    });
    // FakeCausalLM's greedy token after position p is 'a' + (p + 1) mod 26: positions 11, 12, 13, 14.
    expect(out).toEqual({ tokens: [97 + 12, 97 + 13, 97 + 14, 97 + 15], stoppedAtEos: false });
    expect(steps).toEqual([
      { index: 0, queryLengths: [4 * 3 * 4, 4 * 3 * 4], keys: 12 },
      { index: 1, queryLengths: [4 * 4, 4 * 4], keys: 13 },
      { index: 2, queryLengths: [4 * 4, 4 * 4], keys: 14 },
      { index: 3, queryLengths: [4 * 4, 4 * 4], keys: 15 },
    ]);
    // The last token is not fed back: 1 prefill + 3 steps, each at its explicit position.
    expect(draft.calls.map((c) => [c.positionIds[0], c.captureQueries])).toEqual([[0, 3], [12, 1], [13, 1], [14, 1]]);
    expect(progress).toEqual([0, 1, 2, 3, 4]);
    expect(draft.tracker.live).toBe(0);
  });

  it('stops at an EOS (kept) and needs query capture', async () => {
    const draft = model({ nextToken: ({ position }) => (position >= 12 ? 0 : 104) });
    const out = await greedyScoringRun({ model: draft, inputIds: ids, maxNewTokens: 9, prefillQueries: 1, stage: 'compress', component: 'test', score: () => {} });
    expect(out).toEqual({ tokens: [104, 0], stoppedAtEos: true });
    const blind = model({ capabilities: { queryCapture: false } });
    await expect(greedyScoringRun({ model: blind, inputIds: ids, maxNewTokens: 2, prefillQueries: 1, stage: 'compress', component: "prompt compressor 'x'", score: () => {} })).rejects.toMatchObject({
      capability: 'queryCapture',
      component: "prompt compressor 'x'",
    });
    const silent = model();
    const forward = silent.forward.bind(silent);
    silent.forward = async (request) => ({ ...(await forward(request)), queries: undefined });
    await expect(greedyScoringRun({ model: silent, inputIds: ids, maxNewTokens: 2, prefillQueries: 1, stage: 'compress', component: 'test', score: () => {} })).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    expect(silent.tracker.live).toBe(0);
  });
});
