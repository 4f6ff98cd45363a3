import { fileURLToPath } from 'node:url';
import { UnsupportedCapabilityError } from '@draft/core';
import { decodeEngineModule, nativeInfo, registerNativeBackend } from '@draft/cuda';
import { describe, expect, it } from 'vitest';
import type { GenerateJson } from '../src/index.js';
import { cli } from './helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../models/fixtures/${name}`, import.meta.url));
const PROMPT = 'the keeper wrote a note about the lighthouse and the sea, and then about the ships that came in at night';

// 'native' needs the addon (its CPU decoder) and the built decode-engine module the runtime's worker imports.
const native = nativeInfo();
const nativeDecode = native.native && decodeEngineModule() !== null;
const nativeSkip = nativeDecode ? '' : ` (skipped: @draft/cuda native decode engine unavailable: ${native.reason ?? 'decode-engine module not built'})`;

describe('--decode-engine', () => {
  it('a value other than ort or native is a usage error naming the flag, before any model loads', async () => {
    // The folders do not exist: a load would fail with MODEL_LAYOUT first.
    const models = ['--target', 'no/such/folder', '--draft', 'no/such/folder'];
    for (const args of [
      ['generate', '--prompt', 'hi', ...models],
      ['serve', '--port', '0', ...models],
    ]) {
      const { code, stdout, stderr } = await cli([...args, '--decode-engine', 'gpu']);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`draft: error [INVALID_ARGUMENT]: Invalid --decode-engine: got "gpu", expected 'ort' or 'native'`);
    }
  });

  it('--prefill-engine: a bad value, or native without --decode-engine native, is a usage error naming the flag', async () => {
    const models = ['--target', 'no/such/folder', '--draft', 'no/such/folder'];
    for (const args of [
      ['generate', '--prompt', 'hi', ...models],
      ['serve', '--port', '0', ...models],
    ]) {
      const bad = await cli([...args, '--decode-engine', 'native', '--prefill-engine', 'gpu']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain(`Invalid --prefill-engine: got "gpu", expected 'ort' or 'native'`);
      const alone = await cli([...args, '--prefill-engine', 'native']);
      expect(alone.code).toBe(2);
      expect(alone.stderr).toContain(`Invalid --prefill-engine: got "native", expected 'ort', or 'native' together with --decode-engine native`);
    }
  });

  it.skipIf(!nativeDecode)(`generate --decode-engine native prints the tokens and text of ort (HF-named and torch-named targets, and target + draft)${nativeSkip}`, async () => {
    for (const models of [
      ['--target', fixture('tiny-llama')],
      // A plain torch.onnx.export: weights found by their place in the graph, stored (in, out).
      ['--target', fixture('torch-llama')],
      // Fused attention (GroupQueryAttention): the engine reads the same weights and its own caches.
      ['--target', fixture('tiny-qwen2-gqa')],
      ['--target', fixture('random-target'), '--draft', fixture('random-draft'), '--method', 'speckv', '--budget', '48', '--window', '8'],
      ['--target', fixture('random-target'), '--method', 'adakv', '--budget', '48', '--window', '8'],
    ]) {
      const run = async (engine: string, prefill = 'ort') => {
        // AdaKV needs a prompt longer than its budget to keep different counts per head.
        const prompt = models.includes('adakv') ? Array.from({ length: 6 }, () => PROMPT).join(' ') : PROMPT;
        const { code, stdout, stderr } = await cli(['generate', '--json', ...models, '--decode-engine', engine, '--prefill-engine', prefill, '--prompt', prompt, '--max-new-tokens', '8']);
        expect(stderr).toBe('');
        expect(code).toBe(0);
        return JSON.parse(stdout) as GenerateJson;
      };
      const ort = await run('ort');
      const nat = await run('native');
      expect(nat.tokens).toHaveLength(8);
      expect(nat.tokens).toEqual(ort.tokens);
      expect(nat.text).toBe(ort.text);
      // Prefill too (the ORT sessions released after the load check).
      const all = await run('native', 'native');
      expect(all.tokens).toEqual(ort.tokens);
      expect(all.text).toBe(ort.text);
      // AdaKV's counts differ per head: only the native prefill stores them packed, so fewer bytes than ORT's padding.
      if (models.includes('adakv')) expect(all.kvBytes.afterPrefill).toBeLessThan(ort.kvBytes.afterPrefill);
      else expect(all.kvBytes.afterPrefill).toBe(ort.kvBytes.afterPrefill);
    }
  }, 90_000);

  it.skipIf(!nativeDecode)(`AdaKV and PyramidKV on a fused-attention export with the native prefill: packed caches, the bytes of SnapKV's${nativeSkip}`, async () => {
    // ORT's GroupQueryAttention cannot mask inside a past, so only the native prefill gives these graphs ragged caches.
    const prompt = Array.from({ length: 6 }, () => PROMPT).join(' ');
    const run = async (method: string) => {
      const { code, stdout, stderr } = await cli(['generate', '--json', '--target', fixture('tiny-qwen2-gqa'), '--method', method, '--budget', '48', '--window', '8', '--decode-engine', 'native', '--prefill-engine', 'native', '--prompt', prompt, '--max-new-tokens', '6']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      return JSON.parse(stdout) as GenerateJson;
    };
    const snap = await run('snapkv');
    for (const method of ['adakv', 'pyramidkv']) {
      const out = await run(method);
      expect(out.tokens).toHaveLength(6);
      const kept = out.usage.keptKvTokens.flat();
      expect(new Set(kept).size).toBeGreaterThan(1);
      expect(kept.reduce((a, b) => a + b, 0)).toBe(snap.usage.keptKvTokens.flat().reduce((a, b) => a + b, 0));
      expect(out.kvBytes.afterPrefill).toBe(snap.kvBytes.afterPrefill);
    }
  }, 60_000);

  it('a model the native decoder cannot decode, as target or as draft, is UNSUPPORTED_CAPABILITY naming it (exit 1)', async () => {
    // tiny-qwen3: q/k norms, maths the engine does not implement.
    for (const models of [
      ['--target', fixture('tiny-qwen3')],
      ['--target', fixture('random-target'), '--draft', fixture('tiny-qwen3'), '--method', 'speckv', '--budget', '48', '--window', '8'],
    ]) {
      const { code, stdout, stderr } = await cli(['generate', '--json', ...models, '--decode-engine', 'native', '--prompt', PROMPT, '--max-new-tokens', '4']);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      const { error } = JSON.parse(stderr);
      expect(error.code).toBe('UNSUPPORTED_CAPABILITY');
      expect(error.details.capability).toBe('nativeDecode');
      // With the engine registered (by the CLI) the runtime refuses the graph; without the addon, there is no engine.
      if (nativeDecode) expect(error.message).toContain('tiny-qwen3');
    }
  }, 60_000);

  it('startServer({ decodeEngine: "native" }) rejects with the typed error for a target or draft it cannot decode', async () => {
    const { startServer } = await import('@draft/server');
    const registration = registerNativeBackend();
    try {
      const refused = async (target: string, draft?: string) => {
        const log: string[] = [];
        const error = await startServer({ port: 0, target, draft, threads: 1, handleSignals: false, decodeEngine: 'native', log: (line) => log.push(line) }).then(
          (server) => server.close(), // started after all: closed, so the assertion below fails alone
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(UnsupportedCapabilityError);
        expect((error as UnsupportedCapabilityError).capability).toBe('nativeDecode');
        return { error: error as UnsupportedCapabilityError, log };
      };
      const draft = await refused(fixture('random-target'), fixture('tiny-qwen3'));
      if (nativeDecode) expect(draft.error.message).toContain('tiny-qwen3');
      // tiny-qwen3 takes a ragged cache (decomposed attention) but not native decode (q/k norms): the native refusal
      // must not be retried as a ragged-cache fallback.
      const qkNorm = await refused(fixture('tiny-qwen3'));
      expect(qkNorm.log.join('\n')).not.toContain('without a ragged cache');
    } finally {
      registration.unregister();
    }
  }, 60_000);

  it.skipIf(!nativeDecode)(`startServer with native prefill and decode answers concurrent requests (AdaKV packed, SpecKV, full) with the text of an ORT server${nativeSkip}`, async () => {
    const { startServer } = await import('@draft/server');
    const registration = registerNativeBackend();
    const models = { target: fixture('random-target'), draft: fixture('random-draft'), threads: 1, handleSignals: false, log: () => {} };
    const ort = await startServer({ port: 0, ...models });
    const native = await startServer({ port: 0, ...models, decodeEngine: 'native', prefillEngine: 'native' });
    try {
      const prompt = Array.from({ length: 30 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
      const ask = async (url: string, draft: Record<string, unknown>) => {
        const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: 6, draft }) });
        expect(r.status).toBe(200);
        const body = (await r.json()) as {
          choices: { text: string }[];
          usage: { draft?: { keptKvTokens?: { min: number; max: number; mean: number }; kvBytes?: { afterPrefill: number } } };
        };
        return { text: body.choices[0].text, kept: body.usage.draft?.keptKvTokens, kvBytes: body.usage.draft?.kvBytes?.afterPrefill as number };
      };
      const methods = [{ method: 'adakv', budget: 48, window: 8 }, { method: 'speckv', budget: 48, window: 8 }, { method: 'full' }];
      // All at once on the native server (its sequences decode together), one by one on the ORT server.
      const got = await Promise.all(methods.map((m) => ask(native.url, m)));
      for (const [i, m] of methods.entries()) {
        const want = await ask(ort.url, m);
        expect(got[i].text).toBe(want.text);
        expect(got[i].kept).toEqual(want.kept);
        // Only AdaKV's cache is ragged: packed by the native prefill (fewer bytes), the same bytes otherwise.
        if (m.method === 'adakv') expect(got[i].kvBytes).toBeLessThan(want.kvBytes);
        else expect(got[i].kvBytes).toBe(want.kvBytes);
      }
      // AdaKV kept different counts per head: the native server held them packed (and still gave ORT's text).
      expect((got[0].kept as { max: number; min: number }).max).toBeGreaterThan((got[0].kept as { max: number; min: number }).min);
    } finally {
      await Promise.all([ort.close(), native.close()]);
      registration.unregister();
    }
  }, 90_000);
});
