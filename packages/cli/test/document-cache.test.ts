import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CausalLMV1, createPipeline, type PolicyConfig } from '@draft/core';
import { planMethod } from '@draft/methods';
import { buildDocumentCache, loadModel, type OrtCausalLM, openDocumentCache } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { symbolicDocument } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

// "Prefill a document once, ask many questions" on the bundled trained pair (models/target, models/draft).
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'draft-cli-doc-cache-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// 400 tokens, three facts: k00 v03, k01 v10, k02 v17 (value index (7i + 3) mod 96, written by symbolicDocument).
const { document, questions } = symbolicDocument(400, 3);
const ANSWERS = ['v03', 'v10', 'v17'];
const docFile = join(scratch, 'doc.txt');
writeFileSync(docFile, document);

let target: OrtCausalLM;
let draft: OrtCausalLM;
beforeAll(async () => {
  target = await loadModel(`${MODELS}target`, { threads: 1 });
  draft = await loadModel(`${MODELS}draft`, { threads: 1 });
});
afterAll(async () => {
  await target?.dispose();
  await draft?.dispose();
});

/** A fresh run of `method` on the document's tokens followed by the question's (no special tokens), no cache. */
async function fresh(method: string, question: string, budget = 64): Promise<number[]> {
  const plan = planMethod(method, { budget });
  const ids = target.tokenizer.encode(document).concat(target.tokenizer.encode(question, { addSpecialTokens: false }));
  const result = await createPipeline({ target, draft: plan.needsDraft ? draft : undefined, ...plan.stages }).generate({ inputIds: ids }, { maxNewTokens: 8 });
  return result.tokens;
}

describe('draft cache build + generate --cache give the tokens of a fresh run of the same method', () => {
  const file = join(scratch, 'doc.dkv');

  it('cache build writes target and draft KV; cache info verifies and describes it', async () => {
    const built = await cli(['cache', 'build', '--prompt-file', docFile, '--out', file, '--json']);
    expect(built.code).toBe(0);
    const summary = oneJson<{ documentTokens: number; target: { kvType: string; queryCount: number }; draft: { tokens: number } | null }>(built.stdout);
    expect(summary.documentTokens).toBe(target.tokenizer.encode(document).length);
    expect(summary.target).toMatchObject({ kvType: 'float32', queryCount: 128 });
    expect(summary.draft?.tokens).toBe(summary.documentTokens);
    const info = await cli(['cache', 'info', file, '--json']);
    expect(info.code).toBe(0);
    expect(oneJson<{ documentTokens: number }>(info.stdout).documentTokens).toBe(summary.documentTokens);
  }, 60_000);

  for (const method of ['full', 'snapkv', 'speckv']) {
    it(`${method}: each question's answer and tokens equal a fresh run's`, async () => {
      for (const [i, question] of questions.entries()) {
        const r = await cli(['generate', '--cache', file, '--prompt', question, '--method', method, '--budget', '64', '--max-new-tokens', '8', '--json']);
        expect(r.code).toBe(0);
        const out = oneJson<{ text: string; tokens: number[]; usage: { cachedPromptTokens: number; promptTokens: number } }>(r.stdout);
        expect(out.tokens).toEqual(await fresh(method, question));
        expect(out.usage.cachedPromptTokens).toBe(target.tokenizer.encode(document).length);
        expect(out.usage.promptTokens).toBe(out.usage.cachedPromptTokens + 3);
        // The trained target (full KV) reads each fact back: the answers are fixed by the document above.
        if (method === 'full') expect(out.text).toBe(ANSWERS[i]);
      }
    }, 120_000);
  }

  it('refuses --cache with a prompt compressor or a remote target before loading any model', async () => {
    const specpc = await cli(['generate', '--cache', file, '--prompt', questions[0], '--method', 'specpc', '--json']);
    expect(specpc.code).toBe(2);
    expect(JSON.parse(specpc.stderr.trim().split('\n').pop() as string).error).toMatchObject({ code: 'INVALID_ARGUMENT', details: { argument: '--cache', value: 'specpc' } });
    const remote = await cli(['generate', '--cache', file, '--prompt', questions[0], '--target-url', 'http://127.0.0.1:9/v1', '--json']);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toContain('--cache');
  });

  it('a damaged file is a CACHE_FILE error naming the file (exit 1), before any generation', async () => {
    const damaged = join(scratch, 'damaged.dkv');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(damaged, bytes);
    const r = await cli(['generate', '--cache', damaged, '--prompt', questions[0], '--json']);
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.stderr.trim().split('\n').pop() as string);
    expect(error).toMatchObject({ code: 'CACHE_FILE', details: { path: damaged, reason: 'checksum' } });
    expect(r.stdout).toBe('');
  });

  it('a missing file: unreadable, naming it', async () => {
    const r = await cli(['generate', '--cache', join(MODELS, 'fixtures', 'none.dkv'), '--prompt', questions[0], '--json']);
    expect(JSON.parse(r.stderr.trim().split('\n').pop() as string).error).toMatchObject({ code: 'CACHE_FILE', details: { reason: 'unreadable' } });
  });
});

