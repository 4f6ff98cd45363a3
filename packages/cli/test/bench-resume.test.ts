import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { hashModelDir, hashText } from '@draft/bench';
import type { FidelityBenchJson, RulerBenchJson } from '../src/index.js';
import { cli, oneJson } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../../models/fixtures', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-bench-resume-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Copies a fixture model folder to `dir` (replacing what is there): "retrained weights in the same folder". */
function copyModel(from: string, dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const name of readdirSync(join(fixtures, from))) if (statSync(join(fixtures, from, name)).isFile()) copyFileSync(join(fixtures, from, name), join(dir, name));
  copyFileSync(join(fixtures, from, 'onnx', 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
  return dir;
}

/** `label → outcome` from the one progress line per run (stderr is not a terminal). */
function outcomes(stderr: string): Record<string, string> {
  return Object.fromEntries([...stderr.matchAll(/^\[\d+\/\d+\] (.+?): (.*)$/gm)].map((m) => [m[1], m[2]]));
}

const metricsOf = (out: string, run: string) => JSON.parse(readFileSync(join(out, 'runs', run, 'metrics.json'), 'utf8'));
const predictionOf = (out: string, run: string) => JSON.parse(readFileSync(join(out, 'runs', run, 'predictions.jsonl'), 'utf8').trim()).prediction;

describe('draft bench ruler: resumes only results of the same models', () => {
  const target = copyModel('random-target', join(work, 'ruler-target'));
  const draft = copyModel('random-draft', join(work, 'ruler-draft'));
  const out = join(work, 'ruler');
  const ruler = (o: string, t = target, d = draft) => [
    'bench', 'ruler', '--json', '--target', t, '--draft', d, '--methods', 'full,draft-only', '--lengths', '200', '--tasks', 'niah_single_1',
    '--samples', '1', '--max-new-tokens', '4', '--out', o,
  ];
  const FULL = 'full__bnone__L200__niah_single_1';
  const DRAFT_ONLY = 'draft-only__bnone__L200__niah_single_1';
  const RUNS = ['draft-only L200 niah_single_1', 'full L200 niah_single_1'];

  it('records the fingerprint; an unchanged rerun resumes every run', async () => {
    const first = await cli(ruler(out));
    expect(first.code, first.stderr).toBe(0);
    expect(Object.values(outcomes(first.stderr))).toHaveLength(2);
    expect(first.stderr).not.toMatch(/resumed|stale/);
    // full does not use the draft, so its results do not depend on it
    expect(metricsOf(out, FULL).modelFingerprint).toEqual({ target: hashModelDir(target), draft: null });
    expect(metricsOf(out, DRAFT_ONLY).modelFingerprint).toEqual({ target: hashModelDir(target), draft: hashModelDir(draft) });
    // the fingerprint stays out of the report
    expect(Object.keys(oneJson<RulerBenchJson>(first.stdout).results[0])).not.toContain('modelFingerprint');

    const again = await cli(ruler(out));
    expect(again.code, again.stderr).toBe(0);
    expect(outcomes(again.stderr)).toEqual({ 'full L200 niah_single_1': 'done earlier (resumed)', 'draft-only L200 niah_single_1': 'done earlier (resumed)' });
    expect(oneJson<RulerBenchJson>(again.stdout)).toEqual(oneJson<RulerBenchJson>(first.stdout));
  }, 60_000);

  it('an identical copy of the model folders in another directory: every run resumes (the fingerprint is of contents, not paths)', async () => {
    const copies = join(work, 'ruler-copies');
    const [targetCopy, draftCopy] = [join(copies, 'target'), join(copies, 'draft')];
    cpSync(target, targetCopy, { recursive: true });
    cpSync(draft, draftCopy, { recursive: true });
    const { code, stderr } = await cli(ruler(out, targetCopy, draftCopy));
    expect(code, stderr).toBe(0);
    expect(outcomes(stderr)).toEqual({ 'full L200 niah_single_1': 'done earlier (resumed)', 'draft-only L200 niah_single_1': 'done earlier (resumed)' });
    expect(metricsOf(out, DRAFT_ONLY).modelFingerprint).toEqual({ target: hashModelDir(target), draft: hashModelDir(draft) });
  }, 60_000);

  it('new weights in the same draft folder: the draft run is stale and runs again with them; full resumes', async () => {
    const before = predictionOf(out, DRAFT_ONLY);
    copyModel('tiny-llama', draft);
    const { code, stdout, stderr } = await cli(ruler(out));
    expect(code, stderr).toBe(0);
    const lines = outcomes(stderr);
    expect(lines['full L200 niah_single_1']).toBe('done earlier (resumed)');
    expect(lines['draft-only L200 niah_single_1']).toMatch(/^stale \(draft model changed\), rerun: accuracy \d\.\d{3}$/);
    expect(metricsOf(out, DRAFT_ONLY).modelFingerprint.draft).toBe(hashModelDir(draft));

    // the same numbers as a fresh bench of the new pair, not the old draft's
    const fresh = await cli(ruler(join(work, 'ruler-fresh')));
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(oneJson<RulerBenchJson>(stdout)).toEqual(oneJson<RulerBenchJson>(fresh.stdout));
    expect(predictionOf(out, DRAFT_ONLY)).toBe(predictionOf(join(work, 'ruler-fresh'), DRAFT_ONLY));
    expect(predictionOf(out, DRAFT_ONLY)).not.toBe(before);
  }, 90_000);

  it("the target's contents changed (another config), or results without a fingerprint or settings: every run is stale", async () => {
    const other = copyModel('random-target', join(work, 'ruler-target-2'));
    const config = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...config, rope_theta: 500000 }, null, 2));
    const { code, stderr } = await cli(ruler(out, other));
    expect(code, stderr).toBe(0);
    expect(stderr).not.toContain('resumed');
    const changed = outcomes(stderr);
    expect(Object.keys(changed).sort()).toEqual(RUNS);
    for (const outcome of Object.values(changed)) expect(outcome).toMatch(/^stale \(target model changed\), rerun: /);

    // metrics.json from before fingerprints were recorded, and from before settings were
    const { modelFingerprint: _, benchSettings: __, ...legacy } = metricsOf(out, FULL);
    writeFileSync(join(out, 'runs', FULL, 'metrics.json'), JSON.stringify(legacy));
    const { benchSettings: ___, ...modelsOnly } = metricsOf(out, DRAFT_ONLY);
    writeFileSync(join(out, 'runs', DRAFT_ONLY, 'metrics.json'), JSON.stringify(modelsOnly));
    const rerun = await cli(ruler(out, other));
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(outcomes(rerun.stderr)).toMatchObject({
      'full L200 niah_single_1': expect.stringMatching(/^stale \(no model fingerprint or bench settings recorded\), rerun: /),
      'draft-only L200 niah_single_1': expect.stringMatching(/^stale \(no bench settings recorded\), rerun: /),
    });
    const resumed = await cli(ruler(out, other));
    expect(Object.values(outcomes(resumed.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);
  }, 90_000);
});

