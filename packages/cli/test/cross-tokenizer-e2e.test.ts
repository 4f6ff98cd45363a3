import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RandomCompressor, RecencyCompressor, SelfInformationCompressor, SpecPrefillCompressor } from '@draft/baselines';
import { createPipeline, type DraftError, type PromptCompressorV1 } from '@draft/core';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { speckv } from '@draft/speckv';
import { specKVPC, specPC } from '@draft/specpc';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GenerateJson } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

// Cross-tokenizer prompt compression on real models: the bundled draft (models/draft, WordLevel, 265 words) in
// front of tiny-llama (byte-level BPE, 512 tokens). The budget counts target tokens; the target must receive
// original text, whole draft words, about `budget` tokens of it.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const DRAFT_DIR = `${MODELS}draft`;
const TARGET_DIR = `${MODELS}fixtures/tiny-llama`;
/** Stated tolerance: the target sees between 90% and 100% of the budget (core's CROSS_BUDGET_TOLERANCE). */
const within = (tokens: number, budget: number) => tokens <= budget && tokens >= Math.ceil(0.9 * budget);

/**
 * 785 draft words in the draft's own vocabulary (models/draft/task_format.json): filler lines of 16 words, a
 * needle line 'k12  v34' (two spaces: the draft's decoding would print one) and the question 'Q k12 A'.
 */
function needlePrompt(): string {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const words = Array.from({ length: 780 }, () => `w${String(Math.floor(random() * 64)).padStart(2, '0')}`);
  const lines: string[] = [];
  for (let i = 0; i < words.length; i += 16) lines.push(words.slice(i, i + 16).join(' '));
  lines.splice(25, 0, 'k12  v34');
  return `${lines.join('\n')}\nQ k12 A`;
}
const PROMPT = needlePrompt();
const NEEDLE = 'k12  v34';

/** The draft's words (its Whitespace pre-tokenizer: \w+ | [^\w\s]+), each with the whitespace before it. */
const units = (text: string) => Array.from(text.matchAll(/\s*(?:\w+|[^\w\s]+)/gu), (m) => m[0]);

/** Whether `kept` is whole draft words of `original`, in order, each run led by the original whitespace. */
function isWholeWordSubsequence(kept: string, original: string): boolean {
  const k = units(kept);
  if (k.join('') !== kept) return false; // nothing but words and whitespace, and no trailing space
  let i = 0;
  for (const u of units(original)) {
    if (i < k.length && (k[i] === u || (i === 0 && k[0] === u.trimStart()))) i++;
  }
  return i === k.length;
}

let draft: OrtCausalLM;
let target: OrtCausalLM;
beforeAll(async () => {
  draft = await loadModel(DRAFT_DIR, { threads: 1 });
  target = await loadModel(TARGET_DIR, { threads: 1 });
});
afterAll(async () => {
  await draft?.dispose();
  await target?.dispose();
});

/** Runs `run`, returning the target's forward requests and the draft's forward count. */
async function observe<T>(run: () => Promise<T>) {
  const targetSpy = vi.spyOn(target, 'forward');
  const draftSpy = vi.spyOn(draft, 'forward');
  try {
    const outcome = await run().then(
      (value) => ({ value, error: undefined }),
      (error: unknown) => ({ value: undefined, error }),
    );
    return { ...outcome, targetRequests: targetSpy.mock.calls.map(([r]) => r), draftCalls: draftSpy.mock.calls.length };
  } finally {
    targetSpy.mockRestore();
    draftSpy.mockRestore();
  }
}

