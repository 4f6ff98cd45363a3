import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DraftError, InvalidArgumentError, ModelLayoutError } from '@draft/core';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { instrumentGraph, loadModel } from '../src/index.js';
import { MODELS } from './helpers.js';

// The generated fixture variants (test/global-setup.ts writes them with @draft/models' converters).
const FIXTURES = `${MODELS}fixtures/`;
const DTYPES = `${FIXTURES}tiny-llama-dtypes`;
const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** binary16 → number, written here so that the reference below shares nothing with the runtime. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Greedy decoding with a plain onnxruntime-node session on the file itself (its own path, so ORT resolves
 * external data), feeding every present back as the next past: the reference the runtime must reproduce.
 */
async function plainOrtGreedy(modelPath: string, prompt: number[], steps: number): Promise<number[]> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const meta = session.inputMetadata as unknown as { name: string; type: 'float32' | 'float16'; shape: (number | string)[] }[];
  let past: Record<string, ort.Tensor> = {};
  for (const m of meta.filter((x) => x.name.startsWith('past_key_values.'))) {
    past[m.name] = new ort.Tensor(m.type, m.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, Number(m.shape[1]), 0, Number(m.shape[3])]);
  }
  const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  const tokens: number[] = [];
  let ids = prompt;
  let position = 0;
  for (let step = 0; step < steps; step++) {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64(ids),
      position_ids: i64(ids.map((_, i) => position + i)),
      attention_mask: i64(new Array(position + ids.length).fill(1)),
      ...past,
    };
    const out = await session.run(feeds);
    const vocab = Number(out.logits.dims[2]);
    const row = (out.logits.dims[1] as number) - 1;
    const value = (i: number) => (out.logits.type === 'float16' ? half((out.logits.data as Uint16Array)[row * vocab + i]) : (out.logits.data as Float32Array)[row * vocab + i]);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (value(i) > value(best)) best = i;
    tokens.push(best);
    past = {};
    for (const name of Object.keys(out)) if (name.startsWith('present.')) past[name.replace('present.', 'past_key_values.')] = out[name];
    position += ids.length;
    ids = [best];
  }
  await session.release();
  return tokens;
}

const PROMPT = [72, 101, 108, 108, 111, 32, 116, 104, 101, 114, 101, 44, 32, 102, 114, 105, 101, 110, 100, 46];
const STEPS = 12;

