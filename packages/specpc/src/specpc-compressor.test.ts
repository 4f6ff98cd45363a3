import { AbortError, createPolicy, InvalidArgumentError, type ProgressEvent, UnsupportedCapabilityError } from '@draft/core';
import { FakeCausalLM } from '@draft/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { registerSpecPC } from './register.js';
import { scoreSpecPC } from './score-specpc.js';
import { selectSpecPC } from './select-specpc.js';
import { SpecPCCompressor, specPC } from './specpc-compressor.js';

// A prompt of printable characters (the fake tokenizer maps a character to its code).
const promptIds = (n: number) => Array.from({ length: n }, (_, i) => 33 + ((i * 7) % 90));
const draftModel = (options: ConstructorParameters<typeof FakeCausalLM>[0] = {}) =>
  new FakeCausalLM({ numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 4, ...options });

/** The scores the compressor should compute, rebuilt with the pure functions from the fake's own tensors. */
async function expectedKept(options: {
  draft: FakeCausalLM;
  ids: number[];
  budget: number;
  windowSize: number;
  kernelSize: number;
  neighbourTokens: number;
  lookaheadTokens: number;
  startingLayerIndex: number;
}) {
  const { draft, ids, windowSize } = options;
  const probe = draftModel(); // same shapes, fresh call log
  const { numLayers, numHeads, numKvHeads, headDim } = draft.info;
  const n = ids.length;
  const prefill = await probe.forward({ inputIds: ids, captureQueries: windowSize });
  const layers = await Promise.all(
    Array.from({ length: numLayers }, async (_, l) => ({ queries: prefill.queries![l], keys: await prefill.cache.readKeys(l) })),
  );
  const decodeSteps = [];
  let cache = prefill.cache;
  let logits = prefill.logits;
  const tokens: number[] = [];
  for (let t = 0; t < options.lookaheadTokens; t++) {
    tokens.push(logits.indexOf(Math.max(...logits)));
    if (t === options.lookaheadTokens - 1) break;
    const step = await probe.forward({ inputIds: [tokens[t]], cache, captureQueries: 1 });
    decodeSteps.push(
      await Promise.all(Array.from({ length: numLayers }, async (_, l) => ({ queries: step.queries![l], keys: await step.cache.readKeys(l) }))),
    );
    cache = step.cache;
    logits = step.logits;
  }
  const scores = scoreSpecPC({
    layers,
    numHeads,
    numKvHeads,
    headDim,
    promptLength: n,
    windowSize,
    startingLayerIndex: options.startingLayerIndex,
    decodeSteps,
  });
  return { kept: selectSpecPC({ scores, ...options }), tokens, scores };
}

