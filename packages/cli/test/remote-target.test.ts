// `draft generate` / `draft bench ruler` with --target-url, in front of a local OpenAI-compatible stub server.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortError } from '@draft/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type GenerateJson, type RulerBenchJson, runGenerate } from '../src/index.js';
import { fixtureTokenizer } from '../../bench/test/bench-fixtures.js';
import { cli, oneJson } from './helpers.js';
import { type OpenAIStub, startOpenAIStub } from './openai-stub.js';

const RANDOM_DRAFT = fileURLToPath(new URL('../../../models/fixtures/random-draft', import.meta.url));
// ~300 draft tokens (byte-level tokenizer): long enough for a budget of 100 to bite.
const PROMPT = Array.from({ length: 60 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
const KEY_ENV = 'DRAFT_TEST_REMOTE_KEY';
const SECRET = 'sk-test-3c9f1e-never-printed';

let stub: OpenAIStub;
beforeAll(async () => {
  stub = await startOpenAIStub({ reply: () => 'The tide was high.' });
});
afterAll(() => stub.close());
afterEach(() => {
  stub.requests.length = 0;
  delete process.env[KEY_ENV];
});

const remote = () => ['--target-url', stub.baseUrl, '--draft', RANDOM_DRAFT];

async function generate(args: string[]): Promise<GenerateJson> {
  const { code, stdout, stderr } = await cli(['generate', '--json', ...remote(), ...args]);
  expect(code, stderr).toBe(0);
  return oneJson<GenerateJson>(stdout);
}

/** Whether `small` is a subsequence of `big` (characters in order, gaps allowed). */
function isSubsequence(small: string, big: string): boolean {
  let j = 0;
  for (let i = 0; i < big.length && j < small.length; i++) if (big[i] === small[j]) j++;
  return j === small.length;
}

describe('draft generate --target-url (OpenAI-compatible stub)', () => {
  it('specpc compresses locally with the draft; the stub receives ≈ budget tokens, a subsequence of the prompt', async () => {
    const out = await generate(['--method', 'specpc', '--budget', '100', '--window', '8', '--target-model', 'big-model', '--prompt', PROMPT, '--max-new-tokens', '5']);
    expect(out.text).toBe('The tide was high.');
    expect(out.remote).toEqual({ url: stub.baseUrl, model: 'big-model', endpoint: 'chat' });
    expect(out.usage.compressedPromptTokens).toBe(100);
    const [request] = stub.completions();
    expect(stub.completions()).toHaveLength(1);
    expect(request.url).toBe('/v1/chat/completions');
    expect(request.body).toMatchObject({ model: 'big-model', max_tokens: 5, stream: false });
    const sent = request.prompt as string;
    const tokenizer = await fixtureTokenizer();
    const original = tokenizer.encode(PROMPT, { addSpecialTokens: false }).length;
    expect(out.usage.promptTokens).toBeGreaterThan(250);
    // 100 kept tokens, decoded and re-encoded: token merges at the cut points may shift the count a little
    expect(Math.abs(tokenizer.encode(sent, { addSpecialTokens: false }).length - 100)).toBeLessThanOrEqual(10);
    expect(sent.length).toBeLessThan(PROMPT.length / 2);
    expect(isSubsequence(sent, PROMPT)).toBe(true);
    expect(original).toBeGreaterThan(250);
    expect(request.headers.authorization).toBeUndefined();
  }, 60_000);

  it('full sends the prompt unchanged (no draft loaded); without --json the streamed text reaches stdout', async () => {
    const { code, stdout, stderr } = await cli(['generate', '--target-url', stub.baseUrl, '--draft', 'no/such/draft', '--prompt', PROMPT, '--max-new-tokens', '4']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('The tide was high.');
    expect(stderr).toContain(`stub-model at ${stub.baseUrl}`); // --target-model defaults to GET /models' first id
    const [models, request] = stub.requests;
    expect(models.url).toBe('/v1/models');
    expect(request.prompt).toBe(PROMPT);
    expect(request.body).toMatchObject({ model: 'stub-model', stream: true });
  }, 30_000);

  it('random-pc over /completions: the draft tokenises even for a compressor that needs no draft scores', async () => {
    const out = await generate(['--method', 'random-pc', '--budget', '64', '--target-model', 'm', '--target-endpoint', 'completions', '--prompt', PROMPT]);
    expect(out.usage.compressedPromptTokens).toBe(64);
    const [request] = stub.completions();
    expect(request.url).toBe('/v1/completions');
    expect(isSubsequence(request.prompt as string, PROMPT)).toBe(true);
  }, 30_000);

  it('KV methods are refused with the pipeline capability error before any model loads or request is sent', async () => {
    for (const method of ['speckv', 'snapkv', 'speckv-pc', 'laq']) {
      // a draft folder that does not exist: loading anything would be MODEL_LAYOUT instead
      const { code, stderr } = await cli(['generate', '--json', '--target-url', stub.baseUrl, '--target-model', 'm', '--draft', 'no/such/draft', '--method', method, '--budget', '64', '--prompt', 'hi']);
      expect(code, method).toBe(1);
      const { error } = JSON.parse(stderr);
      expect(error.code, method).toBe('UNSUPPORTED_CAPABILITY');
      expect(error.message, method).toContain("target 'openai:m'");
    }
    expect(stub.requests).toHaveLength(0);
  });

  it('retries 429 and 5xx (honouring retry-after-ms), then succeeds', async () => {
    stub.next(
      { kind: 'fail', status: 429, message: 'rate limited', headers: { 'retry-after-ms': '5' } },
      { kind: 'fail', status: 503, message: 'overloaded', headers: { 'retry-after-ms': '5' } },
    );
    const out = await generate(['--target-model', 'm', '--prompt', 'hello', '--target-retries', '2']);
    expect(out.text).toBe('The tide was high.');
    expect(stub.completions()).toHaveLength(3);
  });

  it('gives up after --target-retries with a REMOTE error quoting the server', async () => {
    stub.next(...Array.from({ length: 2 }, () => ({ kind: 'fail' as const, status: 500, message: 'boom', headers: { 'retry-after-ms': '5' } })));
    const { code, stderr } = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--prompt', 'hello', '--target-retries', '1']);
    expect(code).toBe(1);
    const { error } = JSON.parse(stderr);
    expect(error).toMatchObject({ code: 'REMOTE', message: 'openai:m: HTTP 500: boom', details: { status: 500, attempts: 2 } });
  });

  it('--target-timeout: a stalled endpoint times out per attempt and is retried', async () => {
    stub.next({ kind: 'stall' }, { kind: 'stall' });
    const { code, stderr } = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--prompt', 'hello', '--target-timeout', '150', '--target-retries', '1']);
    expect(code).toBe(1);
    const { error } = JSON.parse(stderr);
    expect(error.code).toBe('REMOTE');
    expect(error.message).toContain('timed out after 150 ms');
    expect(stub.completions()).toHaveLength(2);
  });

  it('an AbortSignal stops a pending remote call with AbortError', async () => {
    stub.next({ kind: 'stall' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user')), 100);
    const error = await runGenerate({ 'target-url': stub.baseUrl, 'target-model': 'm', prompt: 'hello' }, { signal: controller.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AbortError);
    expect(stub.completions()).toHaveLength(1);
  });

  it('--api-key-env: the key from the variable is sent as a bearer token and never printed', async () => {
    process.env[KEY_ENV] = SECRET;
    const ok = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--api-key-env', KEY_ENV, '--prompt', 'hello']);
    expect(ok.code).toBe(0);
    expect(stub.completions()[0].headers.authorization).toBe(`Bearer ${SECRET}`);
    stub.next({ kind: 'fail', status: 401, message: 'invalid api key' });
    const denied = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--api-key-env', KEY_ENV, '--prompt', 'hello']);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stderr).error).toMatchObject({ code: 'REMOTE', details: { status: 401 } });
    for (const text of [ok.stdout, ok.stderr, denied.stdout, denied.stderr]) expect(text).not.toContain(SECRET);
    // an unset variable is a usage error naming the variable (there is no value to show)
    delete process.env[KEY_ENV];
    const unset = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--api-key-env', KEY_ENV, '--prompt', 'hello']);
    expect(unset.code).toBe(2);
    expect(JSON.parse(unset.stderr).error.details).toMatchObject({ argument: '--api-key-env', value: KEY_ENV });
    // a key pasted in place of the variable's name is not echoed
    const pasted = await cli(['generate', '--json', ...remote(), '--target-model', 'm', '--api-key-env', SECRET, '--prompt', 'hello']);
    expect(pasted.code).toBe(2);
    expect(pasted.stderr).not.toContain(SECRET);
  });

  it('flag misuse is INVALID_ARGUMENT: --target with --target-url, remote flags without it, a bad endpoint', async () => {
    for (const args of [
      ['--target-url', stub.baseUrl, '--target', 'x'],
      ['--target-model', 'm'],
      ['--target-url', stub.baseUrl, '--target-endpoint', 'responses'],
      ['--target-url', 'ftp://x/v1', '--target-model', 'm'],
    ]) {
      const { code, stderr } = await cli(['generate', '--json', '--prompt', 'hi', ...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(JSON.parse(stderr).error.code).toBe('INVALID_ARGUMENT');
    }
    expect(stub.requests).toHaveLength(0);
  });
});

describe('draft bench ruler --target-url', () => {
  const work = mkdtempSync(join(tmpdir(), 'draft-remote-bench-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const out = join(work, 'ruler');
  const args = (model: string) => [
    'bench',
    'ruler',
    '--json',
    '--target-url',
    stub.baseUrl,
    '--target-model',
    model,
    '--draft',
    RANDOM_DRAFT,
    '--methods',
    'full,specpc,snapkv',
    '--budgets',
    '96',
    '--lengths',
    '300',
    '--tasks',
    'niah_single_1',
    '--samples',
    '1',
    '--window',
    '8',
    '--max-new-tokens',
    '4',
    '--out',
    out,
  ];

  it('runs prompt compression and full against the endpoint, skips KV methods, writes the usual files; resumes by URL and model', async () => {
    const first = await cli(args('big-model'));
    expect(first.code, first.stderr).toBe(0);
    const report = oneJson<RulerBenchJson>(first.stdout);
    expect(report.results.map((r) => [r.method, r.budget, r.accuracy === null ? 'skipped' : 'ran'])).toEqual([
      ['full', null, 'ran'],
      ['specpc', 96, 'ran'],
      ['snapkv', 96, 'skipped'],
    ]);
    expect(report.results[2].skipped).toMatch(/^UNSUPPORTED_CAPABILITY/);
    const prompts = stub.completions().map((r) => r.prompt as string);
    expect(prompts).toHaveLength(2);
    expect(stub.completions()[0].body).toMatchObject({ model: 'big-model', temperature: 0 });
    // the compressed prompt is a shortened subsequence of the full one
    expect(prompts[1].length).toBeLessThan(prompts[0].length / 2);
    expect(isSubsequence(prompts[1], prompts[0])).toBe(true);

    const dir = join(out, 'runs', 'specpc__b96__L300__niah_single_1');
    for (const f of ['predictions.jsonl', 'metrics.json', 'config.json', 'run_meta.json']) expect(existsSync(join(dir, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
    expect(metrics.modelFingerprint).toEqual({ target: `openai-chat:${stub.baseUrl}#big-model`, draft: expect.stringMatching(/^sha256:/) });
    expect(metrics.meanPromptTokens).toBe(96);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ target: stub.baseUrl, targetModel: 'big-model', targetEndpoint: 'chat' });
    expect(JSON.parse(readFileSync(join(dir, 'run_meta.json'), 'utf8')).models.target).toEqual({ url: stub.baseUrl, model: 'big-model', endpoint: 'chat' });
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| specpc | 96 | 300 |');
    expect(readdirSync(join(out, 'runs'))).toHaveLength(3);

    // same URL and model: everything resumes, nothing is sent
    stub.requests.length = 0;
    const again = await cli(args('big-model'));
    expect(again.code, again.stderr).toBe(0);
    expect(oneJson<RulerBenchJson>(again.stdout).results).toEqual(report.results);
    expect(stub.completions()).toHaveLength(0);

    // another model behind the same URL: the runs are stale and go to the endpoint again
    const other = await cli(args('other-model'));
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr).toContain('target model changed');
    expect(stub.completions().map((r) => r.body.model)).toEqual(['other-model', 'other-model']);
  }, 120_000);
});