describe('dtype files and external data give the plain ORT greedy tokens of the same file', () => {
  const cases = [
    { label: 'q4 (MatMulNBits)', dir: DTYPES, dtype: 'q4', file: 'model_q4.onnx', kv: 'float32' },
    { label: 'int8 (MatMulInteger)', dir: DTYPES, dtype: 'int8', file: 'model_int8.onnx', kv: 'float32' },
    { label: 'q8 (model_quantized)', dir: DTYPES, dtype: 'q8', file: 'model_quantized.onnx', kv: 'float32' },
    { label: 'fp16 (float16 compute, KV and logits)', dir: DTYPES, dtype: 'fp16', file: 'model_fp16.onnx', kv: 'float16' },
    { label: 'q4f16 (float16 compute, MatMulNBits with float16 scales)', dir: DTYPES, dtype: 'q4f16', file: 'model_q4f16.onnx', kv: 'float16' },
    { label: 'modelFileName model_kv16 (float32 compute, float16 KV and logits I/O)', dir: DTYPES, dtype: undefined, file: 'model_kv16.onnx', kv: 'float16' },
    { label: 'external data (model.onnx_data)', dir: `${FIXTURES}tiny-llama-external`, dtype: undefined, file: 'model.onnx', kv: 'float32' },
    { label: 'chunked external data (3 chunks)', dir: `${FIXTURES}tiny-llama-chunked`, dtype: undefined, file: 'model.onnx', kv: 'float32' },
    { label: 'GQA with external RoPE caches', dir: `${FIXTURES}tiny-qwen2-gqa-external`, dtype: undefined, file: 'model.onnx', kv: 'float32' },
    { label: 'GQA fp16', dir: `${FIXTURES}tiny-qwen2-gqa-dtypes`, dtype: 'fp16', file: 'model_fp16.onnx', kv: 'float16' },
  ] as const;

  for (const c of cases) {
    it(c.label, async () => {
      const expected = await plainOrtGreedy(join(c.dir, 'onnx', c.file), PROMPT, STEPS);
      const modelFileName = c.file === 'model_kv16.onnx' ? 'model_kv16' : undefined;
      const model = await loadModel(c.dir, { threads: 1, modelFileName, ...(c.dtype ? { dtype: c.dtype } : {}) });
      try {
        expect(model.graph.kvType).toBe(c.kv);
        expect(model.graph.externalDataFiles.length).toBe(c.dir.endsWith('chunked') ? 3 : c.dir.endsWith('external') ? 1 : 0);
        const result = await model.generate({ inputIds: PROMPT }, { maxNewTokens: STEPS });
        expect(result.tokens).toEqual(expected);
        // True bytes: float16 caches take half the float32 size.
        const perElement = c.kv === 'float16' ? 2 : 4;
        expect(result.kvBytes.afterPrefill).toBe(2 * 2 * 2 * PROMPT.length * 16 * perElement);
      } finally {
        await model.dispose();
      }
    });
  }

  it('data files that are symlinks into another folder (the Hugging Face hub cache layout) load', async () => {
    // snapshots/<rev>/onnx/model.onnx_data_N -> ../../../blobs/<hash>: ORT alone refuses these paths.
    const cache = mkdtempSync(join(tmpdir(), 'draft-hub-'));
    scratch.push(cache);
    const snapshot = join(cache, 'snapshots', 'rev');
    cpSync(`${FIXTURES}tiny-llama-chunked`, snapshot, { recursive: true });
    mkdirSync(join(cache, 'blobs'));
    for (const [i, name] of ['model.onnx_data', 'model.onnx_data_1', 'model.onnx_data_2'].entries()) {
      renameSync(join(snapshot, 'onnx', name), join(cache, 'blobs', `blob${i}`));
      symlinkSync(join('..', '..', '..', 'blobs', `blob${i}`), join(snapshot, 'onnx', name));
    }
    const expected = await plainOrtGreedy(`${FIXTURES}tiny-llama-chunked/onnx/model.onnx`, PROMPT, STEPS);
    const model = await loadModel(snapshot, { threads: 1 });
    try {
      expect((await model.generate({ inputIds: PROMPT }, { maxNewTokens: STEPS })).tokens).toEqual(expected);
    } finally {
      await model.dispose();
    }
  });

  it('the dtype picks another file: q4 and fp32 greedy tokens differ', async () => {
    const q4 = await plainOrtGreedy(join(DTYPES, 'onnx', 'model_q4.onnx'), PROMPT, STEPS);
    const fp32 = await plainOrtGreedy(join(DTYPES, 'onnx', 'model.onnx'), PROMPT, STEPS);
    expect(q4).not.toEqual(fp32);
  });

  it('float16 caches read back as float32, gather and crop keep their float16 bits', async () => {
    const fp16 = await loadModel(DTYPES, { dtype: 'fp16', threads: 1 });
    const fp32 = await loadModel(DTYPES, { threads: 1 });
    try {
      const a = await fp16.forward({ inputIds: PROMPT, captureQueries: 4 });
      const b = await fp32.forward({ inputIds: PROMPT, captureQueries: 4 });
      const keys16 = await a.cache.readKeys(1);
      const keys32 = await b.cache.readKeys(1);
      expect(keys16).toBeInstanceOf(Float32Array);
      expect(keys16.length).toBe(keys32.length);
      let diff = 0;
      for (let i = 0; i < keys16.length; i++) diff = Math.max(diff, Math.abs(keys16[i] - keys32[i]));
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThan(0.05);
      expect(a.queries?.[0]).toBeInstanceOf(Float32Array);
      expect(a.queries?.[0].length).toBe(4 * 4 * 16);
      const kept = Int32Array.from([0, 3, 7, 19]);
      const gathered = await a.cache.gather(Array.from({ length: 2 }, () => [kept, kept]));
      const values = await a.cache.readValues(0);
      const gatheredValues = await gathered.readValues(0);
      // Head 1, kept entry 2 (= entry 7): the exact float16 value survives the gather.
      expect(Array.from(gatheredValues.subarray((4 + 2) * 16, (4 + 3) * 16))).toEqual(Array.from(values.subarray((20 + 7) * 16, (20 + 8) * 16)));
      expect(gathered.byteSize()).toBe(2 * 2 * 2 * 4 * 16 * 2);
      const cropped = await a.cache.crop(5);
      expect(Array.from((await cropped.readKeys(1)).subarray(0, 5 * 16))).toEqual(Array.from(keys16.subarray(0, 5 * 16)));
      const next = await fp16.forward({ inputIds: [65], cache: gathered });
      expect(next.logits.length).toBe(512);
    } finally {
      await fp16.dispose();
      await fp32.dispose();
    }
  });
});

