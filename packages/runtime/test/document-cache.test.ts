import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheFileError, createPipeline, DraftError } from '@draft/core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCacheContainer } from '../src/document-cache/container.js';
import { buildDocumentCache, CACHE_FILE_VERSION, loadModel, type OrtCausalLM, openCacheContainer, openDocumentCache } from '../src/index.js';
import { MODELS, TINY_LLAMA, TINY_QWEN2_GQA } from './helpers.js';

const DTYPES = `${MODELS}fixtures/tiny-llama-dtypes`;
const scratch = mkdtempSync(join(tmpdir(), 'draft-doc-cache-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A symbolic document for the trained pair (models/target): filler words with four key → value facts. */
function trainedPairDocument(): string {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const words = Array.from({ length: 400 }, () => `w${String(Math.floor(next() * 64)).padStart(2, '0')}`);
  for (const [i, fact] of ['k10 v20', 'k11 v31', 'k12 v42', 'k13 v53'].entries()) words.splice(40 + i * 90, 0, ...fact.split(' '));
  return words.join(' ');
}

const PROMPT = [72, 101, 108, 108, 111, 32, 116, 104, 101, 114, 101, 44, 32, 102, 114, 105, 101, 110, 100, 46];

async function expectCacheError(promise: Promise<unknown>, reason: string, path: string): Promise<CacheFileError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(DraftError.isInstance(error)).toBe(true);
  const e = error as CacheFileError;
  expect(e.code).toBe('CACHE_FILE');
  expect(e.reason).toBe(reason);
  expect(e.path).toBe(path);
  expect(e.message).toContain(path);
  return e;
}

describe('document caches on the trained pair: prefill once, ask many questions', () => {
  let target: OrtCausalLM;
  const file = join(scratch, 'doc.dkv');
  beforeAll(async () => {
    target = await loadModel(`${MODELS}target`, { threads: 1 });
  });
  afterAll(() => target?.dispose());

  it('answers each question with the tokens of a fresh full-KV run on document ++ question, prefilling only the question', async () => {
    const document = trainedPairDocument();
    const built = await buildDocumentCache({ target, document, path: file });
    const n = target.tokenizer.encode(document).length;
    expect(built.header.target.tokenCount).toBe(n);
    expect(built.header.target.queryCount).toBe(128);
    expect(built.header.formatVersion).toBe(CACHE_FILE_VERSION);
    await using cache = await openDocumentCache(file, { target });
    const pipeline = createPipeline({ target });
    // The facts were written as 'k10 v20' …: the trained target answers each key's value (hand-made answers).
    for (const [key, value] of [['k10', 'v20'], ['k12', 'v42'], ['k13', 'v53']]) {
      const ids = cache.promptIds(`Q ${key} A`);
      expect(ids).toHaveLength(n + 3);
      const fresh = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8 });
      const cached = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8, prefix: cache.prefix });
      expect(fresh.text).toBe(value);
      expect(cached.tokens).toEqual(fresh.tokens);
      expect(cached.usage.cachedPromptTokens).toBe(n);
      expect(cached.usage.promptTokens).toBe(n + 3);
      expect(cached.usage.keptKvTokens[0][0]).toBe(n + 3);
    }
  });

  it('refuses a prompt that does not start with the stored document', async () => {
    await using cache = await openDocumentCache(file, { target });
    const other = cache.inputIds.slice();
    other[5] = other[5] === 10 ? 11 : 10;
    await expect(createPipeline({ target }).generate({ inputIds: [...other, 4] }, { maxNewTokens: 2, prefix: cache.prefix })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      argument: 'prefix',
    });
  });
});

