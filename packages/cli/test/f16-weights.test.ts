// fp16 exports (float16 weights, activations and KV, as Optimum writes model_fp16.onnx) on @draft/cuda's native
// engine: the matrices are read as half bits and widened exactly, activations stay float32. Two references:
// - the float32 twin whose weights hold the same half values (roundWeightsToHalf), run by the native engine with
//   float16 caches, must give bit-identical logits and caches (the same arithmetic on the same values);
// - ORT's float32 run of that twin (independent of our kernels) must agree within half-precision KV rounding.
// ORT's own fp16 graph rounds every activation too, so it agrees within a looser bound and gives the same tokens.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerDecodeEngine, UnsupportedCapabilityError } from '@draft/core';
import { decodeEngineModule, nativeInfo, registerNativeBackend } from '@draft/cuda';
import { convertToFp16, roundWeightsToHalf } from '@draft/models';
import { loadModel, type OrtCausalLM, type OrtKvCache } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, maxAbsDiff, scaleOf } from './numeric.js';

const RANDOM_TARGET = fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url));
const JS_ENGINE = fileURLToPath(new URL('../../runtime/test/fixtures/js-decoder.mjs', import.meta.url));
const nativeDecode = nativeInfo().native && decodeEngineModule() !== null;
const prompt = Array.from({ length: 150 }, (_, i) => 6 + ((i * 37) % 400));


describe.runIf(nativeDecode)('fp16 weights on the native engine', () => {
  let work: string;
  let fp16Dir: string;
  let twinDir: string;
  let registration: ReturnType<typeof registerNativeBackend>;
  let half: OrtCausalLM;
  let twin: OrtCausalLM;
  let ortTwin: OrtCausalLM;
  let ortFp16: OrtCausalLM;
  const native = { threads: 1, decodeEngine: 'native', prefillEngine: 'native' } as const;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'draft-f16w-'));
    fp16Dir = join(work, 'fp16');
    twinDir = join(work, 'twin');
    const fp32 = readFileSync(join(RANDOM_TARGET, 'onnx', 'model.onnx'));
    for (const dir of [fp16Dir, twinDir]) cpSync(RANDOM_TARGET, dir, { recursive: true });
    writeFileSync(join(fp16Dir, 'onnx', 'model_fp16.onnx'), convertToFp16(fp32).bytes);
    writeFileSync(join(twinDir, 'onnx', 'model.onnx'), roundWeightsToHalf(fp32));
    registration = registerNativeBackend();
    half = await loadModel(fp16Dir, { ...native, dtype: 'fp16' });
    twin = await loadModel(twinDir, { ...native, kvStorage: 'float16' });
    ortTwin = await loadModel(twinDir, { threads: 1 });
    ortFp16 = await loadModel(fp16Dir, { threads: 1, dtype: 'fp16' });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([half?.dispose(), twin?.dispose(), ortTwin?.dispose(), ortFp16?.dispose()]);
    registration?.unregister();
    rmSync(work, { recursive: true, force: true });
  });

  it('loads an fp16 export natively: half-bit matrices and float16 caches, said in graph', () => {
    expect(half.graph.decodeEngine).not.toBe('ort');
    expect(half.graph.prefillEngine).toBe(half.graph.decodeEngine);
    expect(half.graph.nativeWeightDtype).toBe('float16');
    expect(half.graph.kvType).toBe('float16');
    expect(twin.graph.nativeWeightDtype).toBe('float32');
  });

  it('gives the float32 twin’s logits and caches bit for bit (prefill and decode steps), and ORT’s within KV rounding', async () => {
    let a = await half.forward({ inputIds: prompt });
    let b = await twin.forward({ inputIds: prompt });
    let r = await ortTwin.forward({ inputIds: prompt });
    const steps: Array<[OrtKvCache, OrtKvCache, OrtKvCache]> = [];
    for (let step = 0; ; step++) {
      expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
      expect(a.cache.byteSize()).toBe(b.cache.byteSize());
      // ORT reads float32 caches; ours hold each K/V rounded to half (about 2^-11 relative per entry).
      expect(maxAbsDiff(a.logits, r.logits)).toBeLessThan(1e-2 * scaleOf(r.logits));
      steps.push([a.cache, b.cache, r.cache]);
      if (step === 6) break;
      const token = argmax(r.logits);
      [a, b, r] = await Promise.all([half.forward({ inputIds: [token], cache: a.cache }), twin.forward({ inputIds: [token], cache: b.cache }), ortTwin.forward({ inputIds: [token], cache: r.cache })]);
    }
    for (let l = 0; l < 4; l++) expect(Array.from(await a.cache.readKeys(l))).toEqual(Array.from(await b.cache.readKeys(l)));
    for (const caches of steps) for (const c of caches) c.dispose();
  });

  it('generates the greedy tokens of ORT’s own fp16 graph, whose activations are rounded to half as well', async () => {
    const ids = prompt.slice(0, 100);
    const [a, o] = await Promise.all([half.forward({ inputIds: ids }), ortFp16.forward({ inputIds: ids })]);
    expect(maxAbsDiff(a.logits, o.logits)).toBeLessThan(5e-2 * scaleOf(o.logits));
    a.cache.dispose();
    o.cache.dispose();
    const [mine, theirs] = await Promise.all([half.generate({ inputIds: ids }, { maxNewTokens: 12 }), ortFp16.generate({ inputIds: ids }, { maxNewTokens: 12 })]);
    expect(mine.tokens).toEqual(theirs.tokens);
  });

  it('refuses, typed, an engine that reads float32 weights only (it would read half bits as floats)', async () => {
    const undo = registerDecodeEngine({ name: 'js-reference', module: JS_ENGINE });
    try {
      const error = await loadModel(fp16Dir, { threads: 1, dtype: 'fp16', decodeEngine: 'native' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedCapabilityError);
      expect((error as UnsupportedCapabilityError).capability).toBe('nativeDecode');
      expect((error as Error).message).toMatch(/weights are float16/);
    } finally {
      undo();
    }
  });
});