describe('ragged caches on a float16 graph', () => {
  it('per-head counts on fp16 give the fp32 graph’s logits within float16 error', async () => {
    const [fp16, fp32] = await Promise.all([loadModel(DTYPES, { dtype: 'fp16', raggedCache: true, threads: 1 }), loadModel(DTYPES, { raggedCache: true, threads: 1 })]);
    try {
      // KV head 0 keeps 6 entries, head 1 keeps 3: the shorter head is padded and masked.
      const kept = [Int32Array.from([0, 2, 5, 9, 14, 19]), Int32Array.from([1, 7, 19])];
      const logits = await Promise.all(
        [fp16, fp32].map(async (m) => {
          const pre = await m.forward({ inputIds: PROMPT });
          const ragged = await pre.cache.gather([kept, kept]);
          expect(ragged.byteSize()).toBe(2 * 2 * 2 * 6 * 16 * (m === fp16 ? 2 : 4));
          return (await m.forward({ inputIds: [65], cache: ragged })).logits;
        }),
      );
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < logits[1].length; i++) {
        diff = Math.max(diff, Math.abs(logits[0][i] - logits[1][i]));
        scale = Math.max(scale, Math.abs(logits[1][i]));
      }
      expect(diff).toBeLessThan(0.01 * scale);
    } finally {
      await fp16.dispose();
      await fp32.dispose();
    }
  });
});

describe('query capture on float16 graphs', () => {
  it('reads the float16 cos/sin caches of a GroupQueryAttention graph', () => {
    const fp16 = instrumentGraph(readFileSync(`${FIXTURES}tiny-qwen2-gqa-dtypes/onnx/model_fp16.onnx`), { numLayers: 2, headDim: 16, path: 'fp16' });
    const fp32 = instrumentGraph(readFileSync(`${FIXTURES}tiny-qwen2-gqa/onnx/model.onnx`), { numLayers: 2, headDim: 16, path: 'fp32' });
    const [a, b] = [fp16.captures[0], fp32.captures[0]];
    if (a.kind !== 'gqa' || b.kind !== 'gqa') throw new Error('expected GroupQueryAttention captures');
    expect(a.cosCache?.length).toBe(2048 * 8);
    let diff = 0;
    for (let i = 0; i < (b.cosCache?.length ?? 0); i++) diff = Math.max(diff, Math.abs((a.cosCache?.[i] ?? 0) - (b.cosCache?.[i] ?? 0)));
    expect(diff).toBeLessThan(1e-3);
  });

  it('GroupQueryAttention fp16: captured (RoPE-applied) queries are float32 and close to the fp32 graph’s', async () => {
    const gqa = `${FIXTURES}tiny-qwen2-gqa-dtypes`;
    const fp16 = await loadModel(gqa, { dtype: 'fp16', threads: 1 });
    const fp32 = await loadModel(gqa, { threads: 1 });
    try {
      const [a, b] = await Promise.all([fp16, fp32].map((m) => m.forward({ inputIds: PROMPT, captureQueries: 3 })));
      for (let layer = 0; layer < 2; layer++) {
        const q16 = a.queries?.[layer] as Float32Array;
        const q32 = b.queries?.[layer] as Float32Array;
        expect(q16).toBeInstanceOf(Float32Array);
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < q32.length; i++) {
          diff = Math.max(diff, Math.abs(q16[i] - q32[i]));
          scale = Math.max(scale, Math.abs(q32[i]));
        }
        expect(diff).toBeLessThan(0.01 * scale);
      }
    } finally {
      await fp16.dispose();
      await fp32.dispose();
    }
  });
});

async function rejection(p: Promise<unknown>): Promise<DraftError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as DraftError,
  );
}

