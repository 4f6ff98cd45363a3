import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PolicyConfig, PromptCompressorV1 } from '@draft/core';
import { loadModel } from '@draft/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { type FidelityBenchJson, type GenerateJson, type PerfBenchJson, parseMethodOptionValue, planMethod, type RulerBenchJson } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

const models = fileURLToPath(new URL('../../../models', import.meta.url));
const RANDOM_TARGET = join(models, 'fixtures', 'random-target');
const RANDOM_DRAFT = join(models, 'fixtures', 'random-draft');
const pair = ['--target', RANDOM_TARGET, '--draft', RANDOM_DRAFT];
const PROMPT = Array.from({ length: 60 }, (_, i) => `Line ${i}: the keeper wrote a note about the tide.`).join(' ');
const work = mkdtempSync(join(tmpdir(), 'draft-method-options-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const opt = (...texts: string[]) => texts.flatMap((t) => ['--method-option', t]);
const configOf = (stage: unknown) => (typeof (stage as { toConfig?: unknown }).toConfig === 'function' ? (stage as { toConfig(): PolicyConfig }).toConfig() : (stage as PolicyConfig));

/** A usage error (exit 2) on `--method-option` naming `value`; returns the JSON error. */
async function optionError(args: string[], value: string): Promise<{ code: string; message: string; details: { argument: string; value: unknown; expected: string } }> {
  const { code, stderr } = await cli(args);
  expect(code, stderr).toBe(2);
  const { error } = JSON.parse(stderr.trim().split('\n').at(-1)!);
  expect(error.code).toBe('INVALID_ARGUMENT');
  expect(error.details).toMatchObject({ argument: '--method-option', value });
  return error;
}

describe('--method-option values', () => {
  it('integers and floats are numbers, true/false booleans, anything else text', () => {
    expect(['8', '-3', '0.5', '.25', '1e3', 'true', 'false', 'mean', '8px', '0x10', 'True', 'Infinity'].map(parseMethodOptionValue)).toEqual([
      8,
      -3,
      0.5,
      0.25,
      1000,
      true,
      false,
      'mean',
      '8px',
      '0x10',
      'True',
      'Infinity',
    ]);
  });
});

describe('planMethod with method options', () => {
  it('SpecPC: the options reach the compressor and override --window', () => {
    const plan = planMethod('specpc', { budget: 100, windowSize: 8, options: { kernelSize: 1, neighbourTokens: 0, windowSize: 4, weightedQuery: false } });
    expect(configOf(plan.stages.compressor)).toMatchObject({ type: 'specpc', kernelSize: 1, neighbourTokens: 0, windowSize: 4, weightedQuery: false });
    expect(plan.methodOptions).toEqual({ kernelSize: 1, neighbourTokens: 0, windowSize: 4, weightedQuery: false });
    // an option its default config leaves out (no value) is taken too
    expect(configOf(planMethod('specpc', { options: { chunkSize: 32 } }).stages.compressor)).toMatchObject({ chunkSize: 32 });
    // without options nothing changes
    const plain = planMethod('specpc', { budget: 100, windowSize: 8 });
    expect(configOf(plain.stages.compressor)).toMatchObject({ windowSize: 8, kernelSize: 64, neighbourTokens: 64 });
    expect(plain.methodOptions).toBeUndefined();
  });

  it('SpecKV, SnapKV and self-information: the cache policy / compressor config', () => {
    const speckv = planMethod('speckv', { budget: 48, windowSize: 8, options: { kernelSize: 3, poolType: 'avg', windowSize: 4 } });
    expect(configOf(speckv.stages.cachePolicy)).toEqual({ type: 'speckv', windowSize: 4, kernelSize: 3, poolType: 'avg' });
    expect(configOf(speckv.stages.lookahead)).toEqual({ type: 'draft-lookahead' });
    const snapkv = planMethod('snapkv', { budget: 48, windowSize: 8, options: { kernelSize: 5 } });
    expect(configOf(snapkv.stages.cachePolicy)).toMatchObject({ type: 'snapkv', windowSize: 8, kernelSize: 5 });
    const selfinfo = planMethod('selfinfo', { budget: 48, options: { forwardChunkSize: 16 } });
    expect(configOf(selfinfo.stages.compressor)).toMatchObject({ type: 'self-information', forwardChunkSize: 16 });
  });

  it('LAQ++: options go to the cache policy; windowSize also to its pseudo-lookahead', () => {
    const laq = planMethod('laq', { budget: 48, windowSize: 8, options: { windowSize: 4, kernelSize: 3 } });
    expect(configOf(laq.stages.cachePolicy)).toMatchObject({ type: 'laq', windowSize: 4, kernelSize: 3 });
    expect(configOf(laq.stages.lookahead)).toEqual({ type: 'target-pseudo-lookahead', windowSize: 4 });
    const kernelOnly = planMethod('laq', { budget: 48, windowSize: 8, options: { kernelSize: 3 } });
    expect(configOf(kernelOnly.stages.lookahead)).toEqual({ type: 'target-pseudo-lookahead', windowSize: 8 });
  });

  it("SpecKV-PC: options go to the cascade's SpecPC stage (budget = C_pc); SpecKV keeps --window", () => {
    const plan = planMethod('speckv-pc', { budget: 48, windowSize: 8, options: { kernelSize: 8, neighbourTokens: 4, budget: 512, onMissingLookahead: 'error' } });
    expect(configOf(plan.stages.compressor)).toMatchObject({ type: 'specpc', kernelSize: 8, neighbourTokens: 4, windowSize: 8, budget: { tokens: 512 } });
    expect(configOf(plan.stages.lookahead)).toMatchObject({ type: 'reused-lookahead', onMissing: 'error' });
    expect(plan.stages.cachePolicy).toEqual({ type: 'speckv', windowSize: 8 });
    expect(plan.stages.budget).toEqual({ tokens: 48 });
  });

  it('SpecPC with kernelSize=1 / neighbourTokens=0 keeps another token set than the defaults (random pair)', async () => {
    const draft = await loadModel(RANDOM_DRAFT);
    try {
      const inputIds = draft.tokenizer.encode(PROMPT);
      const kept = async (options?: Record<string, number>) => {
        const compressor = planMethod('specpc', { budget: 100, windowSize: 8, options }).stages.compressor as PromptCompressorV1;
        return (await compressor.compress({ inputIds, text: PROMPT, budget: 100, draft })).keptIndices;
      };
      const defaults = await kept();
      const narrow = await kept({ kernelSize: 1, neighbourTokens: 0 });
      expect(defaults).toHaveLength(100);
      expect(narrow).toHaveLength(100);
      expect(narrow).not.toEqual(defaults);
      expect(await kept({ kernelSize: 1, neighbourTokens: 0 })).toEqual(narrow); // deterministic
    } finally {
      await draft.dispose();
    }
  }, 60_000);
});

describe('draft generate --method-option', () => {
  it('runs with the options and reports them', async () => {
    const { code, stdout, stderr } = await cli([
      'generate', '--json', ...pair, '--prompt', PROMPT, '--max-new-tokens', '3', '--method', 'specpc', '--budget', '100', '--window', '8',
      ...opt('specpc.kernelSize=1', 'specpc.neighbourTokens=0'),
    ]);
    expect(code, stderr).toBe(0);
    const out = oneJson<GenerateJson>(stdout);
    expect(out.methodOptions).toEqual({ kernelSize: 1, neighbourTokens: 0 });
    expect(out.usage.compressedPromptTokens).toBe(100);
  }, 60_000);

  const generate = (method: string, ...texts: string[]) => ['generate', '--json', ...pair, '--prompt', PROMPT, '--method', method, '--budget', '64', ...opt(...texts)];

  it('malformed text is a usage error showing the syntax', async () => {
    for (const text of ['specpc', 'specpc.kernelSize', 'specpc.kernelSize=', 'kernelSize=8', '.kernelSize=8', 'specpc.=8', 'specpc.kernel-size=8']) {
      const error = await optionError(generate('specpc', text), text);
      expect(error.details.expected, text).toContain('<method>.<name>=<value>');
    }
  });

  it('an option for a method not in the run names the methods of the run', async () => {
    const error = await optionError(generate('specpc', 'snapkv.kernelSize=3'), 'snapkv.kernelSize=3');
    expect(error.details.expected).toContain('(specpc)');
  });

  it('a name the policy does not take lists the names it does', async () => {
    // a cache policy (its factory rejects unknown keys) and compressors (their toConfig() tells)
    for (const [method, text, lists] of [
      ['speckv', 'speckv.kernelSzie=3', 'kernelSize'],
      ['specpc', 'specpc.kernelSzie=3', 'neighbourTokens'],
      ['specpc', 'specpc.onResult=x', 'startingLayerIndex'],
      ['random-pc', 'random-pc.windowSize=4', 'seed'],
      ['speckv-pc', 'speckv-pc.poolType=avg', 'onMissingLookahead'],
    ]) {
      const error = await optionError(generate(method, text), text);
      expect(error.details.expected, text).toContain(`an option '${method}' takes:`);
      expect(error.details.expected, text).toContain(lists);
      expect(error.message, text).toContain(text);
    }
  });

  it('the names listed for SpecPC and SpecKV-PC are exactly the ones accepted, chunkSize (no default value) included', async () => {
    const accepted: Record<string, string | number | boolean> = {
      windowSize: 4,
      kernelSize: 3,
      neighbourTokens: 2,
      lookaheadTokens: 2,
      startingLayerIndex: 1,
      weightedQuery: false,
      reduce: 'mean',
      keepOriginalPositions: true,
      chunkSize: 16,
    };
    const specpc = await optionError(generate('specpc', 'specpc.chunkSzie=16'), 'specpc.chunkSzie=16');
    expect(specpc.details.expected).toBe(`an option 'specpc' takes: ${Object.keys(accepted).join(', ')}`);
    const cascade = await optionError(generate('speckv-pc', 'speckv-pc.chunkSzie=16'), 'speckv-pc.chunkSzie=16');
    expect(cascade.details.expected).toBe(`an option 'speckv-pc' takes: budget, ${Object.keys(accepted).join(', ')}, onMissingLookahead`);
    // every listed name is taken: it reaches the built SpecPC compressor's config (each value differs from its default)
    for (const method of ['specpc', 'speckv-pc']) {
      const defaults = configOf(planMethod(method, { budget: 64 }).stages.compressor);
      for (const [name, value] of Object.entries(accepted)) {
        expect(defaults[name], `${method} ${name}`).not.toEqual(value);
        expect(configOf(planMethod(method, { budget: 64, options: { [name]: value } }).stages.compressor)[name], `${method} ${name}`).toEqual(value);
      }
    }
  });

  it("a bad value is the policy's own validation, naming the option", async () => {
    for (const [method, text, expected] of [
      ['specpc', 'specpc.kernelSize=0', 'an integer ≥ 1'],
      ['specpc', 'specpc.weightedQuery=yes', 'boolean'],
      ['speckv', 'speckv.poolType=median', "'max', 'avg'"],
      ['laq', 'laq.windowSize=2.5', 'integer'],
      ['speckv-pc', 'speckv-pc.onMissingLookahead=skip', "'generate', 'error'"],
    ]) {
      const error = await optionError(generate(method, text), text);
      expect(error.details.expected, text).toContain(expected);
    }
  });

  it('full and draft-only take no options; budget belongs to --budget', async () => {
    const full = await optionError(['generate', '--json', '--prompt', 'hi', ...opt('full.windowSize=8')], 'full.windowSize=8');
    expect(full.details.expected).toContain('no method options');
    await optionError(['generate', '--json', '--prompt', 'hi', '--method', 'draft-only', ...opt('draft-only.x=1')], 'draft-only.x=1');
    const budget = await optionError(generate('snapkv', 'snapkv.budget=32'), 'snapkv.budget=32');
    expect(budget.details.expected).toContain('--budget');
  });
});

describe('bench --method-option', () => {
  it('ruler: the options run, are recorded in the results, config and summary, and runs with other options are not resumed', async () => {
    const out = join(work, 'ruler');
    const args = ['bench', 'ruler', '--json', ...pair, '--methods', 'full,specpc', '--budgets', '64', '--lengths', '200', '--tasks', 'niah_single_1', '--samples', '1'];
    const rest = ['--window', '8', '--max-new-tokens', '4', '--out', out];
    const { code, stdout, stderr } = await cli([...args, ...rest, ...opt('specpc.kernelSize=1', 'specpc.neighbourTokens=0')]);
    expect(code, stderr).toBe(0);
    const report = oneJson<RulerBenchJson>(stdout);
    const specpc = report.results.find((r) => r.method === 'specpc')!;
    expect(specpc).toMatchObject({ budget: 64, methodOptions: { kernelSize: 1, neighbourTokens: 0 } });
    expect(specpc.accuracy).not.toBeNull();
    expect(report.results.find((r) => r.method === 'full')!.methodOptions).toBeUndefined();
    expect(report.summary.find((s) => s.method === 'specpc')!.methodOptions).toEqual({ kernelSize: 1, neighbourTokens: 0 });
    const dir = join(out, 'runs', 'specpc__b64__L200__niah_single_1__kernelSize-1_neighbourTokens-0');
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ windowSize: 8, methodOptions: { kernelSize: 1, neighbourTokens: 0 } });
    expect(JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')).methodOptions).toEqual({ kernelSize: 1, neighbourTokens: 0 });
    expect(JSON.parse(readFileSync(join(out, 'runs', 'full__bnone__L200__niah_single_1', 'config.json'), 'utf8')).methodOptions).toEqual({});
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| specpc (kernelSize=1, neighbourTokens=0) | 64 | 200 |');
    expect(readFileSync(join(out, 'results.json'), 'utf8')).toContain('"neighbourTokens": 0');

    // the same sweep without the options resumes full only: specpc runs again with its defaults
    const again = await cli([...args, ...rest]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr.match(/resumed/g)).toHaveLength(1);
    expect(oneJson<RulerBenchJson>(again.stdout).results.find((r) => r.method === 'specpc')!.methodOptions).toBeUndefined();
    expect(readdirSync(join(out, 'runs')).sort()).toEqual([
      'full__bnone__L200__niah_single_1',
      'specpc__b64__L200__niah_single_1',
      'specpc__b64__L200__niah_single_1__kernelSize-1_neighbourTokens-0',
    ]);
  }, 120_000);

  it('fidelity: options recorded per row, in the summary and the run config; the self-check still holds', async () => {
    const out = join(work, 'fidelity');
    const { code, stdout, stderr } = await cli([
      'bench', 'fidelity', '--json', ...pair, '--methods', 'snapkv', '--budgets', '1/4', '--lengths', '160', '--steps', '3', '--window', '8', '--out', out,
      ...opt('snapkv.kernelSize=3', 'snapkv.windowSize=4'),
    ]);
    expect(code, stderr).toBe(0);
    const report = oneJson<FidelityBenchJson>(stdout);
    expect(report.selfCheck.passed).toBe(true);
    const rows = [...report.results, ...report.selfCheck.rows].filter((r) => r.method === 'snapkv');
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r.methodOptions).toEqual({ kernelSize: 3, windowSize: 4 });
    expect(report.summary.find((s) => s.method === 'snapkv')!.methodOptions).toEqual({ kernelSize: 3, windowSize: 4 });
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| snapkv (kernelSize=3, windowSize=4) | 1/4 |');
    const dir = readdirSync(join(out, 'runs')).find((d) => d.startsWith('snapkv__b40__'))!;
    expect(dir).toMatch(/__kernelSize-3_windowSize-4$/);
    expect(JSON.parse(readFileSync(join(out, 'runs', dir, 'config.json'), 'utf8')).methodOptions).toEqual({ kernelSize: 3, windowSize: 4 });
  }, 120_000);

  it('perf: options recorded per row, in the summary and the run config', async () => {
    const out = join(work, 'perf');
    const { code, stdout, stderr } = await cli([
      'bench', 'perf', '--json', ...pair, '--methods', 'full,snapkv', '--budget', '32', '--window', '8', '--lengths', '64', '--new-tokens', '2',
      '--no-transformers', '--out', out, ...opt('snapkv.windowSize=4'),
    ]);
    expect(code, stderr).toBe(0);
    const { results } = oneJson<PerfBenchJson>(stdout);
    expect(results.map((r) => [r.method, r.methodOptions])).toEqual([['full', undefined], ['snapkv', { windowSize: 4 }]]);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('| snapkv (windowSize=4) | 64 | 32 |');
    const dir = join(out, 'runs', 'snapkv__b32__L64__perf__windowSize-4');
    expect(existsSync(dir)).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ windowSize: 8, methodOptions: { windowSize: 4 } });
  }, 60_000);

  it('errors come before any model loads: unknown method of the run, unknown name, bad value', async () => {
    const base = ['bench', 'ruler', '--json', ...pair, '--methods', 'full,snapkv', '--lengths', '200', '--out', join(work, 'never')];
    await optionError([...base, ...opt('specpc.kernelSize=8')], 'specpc.kernelSize=8');
    await optionError([...base, ...opt('snapkv.kernelSzie=8')], 'snapkv.kernelSzie=8');
    await optionError([...base, ...opt('snapkv.kernelSize=-1')], 'snapkv.kernelSize=-1');
    await optionError([...base, ...opt('full.kernelSize=8')], 'full.kernelSize=8');
    expect(existsSync(join(work, 'never'))).toBe(false);
    // fidelity and perf always run full: still not a method to give options to
    await optionError(['bench', 'fidelity', '--json', ...pair, '--methods', 'snapkv', ...opt('full.x=1'), '--out', join(work, 'never')], 'full.x=1');
    await optionError(['bench', 'perf', '--json', ...pair, '--methods', 'snapkv', '--no-transformers', ...opt('specpc.x=1'), '--out', join(work, 'never')], 'specpc.x=1');
    expect(existsSync(join(work, 'never'))).toBe(false);
  });
});
