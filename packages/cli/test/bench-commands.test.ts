import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { symbolicTaskFormat } from '../../bench/test/bench-fixtures.js';
import { type FidelityBenchJson, type PerfBenchJson, type RulerBenchJson, scorePrediction } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

/** A symbolic task format (the trained pair writes its own into models/target). */
const SYMBOLIC_FORMAT = symbolicTaskFormat(['niah_single_1', 'niah_multivalue', 'vt', 'cwe']);

const models = fileURLToPath(new URL('../../../models', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-bench-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pair = ['--target', join(models, 'fixtures', 'random-target'), '--draft', join(models, 'fixtures', 'random-draft')];
const RUN_FILES = ['predictions.jsonl', 'metrics.json', 'config.json', 'run_meta.json'];

describe('draft bench ruler (bundled pair, smoke size)', () => {
  const out = join(work, 'ruler');
  const args = ['bench', 'ruler', '--json', ...pair, '--methods', 'full,draft-only,snapkv,adakv', '--budgets', '1/4,128,4', '--lengths', '400'];
  const rest = ['--tasks', 'niah_single_1,qa', '--samples', '1', '--window', '8', '--max-new-tokens', '6', '--out', out];

  it('runs every method × budget × length × task, writes the files, scores predictions with the task metric', async () => {
    const { code, stdout, stderr } = await cli([...args, ...rest]);
    expect(code, stderr).toBe(0);
    const report = oneJson<RulerBenchJson>(stdout);
    // full + draft-only once per task, snapkv/adakv at 100 (1/4 of 400), 128 and 4 tokens
    expect(report.results).toHaveLength(2 * (2 + 3 + 3));
    for (const r of report.results) expect(Object.keys(r)).toEqual(expect.arrayContaining(['method', 'budget', 'length', 'task', 'accuracy', 'samples']));
    expect(report.results.filter((r) => r.method === 'full').every((r) => r.budget === null && r.samples === 1)).toBe(true);
    expect([...new Set(report.results.filter((r) => r.method === 'snapkv').map((r) => r.budget))]).toEqual([100, 128, 4]);
    // budget 4 < window 8: the backend's typed error is recorded as skipped, the sweep goes on
    const tiny = report.results.filter((r) => r.budget === 4);
    expect(tiny.every((r) => r.accuracy === null && r.skipped?.startsWith('INVALID_ARGUMENT'))).toBe(true);
    // the ragged-cache method ran (target loaded with raggedCache)
    expect(report.results.filter((r) => r.method === 'adakv' && r.budget === 100).every((r) => r.accuracy !== null)).toBe(true);
    for (const s of report.summary) expect(s.accuracy).toBeGreaterThanOrEqual(0);
    expect(report.summary.find((s) => s.method === 'snapkv' && s.budget === 4)).toBeUndefined();

    const runs = readdirSync(join(out, 'runs'));
    expect(runs).toHaveLength(report.results.length);
    const dir = join(out, 'runs', 'snapkv__b100__L400__qa');
    for (const f of RUN_FILES) expect(existsSync(join(dir, f)), f).toBe(true);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ budget: 100, budgetSpec: '1/4', budgetFraction: 0.25, length: 400, style: 'natural', generation: 'greedy' });
    const meta = JSON.parse(readFileSync(join(dir, 'run_meta.json'), 'utf8'));
    expect(meta.hardware.cpuCount).toBeGreaterThan(0);
    expect(meta.node).toBe(process.version);
    expect(meta.queryAware).toEqual({ questionInPrompt: true, methodScoresWithQuery: true });
    // each prediction's stored score is the metric of its stored prediction
    const line = JSON.parse(readFileSync(join(dir, 'predictions.jsonl'), 'utf8').trim());
    expect(line.score).toBe(scorePrediction('string_match_part', line.prediction, line.answers));
    expect(scorePrediction('string_match_part', `It was ${line.answers[0]}.`, line.answers)).toBe(1);
    // intervals on every run that ran (1 sample of 0/1: Wilson with n = 1 is centre ± half = z²/2 / (1 + z²) = 0.3967
    // each, so [0, 0.7935] or [0.2065, 1]), paired comparisons, outcomes.jsonl
    for (const r of report.results.filter((x) => x.accuracy !== null)) {
      expect(r.interval?.method).toBe('wilson');
      expect(r.interval?.high).toBeCloseTo(r.accuracy === 1 ? 1 : 0.7935, 3);
    }
    const pair = report.comparisons.find((c) => c.a === 'snapkv' && c.b === 'adakv' && c.budgetA === 100 && c.task === null);
    expect(pair).toMatchObject({ tasks: ['niah_single_1', 'qa'], pairs: 2, test: 'paired-bootstrap' });
    expect(report.comparisons.some((c) => c.a === 'full' && c.b === 'snapkv' && c.budgetB === 128 && c.task === 'qa' && c.test === 'mcnemar-exact')).toBe(true);
    const outcomes = readFileSync(join(out, 'outcomes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(outcomes).toHaveLength(report.results.filter((r) => r.accuracy !== null).length);
    expect(outcomes.find((o) => o.method === 'snapkv' && o.budget === 100 && o.task === 'qa')?.score).toBe(line.score);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/\| snapkv \| 100 \(1\/4\) \| 400 \| \d+\.\d \(\d+\.\d–\d+\.\d\) \|/);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('## Paired differences');
    expect(readFileSync(join(out, 'accuracy-vs-budget.svg'), 'utf8')).toContain('95% interval');
    expect(readFileSync(join(out, 'accuracy-vs-budget.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>\n$/);
  }, 120_000);

  it('is resumable: finished runs are read back, not run again', async () => {
    const before = readFileSync(join(out, 'runs', 'snapkv__b100__L400__qa', 'predictions.jsonl'), 'utf8');
    const { code, stdout, stderr } = await cli([...args, ...rest]);
    expect(code).toBe(0);
    expect(stderr.match(/resumed/g)).toHaveLength(16);
    expect(oneJson<RulerBenchJson>(stdout).results).toHaveLength(16);
    // resumed runs read their outcomes back: the same intervals and comparisons
    expect(oneJson<RulerBenchJson>(stdout).comparisons.length).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'runs', 'snapkv__b100__L400__qa', 'predictions.jsonl'), 'utf8')).toBe(before);
  }, 60_000);

  it('symbolic style when the target folder has task_format.json', async () => {
    const target = join(work, 'symbolic-target');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(target);
    for (const f of readdirSync(join(models, 'fixtures', 'random-target'))) symlinkSync(join(models, 'fixtures', 'random-target', f), join(target, f));
    writeFileSync(join(target, 'task_format.json'), JSON.stringify(SYMBOLIC_FORMAT));
    const sout = join(work, 'ruler-symbolic');
    const { code, stdout, stderr } = await cli([
      'bench', 'ruler', '--json', '--target', target, '--draft', join(models, 'fixtures', 'random-draft'), '--methods', 'full,streamingllm',
      '--budgets', '64', '--lengths', '300', '--tasks', 'niah_multivalue,vt', '--samples', '1', '--window', '8', '--out', sout,
    ]);
    expect(code, stderr).toBe(0);
    expect(oneJson<RulerBenchJson>(stdout).results.map((r) => `${r.method}/${r.task}`)).toEqual(['full/niah_multivalue', 'streamingllm/niah_multivalue', 'full/vt', 'streamingllm/vt']);
    const dir = join(sout, 'runs', 'full__bnone__L300__vt');
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ style: 'symbolic' });
    const line = JSON.parse(readFileSync(join(dir, 'predictions.jsonl'), 'utf8').trim());
    expect(line.expected).toBe(`${line.answers.join(' ')} <eos>`);
    expect(line.promptTokens).toBeGreaterThanOrEqual(294);
    expect(line.promptTokens).toBeLessThanOrEqual(306);
  }, 60_000);
});