/** A copy of a fixture variant with `edit` applied. */
function copyOf(dir: string, edit: (copy: string) => void): string {
  const copy = mkdtempSync(join(tmpdir(), 'draft-dtype-'));
  scratch.push(copy);
  cpSync(dir, copy, { recursive: true });
  edit(copy);
  return copy;
}

function editConfig(dir: string, change: (config: Record<string, unknown>) => void): void {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  change(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
}

describe('bad dtype files are typed errors naming the file, before inference', () => {
  it('unknown dtype → InvalidArgumentError with the value and the valid list', async () => {
    const e = await rejection(loadModel(DTYPES, { dtype: 'q3' as never }));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toMatchObject({ argument: 'dtype', value: 'q3' });
    expect(e.message).toContain('fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4');
  });

  it('a dtype whose file is absent → ModelLayoutError naming it and listing the files present', async () => {
    const e = await rejection(loadModel(DTYPES, { dtype: 'bnb4' }));
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect(e.code).toBe('MODEL_LAYOUT');
    expect((e as ModelLayoutError).path).toBe(join(DTYPES, 'onnx', 'model_bnb4.onnx'));
    expect(e.message).toContain('q4 (model_q4.onnx)');
    expect(e.details.present).toEqual(['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16']);
  });

  it('transformers.js_config.dtype picks the file; kv_cache_dtype must match the graph', async () => {
    const q4f16 = copyOf(DTYPES, (d) => editConfig(d, (c) => Object.assign(c['transformers.js_config'] as object, { dtype: 'q4f16' })));
    const model = await loadModel(q4f16, { threads: 1 });
    expect(model.graph.kvType).toBe('float16');
    await model.dispose();
    const lying = copyOf(DTYPES, (d) => editConfig(d, (c) => Object.assign(c['transformers.js_config'] as object, { kv_cache_dtype: { q4: 'float16' } })));
    const e = await rejection(loadModel(lying, { dtype: 'q4' }));
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect(e.message).toContain('kv_cache_dtype');
  });

  it('missing external data file → ModelLayoutError naming it (declared in config, or only in the graph)', async () => {
    const declared = copyOf(`${FIXTURES}tiny-llama-chunked`, (d) => rmSync(join(d, 'onnx', 'model.onnx_data_1')));
    const e = await rejection(loadModel(declared));
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect((e as ModelLayoutError).path).toBe(join(declared, 'onnx', 'model.onnx_data_1'));
    const undeclared = copyOf(`${FIXTURES}tiny-llama-external`, (d) => {
      editConfig(d, (c) => delete c['transformers.js_config']);
      rmSync(join(d, 'onnx', 'model.onnx_data'));
    });
    const e2 = await rejection(loadModel(undeclared));
    expect(e2).toBeInstanceOf(ModelLayoutError);
    expect((e2 as ModelLayoutError).path).toBe(join(undeclared, 'onnx', 'model.onnx_data'));
    expect(e2.message).toMatch(/referenced by tensor '/);
  });

  it('truncated .onnx_data → ModelLayoutError naming the file and the tensor that does not fit', async () => {
    const dir = copyOf(`${FIXTURES}tiny-llama-external`, (d) => truncateSync(join(d, 'onnx', 'model.onnx_data'), 100_000));
    const e = await rejection(loadModel(dir));
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect((e as ModelLayoutError).path).toBe(join(dir, 'onnx', 'model.onnx_data'));
    expect(e.message).toMatch(/truncated.*the file has 100000 bytes/);
  });

  it('config heads / head_dim / layers that do not match the KV inputs → ModelLayoutError', async () => {
    for (const [change, fragment] of [
      [(c: Record<string, unknown>) => (c.num_key_value_heads = 1), 'num_key_value_heads = 1'],
      [(c: Record<string, unknown>) => (c.head_dim = 8), 'head_dim = 8'],
      [(c: Record<string, unknown>) => (c.num_hidden_layers = 3), 'num_hidden_layers = 3'],
    ] as const) {
      const dir = copyOf(`${FIXTURES}tiny-llama-external`, (d) => editConfig(d, change));
      const e = await rejection(loadModel(dir));
      expect(e).toBeInstanceOf(ModelLayoutError);
      expect(e.message).toContain(fragment);
      expect((e as ModelLayoutError).path).toBe(join(dir, 'onnx', 'model.onnx'));
    }
  });
});