describe('every KV method selects from the stored cache as from a fresh prefill (programmatic API)', () => {
  const file = join(scratch, 'all-queries.dkv');
  beforeAll(async () => {
    await buildDocumentCache({ target, draft, document, path: file, storeQueries: 'all' });
  });

  for (const method of ['h2o', 'laq', 'streamingllm', 'speckv']) {
    it(`${method}: same tokens for every question`, async () => {
      await using cache = await openDocumentCache(file, { target, draft });
      const plan = planMethod(method, { budget: 64 });
      const pipeline = createPipeline({ target, draft: plan.needsDraft ? draft : undefined, ...plan.stages });
      for (const question of questions) {
        const cached = await pipeline.generate({ inputIds: cache.promptIds(question) }, { maxNewTokens: 8, prefix: cache.prefix });
        expect(cached.tokens).toEqual(await fresh(method, question));
        expect(cached.usage.cachedPromptTokens).toBe(cache.tokenCount);
      }
    }, 60_000);
  }

  it('SpecKV prefills only the question on the draft when the file stores the draft KV', async () => {
    await using cache = await openDocumentCache(file, { target, draft });
    // The real draft, with its forward calls' lengths recorded (the stored prefix cache belongs to it).
    const calls: number[] = [];
    const watched: CausalLMV1 = {
      specificationVersion: 'v1',
      name: draft.name,
      info: draft.info,
      capabilities: draft.capabilities,
      tokenizer: draft.tokenizer,
      forward: (request) => {
        calls.push(request.inputIds.length);
        return draft.forward(request);
      },
      dispose: async () => {},
    };
    const plan = planMethod('speckv', { budget: 64 });
    const ids = cache.promptIds(questions[0]);
    const pipeline = createPipeline({ target, draft: watched, ...plan.stages });
    await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8, prefix: cache.prefix });
    expect(calls[0]).toBe(3);
    calls.length = 0;
    await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8 });
    expect(calls[0]).toBe(ids.length);
  }, 60_000);

  it('ragged policies (AdaKV) on a target loaded with raggedCache', async () => {
    const ragged = await loadModel(`${MODELS}target`, { threads: 1, raggedCache: true });
    try {
      const path = join(scratch, 'ragged.dkv');
      await buildDocumentCache({ target: ragged, document, path });
      await using cache = await openDocumentCache(path, { target: ragged });
      const plan = planMethod('adakv', { budget: 64 });
      const pipeline = createPipeline({ target: ragged, ...plan.stages });
      const ids = cache.promptIds(questions[1]);
      const a = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8 });
      const b = await pipeline.generate({ inputIds: ids }, { maxNewTokens: 8, prefix: cache.prefix });
      expect(b.tokens).toEqual(a.tokens);
      // AdaKV keeps different counts per KV head: the selection really ran on the stored cache.
      expect(new Set(b.usage.keptKvTokens.flat()).size).toBeGreaterThan(1);
      expect(b.usage.keptKvTokens).toEqual(a.usage.keptKvTokens);
    } finally {
      await ragged.dispose();
    }
  }, 60_000);

  it('a query window reaching further back than the stored queries is a typed capability error', async () => {
    const path = join(scratch, 'no-queries.dkv');
    await buildDocumentCache({ target, document, path, storeQueries: 0 });
    await using cache = await openDocumentCache(path, { target });
    const policy: PolicyConfig = { type: 'snapkv', windowSize: 8 };
    const pipeline = createPipeline({ target, cachePolicy: policy, budget: { tokens: 64 } });
    // Window 8 + the last prompt token: 9 queries, the 3-token question supplies 3, the prefix would need 6.
    await expect(pipeline.generate({ inputIds: cache.promptIds(questions[0]) }, { maxNewTokens: 2, prefix: cache.prefix })).rejects.toMatchObject({
      code: 'UNSUPPORTED_CAPABILITY',
      capability: 'prefixQueries',
    });
    // The same question works once the file stores enough queries (and the model is still usable).
    const fine = await createPipeline({ target }).generate({ inputIds: cache.promptIds(questions[0]) }, { maxNewTokens: 2, prefix: cache.prefix });
    expect(fine.text).toBe(ANSWERS[0]);
  });

  it('a cache without the draft: SpecKV re-prefills the draft on the whole prompt, same tokens', async () => {
    const path = join(scratch, 'target-only.dkv');
    const built = await cli(['cache', 'build', '--prompt-file', docFile, '--out', path, '--no-draft', '--json']);
    expect(oneJson<{ draft: unknown }>(built.stdout).draft).toBeNull();
    const r = await cli(['generate', '--cache', path, '--prompt', questions[2], '--method', 'speckv', '--budget', '64', '--max-new-tokens', '8', '--json']);
    expect(oneJson<{ tokens: number[] }>(r.stdout).tokens).toEqual(await fresh('speckv', questions[2]));
  }, 60_000);
});

describe('draft bench cache', () => {
  it('runs both sides for every question and reports the ratio and token agreement', async () => {
    const r = await cli(['bench', 'cache', '--length', '300', '--questions', '2', '--methods', 'full,snapkv', '--budget', '64', '--json']);
    expect(r.code).toBe(0);
    const out = oneJson<{ documentTokens: number; rows: { method: string; questions: number; tokensEqual: number; ttftRatio: number }[] }>(r.stdout);
    expect(out.documentTokens).toBe(300);
    expect(out.rows.map((row) => [row.method, row.questions, row.tokensEqual])).toEqual([
      ['full', 2, 2],
      ['snapkv', 2, 2],
    ]);
    for (const row of out.rows) expect(Number.isFinite(row.ttftRatio) && row.ttftRatio > 0).toBe(true);
  }, 120_000);
});
