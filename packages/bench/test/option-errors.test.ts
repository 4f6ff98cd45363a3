import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DraftError } from '@draft/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runCacheBench, runFidelity, runKernelsBench, runPerf, runRuler } from '../src/index.js';

// Bad options are typed errors (INVALID_ARGUMENT) naming the option and what is valid, thrown before any model
// loads or any file is written.
const fixtures = fileURLToPath(new URL('../../../models/fixtures', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-bench-options-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const out = join(work, 'never');
const pair = { target: join(fixtures, 'random-target'), draft: join(fixtures, 'random-draft'), out };

/** The error `run` rejects with: INVALID_ARGUMENT naming `argument`; nothing was written. */
async function optionError(run: () => Promise<unknown>, argument: string): Promise<{ value: unknown; expected: string }> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(DraftError.isInstance(error), String(error)).toBe(true);
  const { code, details } = error as DraftError;
  expect(code).toBe('INVALID_ARGUMENT');
  expect(details.argument).toBe(argument);
  expect(existsSync(out)).toBe(false);
  return details as { value: unknown; expected: string };
}

describe('option errors', () => {
  it('runRuler: tasks, lengths, budgets, counts, comparisons, dtypes and the target are checked first', async () => {
    const tasks = await optionError(() => runRuler({ ...pair, tasks: ['niah_single_1', 'needle'] }), 'tasks');
    expect(tasks.value).toBe('needle');
    expect(tasks.expected).toContain('niah_single_1');
    expect(tasks.expected).toContain('vt_hops_2');
    expect((await optionError(() => runRuler({ ...pair, lengths: [1024, 8] }), 'lengths')).value).toBe(8);
    expect((await optionError(() => runRuler({ ...pair, budgets: [64, '1/0'] }), 'budgets')).value).toBe('1/0');
    await optionError(() => runRuler({ ...pair, budgets: [1.5] }), 'budgets');
    await optionError(() => runRuler({ ...pair, samples: 0 }), 'samples');
    await optionError(() => runRuler({ ...pair, seed: -1 }), 'seed');
    await optionError(() => runRuler({ ...pair, maxNewTokens: 0.5 }), 'maxNewTokens');
    const compare = await optionError(() => runRuler({ ...pair, methods: ['full', 'snapkv'], compare: [{ a: 'full', b: 'h2o' }] }), 'compare');
    expect(compare).toMatchObject({ value: 'full:h2o' });
    expect(compare.expected).toContain('full, snapkv');
    await optionError(() => runRuler({ ...pair, dtype: 'fp64' as never }), 'dtype');
    await optionError(() => runRuler({ ...pair, methods: ['full'], methodOptions: { snapkv: { kernelSize: 3 } } }), 'methodOptions');
    const remoteTarget = { target: {} as never, url: 'http://127.0.0.1:1/v1', model: 'm', endpoint: 'chat' as const };
    await optionError(() => runRuler({ ...pair, remoteTarget }), 'target');
  });

  it('runFidelity, runPerf, runCacheBench and runKernelsBench', async () => {
    await optionError(() => runFidelity({ ...pair, lengths: [] }), 'lengths');
    await optionError(() => runFidelity({ ...pair, steps: 0 }), 'steps');
    await optionError(() => runFidelity({ ...pair, prompts: [{ name: '', text: 'x' }] }), 'prompts');
    expect((await optionError(() => runPerf({ ...pair, peers: ['transformers.js', 'vllm' as never] }), 'peers')).value).toBe('vllm');
    await optionError(() => runPerf({ ...pair, newTokens: 0 }), 'newTokens');
    await optionError(() => runPerf({ ...pair, threads: 0 }), 'threads');
    expect((await optionError(() => runCacheBench({ ...pair, methods: ['full', 'specpc'] }), 'methods')).value).toBe('specpc');
    await optionError(() => runCacheBench({ ...pair, document: 'k01 v02 w03', questions: [] }), 'questions');
    await optionError(() => runCacheBench({ ...pair, length: 8 }), 'length');
    expect((await optionError(() => runKernelsBench({ keyLengths: [256, 128] }), 'keyLengths')).value).toBe(128);
  });
});
