import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { GenerateJson } from '../src/index.js';
import { cli } from './helpers.js';

const plugin = fileURLToPath(new URL('../../../examples/third-party-policy/dist/index.js', import.meta.url));

// Mechanics run on the random-weight pair with a byte-level tokenizer (English prompts tokenise well there).
const RANDOM_TARGET = fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url));
const RANDOM_DRAFT = fileURLToPath(new URL('../../../models/fixtures/random-draft', import.meta.url));
// The target's shape, read from its config so the tests follow the shipped pair.
const targetConfig = JSON.parse(readFileSync(new URL('../../../models/fixtures/random-target/config.json', import.meta.url), 'utf8'));
const LAYERS: number = targetConfig.num_hidden_layers;
const KV_HEADS: number = targetConfig.num_key_value_heads;
const perHead = (count: number) => Array.from({ length: LAYERS }, () => Array.from({ length: KV_HEADS }, () => count));

async function generate(args: string[]): Promise<GenerateJson> {
  const { code, stdout, stderr } = await cli(['generate', '--json', '--target', RANDOM_TARGET, '--draft', RANDOM_DRAFT, ...args]);
  expect(stderr).not.toContain('"error"'); // stderr may carry a notice; stdout holds exactly the result
  expect(code).toBe(0);
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1); // exactly one JSON object
  return JSON.parse(lines[0]) as GenerateJson;
}

// ~300 target tokens: long enough for small budgets to bite on the bundled pair.
const PROMPT = Array.from({ length: 60 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
const KV_METHODS = ['speckv', 'snapkv', 'pyramidkv', 'adakv', 'streamingllm', 'h2o', 'laq'];

describe('draft generate --json on a random-weight pair', () => {
  it('full: one object with the documented fields; keptKvTokens is per layer and KV head', async () => {
    const out = await generate(['--prompt', PROMPT, '--max-new-tokens', '6']);
    expect(out.method).toBe('full');
    expect(out.budget).toBeNull();
    expect(out.tokens).toHaveLength(6);
    expect(out.usage.completionTokens).toBe(6);
    expect(out.usage.compressedPromptTokens).toBe(out.usage.promptTokens);
    // everything kept, per layer and KV head
    expect(out.usage.keptKvTokens).toEqual(perHead(out.usage.promptTokens));
    expect(Object.keys(out.timings)).toEqual(expect.arrayContaining(['prefillMs', 'decodeMs', 'ttftMs', 'decodeTokensPerSecond']));
  }, 60_000);

  it('with a budget ≥ the prompt length every KV method generates exactly what full KV does', async () => {
    const full = await generate(['--prompt', PROMPT, '--max-new-tokens', '8']);
    const budget = String(full.usage.promptTokens + 10);
    for (const method of KV_METHODS) {
      const out = await generate(['--prompt', PROMPT, '--max-new-tokens', '8', '--method', method, '--budget', budget]);
      expect(out.tokens, method).toEqual(full.tokens);
    }
  }, 180_000);

  it('with a small budget keptKvTokens shows C per layer and head and KV bytes fall in proportion', async () => {
    const full = await generate(['--prompt', PROMPT, '--max-new-tokens', '4']);
    const n = full.usage.promptTokens;
    for (const method of ['speckv', 'snapkv', 'streamingllm']) {
      const out = await generate(['--prompt', PROMPT, '--max-new-tokens', '4', '--method', method, '--budget', '48', '--window', '8']);
      expect(out.usage.keptKvTokens, method).toEqual(perHead(48));
      // after prefill the cache holds the C kept entries + the re-run last prompt token, vs n entries for full
      expect(out.kvBytes.afterPrefill / full.kvBytes.afterPrefill, method).toBeCloseTo(49 / n, 6);
    }
  }, 120_000);

  it('prompt compressors send exactly min(budget, n) tokens to the target', async () => {
    for (const method of ['specpc', 'random-pc']) {
      const out = await generate(['--prompt', PROMPT, '--max-new-tokens', '4', '--method', method, '--budget', '100', '--window', '8']);
      expect(out.usage.compressedPromptTokens, method).toBe(100);
    }
  }, 120_000);

  it('speckv-pc: SpecPC then SpecKV, one draft run of 20 lookahead tokens serving both stages', async () => {
    const out = await generate(['--prompt', PROMPT, '--max-new-tokens', '4', '--method', 'speckv-pc', '--budget', '48', '--window', '8']);
    expect(out.usage.keptKvTokens).toEqual(perHead(48));
    // the cascade's lookahead is fixed at 20 draft tokens (ALGORITHMS.md, SpecKV-PC), independent of --max-new-tokens
    expect(out.usage.draftTokens).toBe(20);
  }, 60_000);

  it('runs a third-party policy registered by a plugin', async () => {
    const out = await generate(['--plugin', plugin, '--prompt', PROMPT, '--max-new-tokens', '4', '--method', 'keynorm', '--budget', '40']);
    expect(out.method).toBe('keynorm');
    expect(out.usage.keptKvTokens).toEqual(perHead(40));
  }, 60_000);
});

describe('draft CLI errors', () => {
  it('an unknown method is a usage error listing the known methods', async () => {
    const { code, stderr } = await cli(['generate', '--prompt', 'hi', '--method', 'nope']);
    expect(code).toBe(2);
    expect(stderr).toContain('UNKNOWN_METHOD');
    expect(stderr).toContain('speckv');
    expect(stderr).toContain('snapkv');
  });

  it('a negative budget is INVALID_ARGUMENT naming the flag', async () => {
    const { code, stderr } = await cli(['generate', '--json', '--prompt', 'hi', '--method', 'snapkv', '--budget=-3']);
    expect(code).toBe(2);
    const { error } = JSON.parse(stderr);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.details).toMatchObject({ argument: '--budget', value: '-3' });
  });

  it('budget < window is rejected with a typed error', async () => {
    const { code, stderr } = await cli(['generate', '--json', '--prompt', PROMPT, '--method', 'snapkv', '--budget', '4', '--window', '8']);
    expect(code).toBe(2);
    expect(JSON.parse(stderr).error.code).toBe('INVALID_ARGUMENT');
  });

  it('a missing model folder is MODEL_LAYOUT', async () => {
    const { code, stderr } = await cli(['generate', '--prompt', 'hi', '--target', 'no/such/folder']);
    expect(code).toBe(1);
    expect(stderr).toContain('MODEL_LAYOUT');
  });
});
