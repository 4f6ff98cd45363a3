// node-llama-cpp (llama.cpp) on a GGUF written by our converter generates the same greedy tokens as our runtime
// on the same weights: proves the converter (names, hyperparameters, q/k permutation for interleaved RoPE) before
// any timing is trusted. Skipped, with the reason, only where the node-llama-cpp binary cannot load.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertToGguf, fixturePath } from '@draft/models';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LlamaCppEngine, llamaCppUnavailable, openLlamaCpp, runEngineInChild } from '@draft/bench';
import type { PerfBenchJson } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

const unavailable = await llamaCppUnavailable();
if (unavailable) console.warn(`llama.cpp agreement test skipped: ${unavailable}`);

/** Deterministic prompts of 8, 23 and 38 token ids (below the specials at 506+). */
const PROMPTS = [0, 3, 6].map((p) => Array.from({ length: 8 + 5 * p }, (_, i) => (i * 7919 + 13 * p + 3) % 506));
const NEW_TOKENS = 16;

describe.skipIf(unavailable !== undefined)(`node-llama-cpp greedy tokens = ours (tiny-llama)${unavailable ? ` — skipped: ${unavailable}` : ''}`, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'draft-llamacpp-'));
  const ggufPath = join(tmp, 'tiny-llama-f32.gguf');
  let ours: OrtCausalLM;
  let peer: LlamaCppEngine;
  const oursTokens: number[][] = [];

  beforeAll(async () => {
    convertToGguf({ dir: fixturePath('tiny-llama'), outPath: ggufPath });
    ours = await loadModel(fixturePath('tiny-llama'), { threads: 2 });
    for (const prompt of PROMPTS) oursTokens.push((await ours.generate({ inputIds: prompt }, { maxNewTokens: NEW_TOKENS })).tokens);
    // Flash attention off: on, llama.cpp rounds attention inputs to f16 (see LlamaCppEngineOptions.flashAttention).
    peer = await openLlamaCpp({ ggufPath, threads: 2, kvType: 'f32', contextSize: 128, flashAttention: false });
  }, 60_000);
  afterAll(async () => {
    await peer?.dispose();
    await ours?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it.each(PROMPTS.map((p, i) => [i, p.length] as const))('prompt %i (%i ids): 16 identical greedy tokens (f32 GGUF, f32 KV)', async (i) => {
    expect(oursTokens[i]).toHaveLength(NEW_TOKENS);
    // A random model emits many distinct tokens: equality here is not a coincidence of a constant output.
    expect(new Set(oursTokens[i]).size).toBeGreaterThan(8);
    const run = await peer.greedy(PROMPTS[i], NEW_TOKENS);
    expect(run.tokens).toEqual(oursTokens[i]);
    expect(run.ttftMs).toBeGreaterThan(0);
  }, 60_000); // llama.cpp's spinning threads slow down a lot on an oversubscribed machine

  it('runs in its own process through the bench machinery (same tokens, its own peak RSS)', async () => {
    const r = await runEngineInChild({ engine: 'llama.cpp', ggufPath, kvType: 'f32', flashAttention: false, threads: 2, inputIds: PROMPTS[1], newTokens: NEW_TOKENS, repeats: 1 });
    expect(r.runs[0].tokens).toEqual(oursTokens[1]);
    expect(r.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(r.info.kvType).toBe('f32');
  }, 60_000);

  it('bench perf --peers llama.cpp adds f16- and f32-KV rows from their own process', async () => {
    const dir = fixturePath('tiny-llama');
    const args = ['bench', 'perf', '--json', '--target', dir, '--draft', dir, '--methods', 'full', '--lengths', '64', '--new-tokens', '4'];
    const { code, stdout, stderr } = await cli([...args, '--peers', 'llama.cpp', '--gguf', ggufPath, '--out', join(tmp, 'perf')]);
    expect(code, stderr).toBe(0);
    const { results } = oneJson<PerfBenchJson>(stdout);
    expect(results.map((r) => r.method)).toEqual(['full', 'llama.cpp', 'llama.cpp-f32kv']);
    const [full, f16, f32] = results;
    expect(f16.skipped).toBeUndefined();
    expect(f32.kvBytes).toBe(full.kvBytes);
    expect(f16.kvBytes).toBe(full.kvBytes! / 2);
    for (const r of [f16, f32]) {
      expect(r.ttftMs!).toBeGreaterThan(0);
      expect(r.decodeTokensPerSecond!).toBeGreaterThan(0);
      expect(r.peakRssBytes!).toBeGreaterThan(10 * 2 ** 20);
      expect(r.note).toMatch(/own process/);
    }
  }, 90_000);
});
