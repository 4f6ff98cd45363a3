// Twin test (issue: real exports stay right under every method). One set of weights is written as a
// decomposed graph and in every fused style real exports use: com.microsoft.GroupQueryAttention with positions
// wired into the op, not wired (GQA would number positions from the cache length) or absent from the graph,
// with packed QKV, after RotaryEmbedding nodes; the ONNX opset-23 Attention op; and (on a twin pair without
// grouped KV heads) com.microsoft.MultiHeadAttention. The decomposed graph is the reference: every method must
// give its exact tokens on every fused twin, or be refused with a typed error before generating anything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsupportedCapabilityError } from '@draft/core';
import { MHA_TWIN_SPEC, TWIN_NAMES, type TwinName, writeAttentionTwins } from '@draft/models';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMethod, runPlan } from '../src/index.js';

const BUDGET = 64;
const KV_METHODS = ['speckv', 'snapkv', 'streamingllm', 'h2o', 'laq'] as const;
const PROMPT_METHODS = ['specpc', 'speckv-pc', 'specprefill'] as const;
const RAGGED_METHODS = ['pyramidkv', 'adakv'] as const;

/** Deterministic filler with a fact in the middle: `words` words (about 3 tokens each in the fixture BPE). */
function prompt(words: number, seed: number): string {
  const vocab = 'the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches near an old river'.split(' ');
  const out: string[] = [];
  let r = seed;
  for (let i = 0; i < words; i++) {
    r = (Math.imul(r, 1664525) + 1013904223) >>> 0; // 32-bit LCG
    out.push(vocab[(r >>> 16) % vocab.length]);
    if (i === words >> 1) out.push('The secret code is 4721.');
  }
  return `${out.join(' ')} What is the secret code?`;
}
const PROMPTS = [prompt(150, 7), prompt(250, 11)];

let dir: string;
let paths: Record<TwinName, string>;
let mhaPaths: Record<TwinName, string>;
const targets = new Map<TwinName, OrtCausalLM>();
const mhaTargets = new Map<TwinName, OrtCausalLM>();
let draft: OrtCausalLM;
const FUSED = TWIN_NAMES.filter((n) => n !== 'decomposed');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'draft-twins-'));
  paths = writeAttentionTwins(dir);
  mhaPaths = writeAttentionTwins(join(dir, 'mha'), MHA_TWIN_SPEC, ['decomposed', 'mha']);
  for (const name of TWIN_NAMES) targets.set(name, await loadModel(paths[name]));
  for (const name of ['decomposed', 'mha'] as const) mhaTargets.set(name, await loadModel(mhaPaths[name]));
  draft = await loadModel(paths.decomposed);
}, 60_000);

afterAll(async () => {
  for (const model of [...targets.values(), ...mhaTargets.values()]) await model.dispose();
  await draft?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run(method: string, target: OrtCausalLM, text: string) {
  const plan = planMethod(method, { budget: BUDGET });
  return runPlan(plan, { target, draft }, text, { maxNewTokens: 8 });
}

describe('fused GroupQueryAttention twins give the decomposed graph’s tokens', () => {
  it('the prompts are 400–800 tokens long', () => {
    const lengths = PROMPTS.map((p) => (targets.get('decomposed') as OrtCausalLM).tokenizer.encode(p).length);
    for (const n of lengths) expect(n).toBeGreaterThanOrEqual(400);
    for (const n of lengths) expect(n).toBeLessThanOrEqual(800);
  });

  it('instrumentation recognises each style and reports how it gets its positions', () => {
    const model = (name: TwinName) => (mhaTargets.get(name) ?? targets.get(name)) as OrtCausalLM;
    const styles = (name: TwinName) => model(name).graph.captures.map((c) => (c.kind === 'gqa' ? `${c.kind}:${c.positionIds}${c.packed ? ':packed' : ''}` : c.kind));
    expect(styles('gqa-wired')).toEqual(['gqa:wired', 'gqa:wired']);
    expect(styles('gqa-unwired')).toEqual(['gqa:rewired', 'gqa:rewired']);
    expect(styles('gqa-absent')).toEqual(['gqa:rewired', 'gqa:rewired']);
    expect(styles('gqa-packed')).toEqual(['gqa:wired:packed', 'gqa:wired:packed']);
    expect(styles('gqa-rotary-node')).toEqual(['gqa:none', 'gqa:none']);
    expect(styles('attention23')).toEqual(['fused', 'fused']);
    expect(styles('mha')).toEqual(['fused', 'fused']);
    expect(model('mha').graph.pattern).toBe('mha');
    expect(model('attention23').graph.pattern).toBe('attention');
    expect(model('gqa-absent').graph.inputNames).toContain('position_ids');
  });

  for (const method of ['full', ...KV_METHODS, ...PROMPT_METHODS]) {
    it(`${method} at C = ${BUDGET}`, async () => {
      for (const text of PROMPTS) {
        const reference = await run(method, targets.get('decomposed') as OrtCausalLM, text);
        expect(reference.tokens).toHaveLength(8);
        if ((KV_METHODS as readonly string[]).includes(method)) {
          // The cache really was compacted, so a position error would show.
          expect(reference.usage.keptKvTokens.flat().every((c) => c === BUDGET)).toBe(true);
        }
        for (const name of FUSED) {
          const twin = await run(method, targets.get(name) as OrtCausalLM, text);
          expect({ twin: name, tokens: twin.tokens }).toEqual({ twin: name, tokens: reference.tokens });
        }
      }
      const mhaReference = await run(method, mhaTargets.get('decomposed') as OrtCausalLM, PROMPTS[1]);
      const mha = await run(method, mhaTargets.get('mha') as OrtCausalLM, PROMPTS[1]);
      expect({ twin: 'mha', tokens: mha.tokens }).toEqual({ twin: 'mha', tokens: mhaReference.tokens });
    }, 120_000);
  }

  it('a compacted cache changes the answer (the comparison above can fail)', async () => {
    const full = await run('full', targets.get('gqa-unwired') as OrtCausalLM, PROMPTS[1]);
    const streaming = await run('streamingllm', targets.get('gqa-unwired') as OrtCausalLM, PROMPTS[1]);
    expect(streaming.tokens).not.toEqual(full.tokens);
  }, 30_000);

  for (const method of RAGGED_METHODS) {
    it(`${method} runs on the decomposed twin and is refused on fused ones before generating`, async () => {
      const ragged = await loadModel(paths.decomposed, { raggedCache: true });
      try {
        const result = await runPlan(planMethod(method, { budget: BUDGET }), { target: ragged, draft }, PROMPTS[0], { maxNewTokens: 4 });
        expect(result.tokens).toHaveLength(4);
      } finally {
        await ragged.dispose();
      }
      for (const path of [...FUSED.map((n) => paths[n]), mhaPaths.mha]) {
        await expect(loadModel(path, { raggedCache: true })).rejects.toBeInstanceOf(UnsupportedCapabilityError);
      }
    }, 60_000);
  }
});
