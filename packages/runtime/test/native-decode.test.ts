// loadModel({ decodeEngine: 'native' }): single-token steps go to the decode engine registered with @draft/core,
// over the same in-place caches. A plain-JS engine (fixtures/js-decoder.mjs) stands in for @draft/cuda's addon
// (whose kernel has its own tests, and whose end-to-end tokens the bench package checks): the tokens and
// logits must be ORT's, alone and batched; what the engine cannot do must be refused at load, typed.
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, registerDecodeEngine, UnsupportedCapabilityError } from '@draft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '../src/index.js';
import { argmax, maxAbsDiff, TINY_LLAMA, TINY_QWEN2_GQA, TINY_QWEN3, TORCH_LLAMA } from './helpers.js';

const JS_ENGINE = fileURLToPath(new URL('./fixtures/js-decoder.mjs', import.meta.url));
const OFF_ENGINE = fileURLToPath(new URL('./fixtures/js-decoder-off.mjs', import.meta.url));
const prompt = Array.from({ length: 29 }, (_, i) => (i * 13 + 3) % 200);

async function greedy(model: OrtCausalLM, first: number, steps: number): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  let cache: OrtKvCache = (await model.forward({ inputIds: prompt })).cache;
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let token = first;
  for (let i = 0; i < steps; i++) {
    const step = await model.forward({ inputIds: [token], cache });
    cache.dispose();
    cache = step.cache;
    logits.push(step.logits);
    token = argmax(step.logits);
    tokens.push(token);
  }
  cache.dispose();
  return { tokens, logits };
}

