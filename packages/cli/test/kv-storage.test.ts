// loadModel({ kvStorage: 'float16' }) with @draft/cuda's native engine: every cache holds half bits (half the
// bytes of float32, packed AdaKV caches included), each stored value is the half nearest to what the float32
// graph computes, and logits stay within half-precision rounding of ORT's float32 run. Refusals are typed.
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, UnsupportedCapabilityError } from '@draft/core';
import { decodeEngineModule, nativeInfo, registerNativeBackend } from '@draft/cuda';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, maxAbsDiff, scaleOf } from './numeric.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../models/fixtures/${name}`, import.meta.url));
const RANDOM_TARGET = fixture('random-target');
const nativeDecode = nativeInfo().native && decodeEngineModule() !== null;
const prompt = Array.from({ length: 300 }, (_, i) => 6 + ((i * 37) % 400));
const LAYERS = 4;

/** The value of the IEEE half nearest to x (ties to even), from the format's definition. */
function nearestHalf(x: number): number {
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Number.POSITIVE_INFINITY;
  const ulp = 2 ** ((a < 2 ** -14 ? -14 : Math.floor(Math.log2(a))) - 10);
  const q = a / ulp;
  const f = Math.floor(q);
  return Math.sign(x) * ulp * (q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f);
}


describe.runIf(nativeDecode)("kvStorage: 'float16' on the native engine", () => {
  let registration: ReturnType<typeof registerNativeBackend>;
  let half: OrtCausalLM;
  let full: OrtCausalLM;
  let ort: OrtCausalLM;
  beforeAll(async () => {
    registration = registerNativeBackend();
    const native = { threads: 1, decodeEngine: 'native', prefillEngine: 'native' } as const;
    half = await loadModel(RANDOM_TARGET, { ...native, kvStorage: 'float16' });
    full = await loadModel(RANDOM_TARGET, native);
    ort = await loadModel(RANDOM_TARGET, { threads: 1 });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([half?.dispose(), full?.dispose(), ort?.dispose()]);
    registration?.unregister();
  });

  it("stores the half nearest each K/V of ORT's float32 prefill in half the bytes; prefill and decode logits within half rounding of ORT's", async () => {
    expect(half.graph.kvType).toBe('float16');
    expect(full.graph.kvType).toBe('float32');
    const a = await half.forward({ inputIds: prompt });
    const b = await full.forward({ inputIds: prompt });
    const r = await ort.forward({ inputIds: prompt });
    expect(a.cache.byteSize() * 2).toBe(b.cache.byteSize());
    expect((await half.kvMemoryStats()).liveBytes * 2).toBe((await full.kvMemoryStats()).liveBytes);
    // Layer 0's keys and values depend on the embeddings alone: exactly the nearest half of ORT's (or its
    // neighbour, where ORT's float32 value sits within float rounding of a tie).
    for (const read of ['readKeys', 'readValues'] as const) {
      const mine = await a.cache[read](0);
      const theirs = await r.cache[read](0);
      expect(mine.length).toBe(theirs.length);
      for (let i = 0; i < mine.length; i++) {
        expect(Math.abs(mine[i] - nearestHalf(theirs[i]))).toBeLessThanOrEqual(2 ** -10 * Math.max(2 ** -4, Math.abs(theirs[i])));
      }
    }
    // Later layers read earlier layers' rounded values: within half-precision noise of ORT's.
    for (let l = 1; l < LAYERS; l++) {
      const mine = await a.cache.readKeys(l);
      const theirs = await r.cache.readKeys(l);
      expect(maxAbsDiff(mine, theirs)).toBeLessThan(1e-2 * scaleOf(theirs));
    }
    // Rounding every K/V to 11 significant bits moves this random 4-layer model's logits by up to ~0.5% of their
    // scale (a trained model's by less; wrong maths by the scale itself).
    expect(maxAbsDiff(a.logits, r.logits)).toBeLessThan(1e-2 * scaleOf(r.logits));
    expect(maxAbsDiff(b.logits, r.logits)).toBeLessThan(1e-4 * scaleOf(r.logits));
    // Decode steps over the half cache (in place), against ORT's steps over its float32 cache.
    let [mine, theirs] = [a, r];
    for (let step = 0; step < 6; step++) {
      const token = argmax(theirs.logits);
      const [nextMine, nextTheirs] = await Promise.all([half.forward({ inputIds: [token], cache: mine.cache }), ort.forward({ inputIds: [token], cache: theirs.cache })]);
      mine.cache.dispose();
      theirs.cache.dispose();
      [mine, theirs] = [nextMine, nextTheirs];
      expect(maxAbsDiff(mine.logits, theirs.logits)).toBeLessThan(1e-2 * scaleOf(theirs.logits));
    }
    expect(mine.cache.byteSize() * 2).toBe(LAYERS * 2 * 2 * (prompt.length + 6) * 16 * 4);
    for (const c of [mine.cache, theirs.cache, b.cache]) c.dispose();
    expect((await half.kvMemoryStats()).liveBytes).toBe(0);
  });

  it('keeps packed per-head caches (different counts per KV head) at half the bytes of float32, stepping with their logits', async () => {
    // Head h of layer l keeps 40 + 8·(l + h) spread positions: counts differ, so both models pack them.
    const selectLayer = async ({ layer }: { layer: number }) =>
      Array.from({ length: 2 }, (_, h) => Int32Array.from({ length: 40 + 8 * (layer + h) }, (_, j) => Math.floor((j * (prompt.length - 1)) / (40 + 8 * (layer + h)))));
    const run = async (model: OrtCausalLM) => {
      const selected = await (model.prefillSelect as NonNullable<OrtCausalLM['prefillSelect']>)({ inputIds: prompt, captureQueries: 4, selectLayer });
      const step = await model.forward({ inputIds: [21], cache: selected.cache });
      return { selected: selected.cache, step };
    };
    const h = await run(half);
    const f = await run(full);
    const counts = Array.from({ length: LAYERS }, (_, l) => 40 + 8 * l + (40 + 8 * (l + 1)));
    expect(f.selected.byteSize()).toBe(counts.reduce((s, n) => s + n, 0) * 2 * 16 * 4);
    expect(h.selected.byteSize() * 2).toBe(f.selected.byteSize());
    expect(maxAbsDiff(h.step.logits, f.step.logits)).toBeLessThan(1e-2 * scaleOf(f.step.logits));
    for (const c of [h.selected, h.step.cache, f.selected, f.step.cache]) c.dispose();
  });

  it('generates the float32 engine’s greedy tokens on this fixture, and refuses debugOutputs (they need the float32 graph) without losing the model', async () => {
    const [a, b] = await Promise.all([half.generate({ inputIds: prompt.slice(0, 120) }, { maxNewTokens: 12 }), full.generate({ inputIds: prompt.slice(0, 120) }, { maxNewTokens: 12 })]);
    expect(a.tokens).toEqual(b.tokens);
    await expect(half.forward({ inputIds: prompt.slice(0, 8), debugOutputs: ['logits'] })).rejects.toBeInstanceOf(UnsupportedCapabilityError);
    const again = await half.generate({ inputIds: prompt.slice(0, 120) }, { maxNewTokens: 12 });
    expect(again.tokens).toEqual(a.tokens);
  });
});

