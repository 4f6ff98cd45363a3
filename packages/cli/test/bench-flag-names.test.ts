import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

// The harness (@draft/bench) names its options in errors (`tasks`, `peers`, …); `draft bench` reports them under
// the flag that set them, as it did when the checks lived in the CLI.
const models = fileURLToPath(new URL('../../../models', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'draft-bench-flags-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const out = join(work, 'never');
const pair = ['--target', join(models, 'fixtures', 'random-target'), '--draft', join(models, 'fixtures', 'random-draft'), '--out', out];

async function usageError(args: string[]): Promise<{ message: string; details: { argument: string; value: unknown; expected: string } }> {
  const { code, stdout, stderr } = await cli([...args, '--json']);
  expect(code, stderr).toBe(2);
  expect(stdout).toBe('');
  expect(existsSync(out)).toBe(false);
  return JSON.parse(stderr.trim().split('\n').at(-1) as string).error;
}

describe('draft bench: option errors of the harness name the flag', () => {
  it('ruler --tasks, --compare, --budgets', async () => {
    const tasks = await usageError(['bench', 'ruler', ...pair, '--tasks', 'niah_single_1,needle']);
    expect(tasks.details).toMatchObject({ argument: '--tasks', value: 'needle' });
    expect(tasks.message).toMatch(/^Invalid --tasks: got "needle", expected one of niah_single_1, /);
    expect((await usageError(['bench', 'ruler', ...pair, '--methods', 'full,snapkv', '--compare', 'full:h2o'])).details).toMatchObject({ argument: '--compare', value: 'full:h2o' });
    expect((await usageError(['bench', 'ruler', ...pair, '--budgets', '64,1/0'])).details).toEqual({
      argument: '--budgets',
      value: '1/0',
      expected: 'token counts (256) or fractions of the length (1/32, 0.125)',
    });
  });

  it('perf --peers, cache --methods and --question', async () => {
    expect((await usageError(['bench', 'perf', ...pair, '--peers', 'llama.cpp,vllm'])).details).toEqual({ argument: '--peers', value: 'vllm', expected: "'transformers.js' and/or 'llama.cpp'" });
    const cacheArgs = ['bench', 'cache', '--target', join(models, 'fixtures', 'random-target'), '--draft', join(models, 'fixtures', 'random-draft')];
    expect((await usageError([...cacheArgs, '--methods', 'full,specpc'])).details).toMatchObject({ argument: '--methods', value: 'specpc' });
    const document = join(work, 'doc.txt');
    writeFileSync(document, 'w01 k02 v03 w04');
    expect((await usageError([...cacheArgs, '--prompt-file', document])).details).toMatchObject({ argument: '--question' });
  });
});