describe('the stored KV is the model file\'s own present tensors, in the graph\'s element type', () => {
  it('fp16 KV: the stored float16 keys/values match a plain ORT session on the same file', async () => {
    const model = await loadModel(DTYPES, { dtype: 'fp16', threads: 1 });
    const file = join(scratch, 'fp16.dkv');
    try {
      await buildDocumentCache({ target: model, document: { inputIds: PROMPT }, path: file, storeQueries: 4 });
      // Loaded back as float16 bits: the cached run feeds ORT what a fresh run would, so the tokens agree.
      await using cache = await openDocumentCache(file, { target: model });
      const ids = [...PROMPT, 32, 104];
      const pipeline = createPipeline({ target: model });
      const fresh = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8 });
      expect((await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8, prefix: cache.prefix })).tokens).toEqual(fresh.tokens);
    } finally {
      await model.dispose();
    }
    // Reference: one plain run of onnx/model_fp16.onnx over the prompt (no runtime code involved).
    const session = await ort.InferenceSession.create(join(DTYPES, 'onnx', 'model_fp16.onnx'), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(PROMPT), position_ids: i64(PROMPT.map((_, i) => i)), attention_mask: i64(PROMPT.map(() => 1)) };
    for (const name of session.inputNames.filter((x) => x.startsWith('past_key_values.'))) feeds[name] = new ort.Tensor('float16', new Uint16Array(0), [1, 2, 0, 16]);
    const out = await session.run(feeds);
    await session.release();
    const container = openCacheContainer(file);
    try {
      const header = container.header as unknown as { target: { fingerprint: { dtype: string; kvType: string; onnx: { file: string } } } };
      expect(header.target.fingerprint).toMatchObject({ dtype: 'fp16', kvType: 'float16', onnx: { file: 'model_fp16.onnx' } });
      // 2 layers × (key + value) × 2 KV heads × 20 tokens × 16 dims, 2 bytes each, plus 2 × 4 heads × 4 queries × 16 floats.
      const kvSections = container.header.sections.filter((s) => /\.(key|value)$/.test(s.name));
      expect(kvSections.reduce((a, s) => a + s.byteLength, 0)).toBe(2 * 2 * 2 * 20 * 16 * 2);
      for (let l = 0; l < 2; l++) {
        for (const which of ['key', 'value'] as const) {
          const stored = container.read(`target.${l}.${which}`);
          expect(stored).toBeInstanceOf(Uint16Array);
          const reference = out[`present.${l}.${which}`].data as Uint16Array;
          expect(stored.length).toBe(reference.length);
          // Same bits, allowing one float16 ulp where the instrumented graph's kernels round differently.
          let maxUlp = 0;
          for (let i = 0; i < reference.length; i++) maxUlp = Math.max(maxUlp, Math.abs(stored[i] - reference[i]));
          expect(maxUlp).toBeLessThanOrEqual(1);
        }
      }
    } finally {
      container.close();
    }
  });
});