describe('SpecPCCompressor', () => {
  it('passes a prompt with n ≤ C through unchanged without running the draft', async () => {
    const draft = draftModel();
    const ids = promptIds(12);
    const result = await specPC({ keepOriginalPositions: true }).compress({ inputIds: ids, text: 'the prompt', budget: 12, draft });
    expect(draft.calls.length).toBe(0);
    expect(Array.from(result.keptIndices)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(result.inputIds).toEqual(ids);
    expect(result.text).toBe('the prompt');
    expect(Array.from(result.positionIds!)).toEqual(Array.from(result.keptIndices));
    expect(result).toMatchObject({ draftTokens: 0, keepRatio: 1, compressed: false });
    // No draft is needed either.
    await expect(specPC().compress({ inputIds: ids, text: '', budget: 100 })).resolves.toMatchObject({ compressed: false });
  });

  it('Lk = 1: one prefill capturing W queries; selection equals selectSpecPC(scoreSpecPC(tensors)); clamped start reported', async () => {
    const draft = draftModel();
    const ids = promptIds(40);
    const options = { windowSize: 5, kernelSize: 4, neighbourTokens: 3 };
    const result = await specPC(options).compress({ inputIds: ids, text: '', budget: 12, draft });
    expect(draft.calls).toHaveLength(1);
    expect(draft.calls[0]).toMatchObject({ captureQueries: 5, cacheLength: 0, positionIds: Array.from({ length: 40 }, (_, i) => i) });
    // startingLayerIndex 8 is clamped to the fake's last layer, 2.
    expect(result.startingLayerIndex).toBe(2);
    const expected = await expectedKept({ draft, ids, budget: 12, ...options, lookaheadTokens: 1, startingLayerIndex: 2 });
    expect(Array.from(result.keptIndices)).toEqual(Array.from(expected.kept));
    expect(result.keptIndices.length).toBe(12);
    for (let p = 35; p < 40; p++) expect(result.keptIndices).toContain(p);
    expect(result.inputIds).toEqual(Array.from(result.keptIndices, (i) => ids[i]));
    expect(result.text).toBe(String.fromCharCode(...result.inputIds));
    expect(result.positionIds).toBeUndefined(); // re-indexed by default
    expect(result.keepRatio).toBeCloseTo(12 / 40);
    // The fake's greedy token after position 39 is 'a' + (40 mod 26) = 'o'.
    expect(result.draftTokenIds).toEqual([97 + (40 % 26)]);
    expect(draft.tracker.live).toBe(0);
  });

  it('Lk > 1: fed-back draft tokens at positions n, n+1, … capture one query each and join the score', async () => {
    const draft = draftModel();
    const ids = promptIds(30);
    const options = { windowSize: 3, kernelSize: 1, neighbourTokens: 0, startingLayerIndex: 1 };
    const events: ProgressEvent[] = [];
    const result = await specPC(options).compress({
      inputIds: ids,
      text: '',
      budget: 8,
      draft,
      lookaheadTokens: 4,
      onProgress: (e) => events.push(e),
    });
    expect(draft.calls).toHaveLength(4); // prefill + 3 fed-back tokens (the 4th is not fed back)
    draft.calls.slice(1).forEach((call, t) => {
      expect(call).toMatchObject({ positionIds: [30 + t], captureQueries: 1, cacheLength: 30 + t });
    });
    // The token produced after position p is 'a' + ((p + 1) mod 26); the prefill ends at 29.
    expect(result.draftTokenIds).toEqual([29, 30, 31, 32].map((p) => 97 + ((p + 1) % 26)));
    expect(result.draftTokens).toBe(4);
    const expected = await expectedKept({ draft, ids, budget: 8, ...options, lookaheadTokens: 4 });
    expect(Array.from(result.keptIndices)).toEqual(Array.from(expected.kept));
    // The decode steps matter: they raise some prompt tokens' scores above the window-only scores.
    const windowOnly = await expectedKept({ draft, ids, budget: 8, ...options, lookaheadTokens: 1 });
    const raised = Array.from(expected.scores).filter((s, j) => s > windowOnly.scores[j]).length;
    expect(raised).toBeGreaterThan(0);
    expect(Array.from(expected.scores).every((s, j) => s >= windowOnly.scores[j])).toBe(true);
    expect(events.map((e) => e.completed)).toEqual([0, 1, 2, 3, 4]);
    expect(events.every((e) => e.stage === 'compress' && e.total === 4)).toBe(true);
    expect(draft.tracker.live).toBe(0);
  });

  it('stops the lookahead at the draft EOS (kept)', async () => {
    const draft = draftModel({ nextToken: ({ position }) => (position === 21 ? 0 : 98) });
    const result = await specPC({ windowSize: 2, lookaheadTokens: 10 }).compress({ inputIds: promptIds(20), text: '', budget: 6, draft });
    // prefill (last position 19) → 98; fed back at 20 → 98; fed back at 21 → EOS 0, not fed back.
    expect(result.draftTokenIds).toEqual([98, 98, 0]);
    expect(draft.calls).toHaveLength(3);
  });

  it('keepOriginalPositions returns the kept original positions', async () => {
    const draft = draftModel();
    const result = await specPC({ windowSize: 4, keepOriginalPositions: true }).compress({ inputIds: promptIds(30), text: '', budget: 10, draft });
    expect(Array.from(result.positionIds!)).toEqual(Array.from(result.keptIndices));
  });

  it('the call budget wins; the budget option is a core Budget default (config for the pipeline)', async () => {
    const compressor = specPC({ budget: 7, windowSize: 2 });
    expect(compressor.toConfig().budget).toEqual({ tokens: 7 });
    const result = await compressor.compress({ inputIds: promptIds(30), text: '', budget: 20, draft: draftModel() });
    expect(result.keptIndices.length).toBe(20);
    const noBudget = { inputIds: promptIds(30), text: '', draft: draftModel() } as unknown as Parameters<typeof compressor.compress>[0];
    expect((await compressor.compress(noBudget)).keptIndices.length).toBe(7);
    expect((await specPC({ budget: { keepRatio: 0.5 }, windowSize: 2 }).compress(noBudget)).keptIndices.length).toBe(15);
    expect(() => specPC({ budget: { keepRatio: 2 } })).toThrow(InvalidArgumentError);
  });

  it('honours an AbortSignal (before and during the run) and disposes every cache', async () => {
    const draft = draftModel();
    const ids = promptIds(30);
    const aborted = new AbortController();
    aborted.abort();
    await expect(specPC({ windowSize: 2 }).compress({ inputIds: ids, text: '', budget: 8, draft, signal: aborted.signal })).rejects.toBeInstanceOf(
      AbortError,
    );
    expect(draft.calls).toHaveLength(0);
    const midway = new AbortController();
    const run = specPC({ windowSize: 2, lookaheadTokens: 5 }).compress({
      inputIds: ids,
      text: '',
      budget: 8,
      draft,
      signal: midway.signal,
      onProgress: (e) => {
        if (e.completed === 2) midway.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(draft.calls.length).toBeLessThan(5);
    expect(draft.tracker.live).toBe(0);
  });

  it('rejects bad input with typed errors before running the draft', async () => {
    const ids = promptIds(10);
    await expect(specPC().compress({ inputIds: ids, text: '', budget: 5 })).rejects.toBeInstanceOf(InvalidArgumentError); // no draft
    const noCapture = draftModel({ capabilities: { queryCapture: false } });
    await expect(specPC({ windowSize: 2 }).compress({ inputIds: ids, text: '', budget: 5, draft: noCapture })).rejects.toBeInstanceOf(
      UnsupportedCapabilityError,
    );
    const draft = draftModel();
    await expect(specPC({ windowSize: 11 }).compress({ inputIds: ids, text: '', budget: 5, draft })).rejects.toThrow(/prompt length/);
    await expect(specPC().compress({ inputIds: [], text: '', budget: 5, draft })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(specPC().compress({ inputIds: ids, text: '', budget: 0, draft })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(specPC().compress({ inputIds: ids, text: '', budget: 5, draft, lookaheadTokens: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(draft.calls).toHaveLength(0);
    for (const bad of [
      { windowSize: 0 },
      { kernelSize: 0 },
      { neighbourTokens: -1 },
      { lookaheadTokens: 1.5 },
      { startingLayerIndex: -1 },
      { budget: 0 },
      { reduce: 'sum' as 'max' },
      { weightedQuery: 'yes' as unknown as boolean },
    ]) {
      expect(() => new SpecPCCompressor(bad)).toThrow(InvalidArgumentError);
    }
  });

  describe('registry', () => {
    let undo: (() => void) | undefined;
    afterEach(() => undo?.());

    it('registerSpecPC registers a compressor whose toConfig round-trips', () => {
      undo = registerSpecPC();
      expect(registerSpecPC()).toBeTypeOf('function'); // idempotent
      const original = specPC({ windowSize: 32, kernelSize: 32, lookaheadTokens: 3, keepOriginalPositions: true });
      const config = original.toConfig();
      expect(config).toEqual({
        type: 'specpc',
        windowSize: 32,
        kernelSize: 32,
        neighbourTokens: 32,
        lookaheadTokens: 3,
        startingLayerIndex: 8,
        weightedQuery: true,
        reduce: 'max',
        keepOriginalPositions: true,
      });
      const rebuilt = createPolicy(config, { kind: 'compressor' });
      expect(rebuilt).toBeInstanceOf(SpecPCCompressor);
      expect(rebuilt.toConfig()).toEqual(config);
      expect(() => createPolicy({ type: 'specpc', kernelSize: 0 }, { kind: 'compressor' })).toThrow(InvalidArgumentError);
    });

    it('toConfig keys are every option it takes: chunkSize too when unset (the draft own), dropped by JSON', () => {
      const config = specPC().toConfig();
      expect(Object.keys(config)).toEqual(['type', 'windowSize', 'kernelSize', 'neighbourTokens', 'lookaheadTokens', 'startingLayerIndex', 'weightedQuery', 'reduce', 'keepOriginalPositions', 'chunkSize']);
      expect(config.chunkSize).toBeUndefined();
      expect(JSON.parse(JSON.stringify(config))).not.toHaveProperty('chunkSize');
      expect(SpecPCCompressor.fromConfig(JSON.parse(JSON.stringify({ ...config, chunkSize: 16 }))).toConfig().chunkSize).toBe(16);
    });
  });
});