describe('draft bench fidelity (bundled pair)', () => {
  it('agreement and teacher-forced KL vs full KV; self-check: budget ≥ prompt gives 1 and 0 for every method', async () => {
    const out = join(work, 'fidelity');
    const { code, stdout, stderr } = await cli([
      'bench', 'fidelity', '--json', ...pair, '--methods', 'full,draft-only,speckv,snapkv,streamingllm,specpc', '--budgets', '1/4', '--lengths', '320',
      '--steps', '6', '--window', '8', '--out', out,
    ]);
    expect(code, stderr).toBe(0);
    const report = oneJson<FidelityBenchJson>(stdout);
    expect(report.selfCheck.passed).toBe(true);
    expect(report.selfCheck.failures).toEqual([]);
    // full plus one budget ≥ prompt row per budgeted method
    expect(report.selfCheck.rows.map((r) => r.method)).toEqual(['full', 'speckv', 'snapkv', 'streamingllm', 'specpc']);
    for (const r of report.selfCheck.rows) {
      expect(r.agreementPrefix, r.method).toBe(1);
      expect(r.agreement, r.method).toBe(1);
      expect(r.meanKl, r.method).toBeLessThanOrEqual(1e-6);
      expect(r.budget === null || r.budget >= r.promptTokens).toBe(true);
    }
    const full = report.results.find((r) => r.method === 'full');
    expect(full).toMatchObject({ agreementPrefix: 1, agreement: 1, forcedTop1: 1, meanKl: 0, budget: null });
    const compressed = report.results.filter((r) => r.budget !== null);
    expect(compressed.map((r) => [r.method, r.budget])).toEqual([['speckv', 80], ['snapkv', 80], ['streamingllm', 80], ['specpc', 80]]);
    for (const r of compressed) {
      // a quarter of the KV really changes the next-token distributions of the random bundled target …
      expect(r.meanKl, r.method).toBeGreaterThan(1e-3);
      expect(r.kvBytes! / r.fullKvBytes, r.method).toBeLessThan(0.3);
      // … and teacher forcing agrees with free-running greedy decoding up to the first divergence
      expect(r.forcedTop1!, r.method).toBeGreaterThanOrEqual(r.agreementPrefix!);
    }
    const draftOnly = report.results.find((r) => r.method === 'draft-only')!;
    expect(draftOnly.meanKl).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toContain('Self-check (budget ≥ prompt length ⇒ agreement 1, KL 0): PASSED');
    expect(readFileSync(join(out, 'kl-vs-budget.svg'), 'utf8')).toContain('<svg');
    expect(readdirSync(join(out, 'runs')).length).toBe(report.results.length + report.selfCheck.rows.length - 1);
  }, 120_000);
});