describe('refused cache files: typed errors naming the file, before any inference; the model stays usable', () => {
  let model: OrtCausalLM;
  let good: string;
  let expected: number[];
  beforeAll(async () => {
    model = await loadModel(TINY_LLAMA, { threads: 1 });
    good = join(scratch, 'tiny.dkv');
    await buildDocumentCache({ target: model, document: { inputIds: PROMPT }, path: good, storeQueries: 'all' });
    expected = (await model.generate({ inputIds: [...PROMPT, 32] }, { maxNewTokens: 6 })).tokens;
  });
  afterAll(() => model?.dispose());

  const variant = (name: string, edit: (bytes: Buffer) => Buffer) => {
    const path = join(scratch, name);
    writeFileSync(path, edit(readFileSync(good)));
    return path;
  };

  async function stillUsable(): Promise<void> {
    expect((await model.generate({ inputIds: [...PROMPT, 32] }, { maxNewTokens: 6 })).tokens).toEqual(expected);
  }

  it('a good file opens and reproduces the fresh run', async () => {
    await using cache = await openDocumentCache(good, { target: model });
    expect(cache.prefix.target?.queryCount).toBe(PROMPT.length);
    const cached = await createPipeline({ target: model }).generate({ inputIds: [...PROMPT, 32] }, { maxNewTokens: 6, prefix: cache.prefix });
    expect(cached.tokens).toEqual(expected);
  });

  it('a missing file: unreadable', async () => {
    const path = join(scratch, 'missing.dkv');
    await expectCacheError(openDocumentCache(path, { target: model }), 'unreadable', path);
  });

  it('another file: not-a-cache-file', async () => {
    const path = join(scratch, 'config.dkv');
    copyFileSync(join(TINY_LLAMA, 'config.json'), path);
    await expectCacheError(openDocumentCache(path, { target: model }), 'not-a-cache-file', path);
  });

  it('another format version: unsupported-version', async () => {
    const path = variant('v2.dkv', (b) => {
      b.writeUInt32LE(CACHE_FILE_VERSION + 1, 8);
      return b;
    });
    const e = await expectCacheError(openDocumentCache(path, { target: model }), 'unsupported-version', path);
    expect(e.details).toMatchObject({ version: CACHE_FILE_VERSION + 1, supported: [CACHE_FILE_VERSION] });
    await stillUsable();
  });

  it('truncated (last bytes cut, or cut inside the fixed header): truncated', async () => {
    const path = join(scratch, 'cut.dkv');
    copyFileSync(good, path);
    truncateSync(path, readFileSync(good).length - 100);
    await expectCacheError(openDocumentCache(path, { target: model }), 'truncated', path);
    truncateSync(path, 20);
    await expectCacheError(openDocumentCache(path, { target: model }), 'truncated', path);
    await stillUsable();
  });

  it('one payload byte changed (or one header digit): checksum', async () => {
    const flipped = variant('flip.dkv', (b) => {
      b[b.length - 7] ^= 0x01;
      return b;
    });
    await expectCacheError(openDocumentCache(flipped, { target: model }), 'checksum', flipped);
    // A token id in the JSON header changed from 72 to 73: still valid JSON, caught by the checksum.
    const edited = variant('ids.dkv', (b) => {
      const at = b.indexOf('"inputIds":[72,');
      b[at + '"inputIds":['.length + 1] = '3'.charCodeAt(0);
      return b;
    });
    await expectCacheError(openDocumentCache(edited, { target: model }), 'checksum', edited);
    await stillUsable();
  });

  it('a consistent file whose header is not a document cache: malformed', async () => {
    const path = join(scratch, 'foreign.dkv');
    writeCacheContainer(path, { format: 'something-else' }, []);
    await expectCacheError(openDocumentCache(path, { target: model }), 'malformed', path);
  });

  it('another model: model-mismatch, naming what differs', async () => {
    const other = await loadModel(TINY_QWEN2_GQA, { threads: 1 });
    try {
      const e = await expectCacheError(openDocumentCache(good, { target: other }), 'model-mismatch', good);
      expect((e.details as { fields: string[] }).fields).toEqual(expect.arrayContaining(['architecture', 'configSha256', 'onnx']));
    } finally {
      await other.dispose();
    }
    await stillUsable();
  });

  it('a stored draft from another model: model-mismatch for the draft role; an unwritable path: INVALID_ARGUMENT', async () => {
    const path = join(scratch, 'with-draft.dkv');
    await buildDocumentCache({ target: model, draft: model, document: { inputIds: PROMPT }, path });
    const other = await loadModel(TINY_QWEN2_GQA, { threads: 1 });
    try {
      const e = await expectCacheError(openDocumentCache(path, { target: model, draft: other }), 'model-mismatch', path);
      expect(e.details).toMatchObject({ role: 'draft' });
      // Without a draft model the stored draft KV is simply not loaded.
      await using cache = await openDocumentCache(path, { target: model });
      expect(cache.prefix.draft).toBeUndefined();
    } finally {
      await other.dispose();
    }
    await expect(buildDocumentCache({ target: model, document: { inputIds: PROMPT }, path: join(scratch, 'no-such-dir', 'x.dkv') })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      argument: 'path',
    });
    await stillUsable();
  });

  it('the same model in another dtype: dtype-mismatch, naming both dtypes', async () => {
    const fp32 = await loadModel(DTYPES, { threads: 1 });
    const fp16 = await loadModel(DTYPES, { dtype: 'fp16', threads: 1 });
    try {
      const path = join(scratch, 'fp32.dkv');
      await buildDocumentCache({ target: fp32, document: { inputIds: PROMPT }, path });
      const e = await expectCacheError(openDocumentCache(path, { target: fp16 }), 'dtype-mismatch', path);
      expect(e.details).toMatchObject({ stored: { dtype: 'fp32', kvType: 'float32' }, loaded: { dtype: 'fp16', kvType: 'float16' } });
      expect(e.message).toContain('--dtype fp32');
      expect((await fp16.generate({ inputIds: PROMPT }, { maxNewTokens: 2 })).tokens).toHaveLength(2);
    } finally {
      await fp32.dispose();
      await fp16.dispose();
    }
  });
});