describe('cross-tokenizer prompt compression (models/draft → tiny-llama)', () => {
  it('the pair really has different tokenizers and the prompt is far over budget', () => {
    expect(draft.tokenizer.fingerprint).not.toBe(target.tokenizer.fingerprint);
    expect(draft.tokenizer.encode(PROMPT)).toHaveLength(785);
    expect(target.tokenizer.encode(PROMPT).length).toBeGreaterThan(2000);
  });

  it('SpecPC: the target gets ≈ budget tokens of original text, whole words, with the needle verbatim', async () => {
    const budget = 200;
    const compressor = specPC({ windowSize: 8, kernelSize: 8, neighbourTokens: 8 });
    const { value: result, error, targetRequests } = await observe(() =>
      createPipeline({ target, draft, compressor, promptBudget: { tokens: budget } }).generate(PROMPT, { maxNewTokens: 4 }),
    );
    expect(error).toBeUndefined();
    const prefill = Array.from(targetRequests[0].inputIds);
    expect(result?.usage.compressedPromptTokens).toBe(prefill.length);
    expect(within(prefill.length, budget)).toBe(true);
    const text = target.tokenizer.decode(prefill, { skipSpecialTokens: true });
    expect(text.length).toBeGreaterThan(0);
    expect(isWholeWordSubsequence(text, PROMPT)).toBe(true);
    // Original spans: the needle's two spaces and the line breaks survive (the draft decodes words with one space).
    expect(text).toContain(`\n${NEEDLE}\n`);
    expect(draft.tokenizer.decode(draft.tokenizer.encode(NEEDLE))).toBe('k12 v34');
    expect(text.endsWith('\nQ k12 A')).toBe(true); // SpecPC's window: the last W = 8 draft words are always kept
  });

  it('every prompt compressor keeps ≈ budget target tokens of whole original words', async () => {
    const budget = 300;
    const compressors: PromptCompressorV1[] = [
      new SpecPrefillCompressor(),
      new SelfInformationCompressor({ windowSize: 8 }),
      new RandomCompressor({ seed: 3 }),
      new RecencyCompressor(),
    ];
    for (const compressor of compressors) {
      const { error, targetRequests } = await observe(() =>
        createPipeline({ target, draft, compressor, promptBudget: { tokens: budget } }).generate(PROMPT, { maxNewTokens: 1 }),
      );
      expect(error, compressor.type).toBeUndefined();
      const prefill = targetRequests[0];
      expect(within(prefill.inputIds.length, budget), `${compressor.type}: ${prefill.inputIds.length}`).toBe(true);
      // Kept positions count draft tokens: across tokenizers the target's positions are re-indexed (SpecPrefill too).
      expect(prefill.positionIds).toBeUndefined();
      expect(isWholeWordSubsequence(target.tokenizer.decode(Array.from(prefill.inputIds), { skipSpecialTokens: true }), PROMPT), compressor.type).toBe(true);
    }
  });

  it('SpecKV-PC: the compressed prompt ≈ budget, and the draft tokens of the compression run cross to SpecKV', async () => {
    const { compressor, lookahead } = specKVPC({ windowSize: 8, budget: 400 });
    const { value: result, error, targetRequests } = await observe(() =>
      createPipeline({ target, draft, compressor, lookahead, cachePolicy: speckv({ windowSize: 8 }), budget: { tokens: 64 } }).generate(PROMPT, {
        maxNewTokens: 4,
      }),
    );
    expect(error).toBeUndefined();
    const n = result?.usage.compressedPromptTokens ?? 0;
    expect(within(n, 400)).toBe(true);
    expect(lookahead.fallbackRuns).toBe(0); // no second draft run: the compressor's 20 tokens were reused
    // The KV stage prefills the compressed prompt ++ the draft's answer re-tokenised by the target.
    expect(targetRequests[0].inputIds.length).toBeGreaterThan(n);
    expect(result?.usage.draftTokens).toBeGreaterThan(0);
    expect(result?.usage.keptKvTokens.flat().every((kept) => kept === 64)).toBe(true); // SpecKV's C per (layer, KV head)
  });

  it('a prompt the draft cannot read fails with PROMPT_NOT_REPRESENTABLE before any model runs', async () => {
    const english = 'The keeper of the lighthouse wrote about the tide and the storm. '.repeat(60);
    const { error, targetRequests, draftCalls } = await observe(() =>
      createPipeline({ target, draft, compressor: specPC(), promptBudget: { tokens: 64 } }).generate(english, { maxNewTokens: 1 }),
    );
    expect((error as DraftError).code).toBe('PROMPT_NOT_REPRESENTABLE');
    expect((error as DraftError).details).toMatchObject({ unknownFraction: 1, maxUnknownFraction: 0.5 });
    expect((error as Error).message).toContain('"The"');
    expect(draftCalls).toBe(0);
    expect(targetRequests).toHaveLength(0);
  });

  // The reproduction: before, 190 target tokens for tiny-llama / tiny-qwen2-gqa (64 draft words decoded
  // and re-tokenised), and 1 token or `Invalid inputIds: got []` for a prompt the draft cannot read.
  it.each(['tiny-llama', 'tiny-qwen2-gqa'])('CLI: generate --method specpc --budget 64 hands %s ≈ 64 tokens', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), 'draft-xtok-'));
    try {
      const file = join(dir, 'prompt.txt');
      writeFileSync(file, PROMPT);
      const args = ['generate', '--json', '--target', `${MODELS}fixtures/${name}`, '--draft', DRAFT_DIR, '--method', 'specpc', '--budget', '64', '--prompt-file', file];
      const { code, stdout, stderr } = await cli(args);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const out = oneJson<GenerateJson>(stdout);
      expect(out.usage.promptTokens).toBeGreaterThan(2000);
      expect(within(out.usage.compressedPromptTokens, 64)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