describe('native decode engine', () => {
  const undo: Array<() => void> = [];
  afterEach(() => {
    for (const u of undo.splice(0)) u();
  });

  // tiny-llama names its weights as Hugging Face does; torch-llama is a plain torch.onnx.export (weights named
  // onnx::MatMul_N, stored (in, out), RoPE computed in the graph), found by their place in the graph.
  it.each([
    ['tiny-llama', TINY_LLAMA],
    ['torch-llama', TORCH_LLAMA],
  ])('%s: decodes the tokens and logits of ORT, across buffer growth, and says so in graph.decodeEngine', async (_, dir) => {
    undo.push(registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE }));
    const nativeModel = await loadModel(dir, { threads: 1, decodeEngine: 'native' });
    const ortModel = await loadModel(dir, { threads: 1 });
    try {
      expect(nativeModel.graph.decodeEngine).toBe('js-reference');
      expect(nativeModel.graph.nativeCheckError).toBeLessThan(1e-4);
      const before = (await nativeModel.decodeBatchStats()).nativeSteps;
      expect(ortModel.graph.decodeEngine).toBe('ort');
      // 180 steps: past the first buffer's 32 free columns and the next 128, so the cache is widened twice under
      // the engine, the second time into a buffer the pool may hand back with old values in its free columns
      // (native widening leaves them as they are).
      const a = await greedy(nativeModel, 7, 180);
      const b = await greedy(ortModel, 7, 180);
      expect((await nativeModel.decodeBatchStats()).nativeSteps - before).toBe(180);
      expect(a.tokens).toEqual(b.tokens);
      for (const [i, l] of a.logits.entries()) expect(maxAbsDiff(l, b.logits[i])).toBeLessThan(1e-4);
    } finally {
      await Promise.all([nativeModel.dispose(), ortModel.dispose()]);
    }
  });

  it('concurrent sequences of different lengths step together and each gets its own tokens', async () => {
    undo.push(registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE }));
    const model = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native' });
    const ortModel = await loadModel(TINY_LLAMA, { threads: 1 });
    try {
      const prompts = [prompt, prompt.slice(0, 11), prompt.slice(5, 25)];
      const together = await Promise.all(prompts.map((p) => model.generate({ inputIds: p }, { maxNewTokens: 12 })));
      expect((await model.decodeBatchStats()).batches).toBeGreaterThan(0);
      for (const [i, p] of prompts.entries()) {
        const alone = await ortModel.generate({ inputIds: p }, { maxNewTokens: 12 });
        expect(together[i].tokens).toEqual(alone.tokens);
      }
    } finally {
      await Promise.all([model.dispose(), ortModel.dispose()]);
    }
  });

  it('ragged caches (different counts per layer and KV head, padded per head) decode natively with ORT\'s tokens and logits', async () => {
    undo.push(registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE }));
    // AdaKV/PyramidKV-like selection over the 29-token prompt: counts differ per layer and per KV head.
    const kept = [
      [Int32Array.from([0, 1, 4, 9, 13, 17, 20, 25, 27, 28]), Int32Array.from([0, 2, 3, 26, 27, 28])],
      [Int32Array.from([1, 5, 27, 28]), Int32Array.from({ length: 12 }, (_, i) => 17 + i)],
    ];
    const run = async (model: OrtCausalLM) => {
      const { cache, logits } = await model.forward({ inputIds: prompt });
      let c = await cache.gather(kept, { consume: true });
      const tokens: number[] = [];
      const all: Float32Array[] = [];
      let token = argmax(logits);
      for (let i = 0; i < 12; i++) {
        const step = await model.forward({ inputIds: [token], cache: c });
        c.dispose();
        c = step.cache;
        all.push(step.logits);
        token = argmax(step.logits);
        tokens.push(token);
      }
      expect(c.lengths[1]).toEqual([4 + 12, 12 + 12]);
      c.dispose();
      return { tokens, all };
    };
    const nativeModel = await loadModel(TORCH_LLAMA, { threads: 1, raggedCache: true, decodeEngine: 'native' });
    const ortModel = await loadModel(TORCH_LLAMA, { threads: 1, raggedCache: true });
    try {
      const before = (await nativeModel.decodeBatchStats()).nativeSteps;
      const a = await run(nativeModel);
      // Every step ran natively: the 12 steps over the padded cache (no ORT fallback hides behind equal tokens).
      expect((await nativeModel.decodeBatchStats()).nativeSteps - before).toBe(12);
      const b = await run(ortModel);
      expect((await ortModel.decodeBatchStats()).nativeSteps).toBe(0);
      expect(a.tokens).toEqual(b.tokens);
      for (const [i, l] of a.all.entries()) expect(maxAbsDiff(l, b.all[i])).toBeLessThan(1e-4);
      expect((await nativeModel.kvMemoryStats()).liveBytes).toBe(0);
    } finally {
      await Promise.all([nativeModel.dispose(), ortModel.dispose()]);
    }
  });

  it('refuses an engine whose logits are not the graph\'s (load-time check), naming the difference', async () => {
    undo.push(registerDecodeEngine({ name: 'js-off', module: OFF_ENGINE }));
    const error = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedCapabilityError);
    expect((error as UnsupportedCapabilityError).capability).toBe('nativeDecode');
    expect((error as Error).message).toMatch(/logits differ from the graph's by/);
  });

  it('refuses graphs whose maths the engine does not implement (q/k norms); fused attention is no reason (see native-prefill.test.ts)', async () => {
    undo.push(registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE }));
    const fused = await loadModel(TINY_QWEN2_GQA, { threads: 1, decodeEngine: 'native' });
    expect(fused.graph.decodeEngine).toBe('js-reference');
    await fused.dispose();
    const qkNorm = await loadModel(TINY_QWEN3, { threads: 1, decodeEngine: 'native' }).catch((e: unknown) => e);
    expect(qkNorm).toBeInstanceOf(UnsupportedCapabilityError);
    expect((qkNorm as UnsupportedCapabilityError).capability).toBe('nativeDecode');
  });

  it('needs a registered engine and a known decodeEngine value', async () => {
    const missing = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'native' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UnsupportedCapabilityError);
    expect((missing as Error).message).toMatch(/@draft\/cuda\/register/);
    const bad = await loadModel(TINY_LLAMA, { threads: 1, decodeEngine: 'gpu' as never }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidArgumentError);
    expect((bad as InvalidArgumentError).value).toBe('gpu');
  });
});