describe('draft bench ruler: resumes only results of the same bench settings', () => {
  const target = join(fixtures, 'random-target');
  const draft = join(fixtures, 'random-draft');
  const out = join(work, 'ruler-settings');
  const ruler = (o: string, settings: { samples?: number; seed?: number; window?: number } = {}) => [
    'bench', 'ruler', '--json', '--target', target, '--draft', draft, '--methods', 'full,streamingllm', '--budgets', '64', '--lengths', '200', '--tasks', 'niah_single_1',
    '--samples', String(settings.samples ?? 1), '--max-new-tokens', '4', '--out', o,
    ...(settings.seed === undefined ? [] : ['--seed', String(settings.seed)]),
    ...(settings.window === undefined ? [] : ['--window', String(settings.window)]),
  ];
  const FULL = 'full__bnone__L200__niah_single_1';
  const STREAMING = 'streamingllm__b64__L200__niah_single_1';
  const RUNS = ['full L200 niah_single_1', 'streamingllm b64 L200 niah_single_1'];
  const sampleSeeds = (o: string, run: string) => readFileSync(join(o, 'runs', run, 'predictions.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line).seed);

  it('records the settings; unchanged resumes; --samples 2 reruns every run, as a fresh bench would', async () => {
    const first = await cli(ruler(out));
    expect(first.code, first.stderr).toBe(0);
    // only methods with a window record it (full's results do not depend on --window)
    expect(metricsOf(out, FULL).benchSettings).toEqual({ samples: 1, seed: 0, 'max-new-tokens': 4 });
    expect(metricsOf(out, STREAMING).benchSettings).toEqual({ samples: 1, seed: 0, 'max-new-tokens': 4, window: null });
    expect(Object.keys(oneJson<RulerBenchJson>(first.stdout).results[0])).not.toContain('benchSettings');

    const again = await cli(ruler(out));
    expect(Object.values(outcomes(again.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);

    const more = await cli(ruler(out, { samples: 2 }));
    expect(more.code, more.stderr).toBe(0);
    const moreOutcomes = outcomes(more.stderr);
    expect(Object.keys(moreOutcomes).sort()).toEqual(RUNS);
    for (const outcome of Object.values(moreOutcomes)) expect(outcome).toMatch(/^stale \(settings changed: samples 1 → 2\), rerun: accuracy \d\.\d{3}$/);
    const fresh = await cli(ruler(join(work, 'ruler-settings-fresh'), { samples: 2 }));
    expect(oneJson<RulerBenchJson>(more.stdout)).toEqual(oneJson<RulerBenchJson>(fresh.stdout));
    expect(oneJson<RulerBenchJson>(more.stdout).results.map((r) => r.samples)).toEqual([2, 2]);
  }, 90_000);

  it('--seed reruns with the samples of the new seed; --window reruns only the methods with a window', async () => {
    const before = sampleSeeds(out, FULL);
    const seeded = await cli(ruler(out, { samples: 2, seed: 1 }));
    expect(seeded.code, seeded.stderr).toBe(0);
    const seededOutcomes = outcomes(seeded.stderr);
    expect(Object.keys(seededOutcomes).sort()).toEqual(RUNS);
    for (const outcome of Object.values(seededOutcomes)) expect(outcome).toMatch(/^stale \(settings changed: seed 0 → 1\), rerun: /);
    const fresh = await cli(ruler(join(work, 'ruler-seed-fresh'), { samples: 2, seed: 1 }));
    expect(sampleSeeds(out, FULL)).toEqual(sampleSeeds(join(work, 'ruler-seed-fresh'), FULL));
    expect(sampleSeeds(out, FULL)).not.toEqual(before);
    expect(oneJson<RulerBenchJson>(seeded.stdout)).toEqual(oneJson<RulerBenchJson>(fresh.stdout));

    const windowed = await cli(ruler(out, { samples: 2, seed: 1, window: 8 }));
    expect(windowed.code, windowed.stderr).toBe(0);
    expect(outcomes(windowed.stderr)).toEqual({
      'full L200 niah_single_1': 'done earlier (resumed)',
      'streamingllm b64 L200 niah_single_1': expect.stringMatching(/^stale \(settings changed: window default → 8\), rerun: /),
    });

    // several settings at once, all named
    const back = await cli(ruler(out));
    expect(outcomes(back.stderr)['streamingllm b64 L200 niah_single_1']).toMatch(/^stale \(settings changed: samples 2 → 1, seed 1 → 0, window 8 → default\), rerun: /);
  }, 90_000);
});

describe('draft bench fidelity: resumes only results of the same models', () => {
  const target = copyModel('random-target', join(work, 'fidelity-target'));
  const draft = copyModel('random-draft', join(work, 'fidelity-draft'));
  const fidelity = (o: string) => ['bench', 'fidelity', '--json', '--target', target, '--draft', draft, '--methods', 'full,draft-only', '--lengths', '100', '--steps', '3', '--out', o];

  it('an unchanged rerun resumes; new draft weights make the draft run stale and its KL that of the new draft', async () => {
    const out = join(work, 'fidelity');
    const first = await cli(fidelity(out));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/resumed|stale/);
    const again = await cli(fidelity(out));
    expect(again.code, again.stderr).toBe(0);
    expect(Object.values(outcomes(again.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);
    expect(oneJson<FidelityBenchJson>(again.stdout)).toEqual(oneJson<FidelityBenchJson>(first.stdout));

    copyModel('tiny-llama', draft);
    const changed = await cli(fidelity(out));
    expect(changed.code, changed.stderr).toBe(0);
    expect(outcomes(changed.stderr)).toMatchObject({
      'full generated-100 [self-check]': 'done earlier (resumed)',
      'draft-only generated-100': expect.stringMatching(/^stale \(draft model changed\), rerun: agreement /),
    });
    const fresh = await cli(fidelity(join(work, 'fidelity-fresh')));
    expect(fresh.code, fresh.stderr).toBe(0);
    const klOf = (stdout: string) => oneJson<FidelityBenchJson>(stdout).results.find((r) => r.method === 'draft-only')?.meanKl;
    expect(klOf(changed.stdout)).toBe(klOf(fresh.stdout));
    expect(klOf(changed.stdout)).not.toBe(klOf(first.stdout));
  }, 90_000);
});

describe('draft bench fidelity: resumes only results of the same bench settings', () => {
  const target = join(fixtures, 'random-target');
  const draft = join(fixtures, 'random-draft');
  const out = join(work, 'fidelity-settings');
  const promptFile = join(work, 'prompt.txt');
  const fidelity = (steps: number, seed = 0) => [
    'bench', 'fidelity', '--json', '--target', target, '--draft', draft, '--methods', 'full', '--lengths', '100', '--prompt-file', promptFile,
    '--steps', String(steps), '--seed', String(seed), '--out', out,
  ];
  const GENERATED = 'full generated-100 [self-check]';
  const FILE = 'full prompt.txt [self-check]';

  it('--steps reruns every run, --seed the generated prompts, new content of a prompt file that prompt', async () => {
    writeFileSync(promptFile, 'one two three four five six seven eight nine ten');
    const first = await cli(fidelity(3));
    expect(first.code, first.stderr).toBe(0);
    const again = await cli(fidelity(3));
    expect(Object.values(outcomes(again.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);

    const longer = await cli(fidelity(4));
    expect(longer.code, longer.stderr).toBe(0);
    const longerOutcomes = outcomes(longer.stderr);
    expect(Object.keys(longerOutcomes).sort()).toEqual([FILE, GENERATED].sort());
    for (const outcome of Object.values(longerOutcomes)) expect(outcome).toMatch(/^stale \(settings changed: steps 3 → 4\), rerun: agreement /);
    expect(oneJson<FidelityBenchJson>(longer.stdout).results.map((r) => r.steps)).toEqual([4, 4]);

    const seeded = await cli(fidelity(4, 1));
    expect(outcomes(seeded.stderr)).toEqual({ [FILE]: 'done earlier (resumed)', [GENERATED]: expect.stringMatching(/^stale \(settings changed: seed 0 → 1\), rerun: /) });

    // the same number of tokens, so the same run folder
    const before = hashText(readFileSync(promptFile, 'utf8'));
    writeFileSync(promptFile, 'ten nine eight seven six five four three two one');
    const edited = await cli(fidelity(4, 1));
    expect(edited.code, edited.stderr).toBe(0);
    const short = (hash: string) => `${hash.slice(0, 15)}…`;
    expect(outcomes(edited.stderr)[FILE]).toContain(`prompt-file ${short(before)} → ${short(hashText(readFileSync(promptFile, 'utf8')))}`);
    expect(outcomes(edited.stderr)).toEqual({
      [FILE]: expect.stringMatching(/^stale \(settings changed: prompt-file sha256:[0-9a-f]{8}… → sha256:[0-9a-f]{8}…\), rerun: agreement /),
      [GENERATED]: 'done earlier (resumed)',
    });
  }, 90_000);
});

describe('draft bench: a note when resumed runs were computed at another git revision', () => {
  const target = join(fixtures, 'random-target');
  const draft = join(fixtures, 'random-draft');
  const ruler = (o: string) => [
    'bench', 'ruler', '--json', '--target', target, '--draft', draft, '--methods', 'full,streamingllm', '--budgets', '64', '--lengths', '200', '--tasks', 'niah_single_1',
    '--samples', '1', '--max-new-tokens', '4', '--out', o,
  ];
  const fidelity = (o: string) => ['bench', 'fidelity', '--json', '--target', target, '--draft', draft, '--methods', 'full', '--lengths', '100', '--steps', '3', '--out', o];
  const metaPath = (o: string, run: string) => join(o, 'runs', run, 'run_meta.json');
  /** Records another revision in a run's run_meta.json, as if it had been computed before a commit. */
  const computedAt = (o: string, run: string, git: string) => writeFileSync(metaPath(o, run), JSON.stringify({ ...JSON.parse(readFileSync(metaPath(o, run), 'utf8')), git }));
  const OLD = '0123abc4567def89012345678901234567890abc';
  const short = (git: string) => `${git.replace(/-dirty$/, '').slice(0, 7)}${git.endsWith('-dirty') ? '-dirty' : ''}`;
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it('ruler and fidelity: counts the resumed runs of another revision in one note after the progress; none when unchanged', async ({ skip }) => {
    const out = join(work, 'revision-ruler');
    const first = await cli(ruler(out));
    expect(first.code, first.stderr).toBe(0);
    const current: string | null = JSON.parse(readFileSync(metaPath(out, 'full__bnone__L200__niah_single_1'), 'utf8')).git;
    if (current === null) skip('not in a git checkout: the current revision is unknown, so there is no note');
    const now = escapeRegExp(short(current as string));

    const unchanged = await cli(ruler(out));
    expect(Object.values(outcomes(unchanged.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);
    expect(unchanged.stderr).not.toContain('note:');

    computedAt(out, 'full__bnone__L200__niah_single_1', OLD);
    const one = await cli(ruler(out));
    expect(one.code, one.stderr).toBe(0);
    expect(Object.values(outcomes(one.stderr))).toEqual(['done earlier (resumed)', 'done earlier (resumed)']);
    expect(one.stderr).toMatch(new RegExp(`\\nnote: 1 resumed run was computed at revision 0123abc \\(now ${now}\\); pass a fresh --out to recompute it after code changes\\n$`));

    computedAt(out, 'streamingllm__b64__L200__niah_single_1', OLD);
    const both = await cli(ruler(out));
    expect(both.stderr.match(/^note:/gm)).toHaveLength(1);
    // after every progress line
    expect(both.stderr).toMatch(new RegExp(`\\[2/2\\] .*\\nnote: 2 resumed runs were computed at revision 0123abc \\(now ${now}\\); pass a fresh --out to recompute them after code changes\\n$`));
    // results are resumed all the same
    expect(oneJson<RulerBenchJson>(both.stdout)).toEqual(oneJson<RulerBenchJson>(first.stdout));

    const fidelityOut = join(work, 'revision-fidelity');
    expect((await cli(fidelity(fidelityOut))).code).toBe(0);
    const [run] = readdirSync(join(fidelityOut, 'runs'));
    computedAt(fidelityOut, run, `${OLD}-dirty`);
    const resumed = await cli(fidelity(fidelityOut));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`note: 1 resumed run was computed at revision 0123abc-dirty (now ${short(current as string)});`);
  }, 90_000);
});