describe('draft bench perf (bundled pair)', () => {
  it('times full KV and each method side by side, with ratios, KV bytes and peak RSS', async () => {
    const out = join(work, 'perf');
    const { code, stdout, stderr } = await cli([
      'bench', 'perf', '--json', ...pair, '--methods', 'full,snapkv', '--budget', '64', '--window', '8', '--lengths', '256', '--new-tokens', '4',
      '--no-transformers', '--out', out,
    ]);
    expect(code, stderr).toBe(0);
    const { results } = oneJson<PerfBenchJson>(stdout);
    expect(results.map((r) => r.method)).toEqual(['full', 'snapkv']);
    const [full, snap] = results;
    expect(full.vsFull).toEqual({ ttft: 1, totalTime: 1, decodeTokensPerSecond: 1, kvBytes: 1 });
    expect(full.kvBytes).toBe(2 * 4 * 2 * 256 * 16 * 4); // K and V · layers · KV heads · n · head dim · fp32
    expect(snap.kvBytes).toBe(2 * 4 * 2 * 65 * 16 * 4); // C = 64 kept + the re-run last prompt token
    for (const r of results) {
      expect(r.ttftMs!).toBeGreaterThan(0);
      expect(r.totalMs!).toBeGreaterThanOrEqual(r.ttftMs!);
      expect(r.peakRssBytes!).toBeGreaterThan(0);
      // The worker allocator's KV peak holds at least the cache after prefill.
      expect(r.peakKvBytes!).toBeGreaterThanOrEqual(r.kvBytes!);
    }
    // A compressed run never holds more KV than the full-KV run of the same prompt.
    expect(snap.peakKvBytes!).toBeLessThanOrEqual(full.peakKvBytes!);
    for (const f of ['summary.md', 'latency-vs-length.svg', 'memory-vs-length.svg', 'results.json']) expect(existsSync(join(out, f)), f).toBe(true);
  }, 60_000);
});