describe("kvStorage refusals", () => {
  it("names the option: a bad value, or 'float16' without native prefill and decode", async () => {
    await expect(loadModel(RANDOM_TARGET, { kvStorage: 'bfloat16' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    for (const options of [{}, { decodeEngine: 'native' as const }]) {
      const error = await loadModel(RANDOM_TARGET, { ...options, kvStorage: 'float16' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).message).toContain("prefillEngine: 'native'");
    }
  });
});

describe('--kv-storage', () => {
  it('a bad value, or float16 without both native engines, is a usage error naming the flag', async () => {
    const { cli } = await import('./helpers.js');
    const models = ['--target', 'no/such/folder', '--draft', 'no/such/folder'];
    for (const args of [
      ['generate', '--prompt', 'hi', ...models],
      ['serve', '--port', '0', ...models],
    ]) {
      const bad = await cli([...args, '--kv-storage', 'int4']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(`Invalid --kv-storage: got "int4", expected 'float32' or 'float16'`);
      const alone = await cli([...args, '--decode-engine', 'native', '--kv-storage', 'float16']);
      expect(alone.code).toBe(2);
      expect(alone.stderr).toContain('together with --decode-engine native --prefill-engine native');
    }
  });

  it.runIf(nativeDecode)('generate --kv-storage float16 reports half the KV bytes of float32 (SnapKV and full)', async () => {
    const { cli } = await import('./helpers.js');
    const prompt = Array.from({ length: 12 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
    const run = async (storage: string, method: string) => {
      const args = ['generate', '--json', '--target', RANDOM_TARGET, '--method', method, '--budget', '48', '--window', '8', '--prompt', prompt, '--max-new-tokens', '4'];
      const { code, stdout, stderr } = await cli([...args, '--decode-engine', 'native', '--prefill-engine', 'native', '--kv-storage', storage]);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      return JSON.parse(stdout) as { kvBytes: { afterPrefill: number } };
    };
    for (const method of ['snapkv', 'full']) {
      const [half, single] = [await run('float16', method), await run('float32', method)];
      const bytes = (r: typeof half) => r.kvBytes.afterPrefill;
      expect(bytes(single)).toBeGreaterThan(0);
      expect(bytes(half) * 2).toBe(bytes(single));
    }
  }, 60_000);
});
