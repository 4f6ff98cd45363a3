// Every KV method through the layer-wise engines (loadModel({ layerwise: true }): selection inside the layer
// loop for layer-local policies, the whole-graph path for the rest; and @draft/cuda's native prefill + decode,
// loadModel({ decodeEngine: 'native', prefillEngine: 'native' }), where its addon is built) must give the tokens
// and the kept counts of the whole-graph engine, on the bundled trained pair and real task prompts.
import { fileURLToPath } from 'node:url';
import { decodeEngineModule, nativeInfo, registerNativeBackend } from '@draft/cuda';
import { planMethod } from '@draft/methods';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSample, readTaskFormat, runPlan } from '../src/index.js';

const models = fileURLToPath(new URL('../../../models', import.meta.url));
const BUDGET = 64;
const KV_METHODS = ['speckv', 'snapkv', 'streamingllm', 'laq', 'h2o', 'speckv-pc', 'pyramidkv', 'adakv'] as const;
/** Layer-local selection with no full-prompt target pass elsewhere (LAQ++'s pseudo-lookahead runs one; H2O reads all queries). */
const IN_THE_LOOP = new Set(['speckv', 'snapkv', 'streamingllm', 'speckv-pc', 'pyramidkv', 'adakv']);

let whole: OrtCausalLM;
let layered: OrtCausalLM;
let draft: OrtCausalLM;
/** The target on the native engine (prefill and decode), when @draft/cuda's addon is built; the draft stays ORT's. */
let native: { target: OrtCausalLM; draft: OrtCausalLM } | undefined;
const nativeBuilt = nativeInfo().native && decodeEngineModule() !== null;
let prompts: number[][];

beforeAll(async () => {
  // raggedCache on both: PyramidKV and AdaKV keep different counts per layer and head.
  whole = await loadModel(`${models}/target`, { threads: 1, raggedCache: true });
  layered = await loadModel(`${models}/target`, { threads: 1, raggedCache: true, layerwise: true });
  draft = await loadModel(`${models}/draft`, { threads: 1 });
  if (nativeBuilt) {
    registerNativeBackend();
    const engines = { decodeEngine: 'native', prefillEngine: 'native' } as const;
    // (The bundled draft has no MLP, which the native engine refuses.)
    native = { target: await loadModel(`${models}/target`, { threads: 1, ...engines }), draft };
  }
  const format = readTaskFormat(`${models}/target`);
  prompts = [
    ['niah_multikey_1', 1024, 3],
    ['vt', 1024, 5],
  ].map(([task, length, seed]) => whole.tokenizer.encode(generateSample({ task: task as string, length: length as number, seed: seed as number, index: 0, tokenizer: whole.tokenizer, format }).input));
}, 60_000);

afterAll(async () => {
  for (const m of [whole, layered, draft, native?.target]) await m?.dispose();
});

/** KV bytes after prefill of each method on the native engine, per prompt (`method:length`). */
const nativeKvBytes = new Map<string, number>();

describe('the layer-wise engine gives every KV method its whole-graph tokens', () => {
  it('is selected only where it applies', () => {
    expect(layered.prefillSelect).toBeTypeOf('function');
    expect(whole.prefillSelect).toBeUndefined();
    for (const ids of prompts) expect(ids.length).toBeGreaterThan(4 * BUDGET);
  });

  for (const method of KV_METHODS) {
    it(method, async () => {
      const plan = planMethod(method, { budget: BUDGET });
      for (const ids of prompts) {
        await whole.kvMemoryStats({ resetPeak: true });
        await layered.kvMemoryStats({ resetPeak: true });
        const a = await runPlan(plan, { target: whole, draft }, { inputIds: ids }, { maxNewTokens: 12 });
        const b = await runPlan(plan, { target: layered, draft }, { inputIds: ids }, { maxNewTokens: 12 });
        // The prompt's full KV over all layers (float32 keys and values). The whole graph holds it before
        // selecting; in the loop the target never does (one layer's past + present and the kept entries).
        const { numLayers, numKvHeads, headDim } = whole.info;
        const allLayersFullKv = ids.length * numLayers * numKvHeads * headDim * 2 * 4;
        const peakWhole = (await whole.kvMemoryStats()).peakLiveBytes;
        const peakLayered = (await layered.kvMemoryStats()).peakLiveBytes;
        expect(peakWhole).toBeGreaterThanOrEqual(allLayersFullKv);
        if (IN_THE_LOOP.has(method)) expect(peakLayered).toBeLessThan(allLayersFullKv);
        else expect(peakLayered).toBeGreaterThanOrEqual(allLayersFullKv);
        expect(b.tokens).toEqual(a.tokens);
        expect(b.usage.keptKvTokens).toEqual(a.usage.keptKvTokens);
        expect(b.kvBytes.afterPrefill).toBe(a.kvBytes.afterPrefill);
        if (native) {
          // Native prefill selects in its layer loop for every layer-local policy, with no ORT session at all.
          await native.target.kvMemoryStats({ resetPeak: true });
          const c = await runPlan(plan, native, { inputIds: ids }, { maxNewTokens: 12 });
          const peakNative = (await native.target.kvMemoryStats()).peakLiveBytes;
          if (IN_THE_LOOP.has(method)) expect(peakNative).toBeLessThan(allLayersFullKv);
          expect(c.tokens).toEqual(a.tokens);
          expect(c.usage.keptKvTokens).toEqual(a.usage.keptKvTokens);
          nativeKvBytes.set(`${method}:${ids.length}`, c.kvBytes.afterPrefill);
        }
      }
    }, 60_000);
  }
});

describe.runIf(nativeBuilt)('caches that hold only what they keep (native engine)', () => {
  it('AdaKV and PyramidKV keep their different per-head and per-layer counts exactly: KV bytes within 2% of SnapKV’s at the same budget', () => {
    for (const ids of prompts) {
      const snap = nativeKvBytes.get(`snapkv:${ids.length}`) as number;
      // SnapKV: every (layer, KV head) keeps the budget, plus the prompt's last token (run again after the
      // selection), float32 keys and values.
      const { numLayers, numKvHeads, headDim } = whole.info;
      expect(snap).toBe(2 * numLayers * numKvHeads * (BUDGET + 1) * headDim * 4);
      for (const method of ['adakv', 'pyramidkv']) {
        const bytes = nativeKvBytes.get(`${method}:${ids.length}`) as number;
        expect(Math.abs(bytes - snap) / snap).toBeLessThanOrEqual(0.02);
      }
    }
  });
});
