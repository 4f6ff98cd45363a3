import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, type OrtCausalLM } from '@draft/runtime';
import { createDraftServer, type DraftServer } from '@draft/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

// `draft generate` and the server check budget and window with one function (@draft/methods'
// validateMethodSettings), before any model runs: each case must be refused by both, naming the same setting.
const RANDOM_TARGET = fileURLToPath(new URL('../../../models/fixtures/random-target', import.meta.url));
const RANDOM_DRAFT = fileURLToPath(new URL('../../../models/fixtures/random-draft', import.meta.url));
const MAX_POSITIONS: number = JSON.parse(readFileSync(`${RANDOM_TARGET}/config.json`, 'utf8')).max_position_embeddings;
// A 2-token prompt: n ≤ C for every budget below, so the pipeline itself would never select and never object.
const PROMPT = 'hi there';

let target: OrtCausalLM;
let draft: OrtCausalLM;
let server: DraftServer;
let base: string;

beforeAll(async () => {
  target = await loadModel(RANDOM_TARGET, { threads: 1 });
  draft = await loadModel(RANDOM_DRAFT, { threads: 1 });
  server = createDraftServer({ target, draft, disposeModels: false });
  base = (await server.listen({ port: 0 })).url;
});

afterAll(async () => {
  await server?.close();
  await Promise.all([target?.dispose(), draft?.dispose()]);
});

async function viaCli(flags: string[]): Promise<{ code: number; error?: { code: string; message: string; details: Record<string, unknown> } }> {
  const { code, stderr } = await cli(['generate', '--json', '--target', RANDOM_TARGET, '--draft', RANDOM_DRAFT, '--prompt', PROMPT, '--max-new-tokens', '2', ...flags]);
  const last = stderr.trim().split('\n').pop() ?? '';
  return { code, ...(last.startsWith('{"error"') ? JSON.parse(last) : {}) };
}

async function viaServer(draftField: Record<string, unknown>): Promise<{ status: number; error?: { code: string; param: string; message: string } }> {
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: PROMPT, max_tokens: 2, draft: draftField }),
  });
  return { status: response.status, ...((await response.json()) as object) };
}

describe('budget and window: one validation for generate and serve', () => {
  const cases: { name: string; flags: string[]; field: Record<string, unknown>; cli: string; param: string; expected: string }[] = [
    {
      name: 'a budget beyond the target positions',
      flags: ['--method', 'snapkv', '--budget', '999999999'],
      field: { method: 'snapkv', budget: 999_999_999 },
      cli: '--budget',
      param: 'draft.budget',
      expected: `an integer in [1, ${MAX_POSITIONS}] (the target's maximum positions)`,
    },
    {
      name: 'a window above the budget',
      flags: ['--method', 'snapkv', '--window', '64', '--budget', '8'],
      field: { method: 'snapkv', window: 64, budget: 8 },
      cli: '--window',
      param: 'draft.window',
      expected: "an integer below the budget (8): 'snapkv' keeps its window inside the budget",
    },
    {
      name: 'a window equal to the budget (the budget counts the window: 0 < W < C)',
      flags: ['--method', 'speckv', '--window', '16', '--budget', '16'],
      field: { method: 'speckv', window: 16, budget: 16 },
      cli: '--window',
      param: 'draft.window',
      expected: "an integer below the budget (16): 'speckv' keeps its window inside the budget",
    },
    {
      name: "a budget at or below the method's default window (SnapKV's W = 32)",
      flags: ['--method', 'snapkv', '--budget', '32'],
      field: { method: 'snapkv', budget: 32 },
      cli: '--budget',
      param: 'draft.budget',
      expected: "an integer above 32, the default window of 'snapkv' (the budget counts the window; set a smaller",
    },
    {
      name: 'a prompt-compression window beyond the target positions',
      flags: ['--method', 'specpc', '--window', String(MAX_POSITIONS + 1)],
      field: { method: 'specpc', window: MAX_POSITIONS + 1 },
      cli: '--window',
      param: 'draft.window',
      expected: `an integer in [1, ${MAX_POSITIONS}]`,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: refused by both before any generation`, async () => {
      const fromCli = await viaCli(c.flags);
      expect(fromCli.code).toBe(2);
      expect(fromCli.error?.code).toBe('INVALID_ARGUMENT');
      expect(fromCli.error?.details.argument).toBe(c.cli);
      expect(String(fromCli.error?.details.expected)).toContain(c.expected);
      const fromServer = await viaServer(c.field);
      expect(fromServer.status).toBe(400);
      expect(fromServer.error).toMatchObject({ code: 'invalid_value', param: c.param });
      expect(fromServer.error?.message).toContain(c.expected);
    });
  }

  it('--budget -5 is the range error, not the flag parser\'s "ambiguous" message; every numeric flag alike', async () => {
    for (const [flag, value, expected] of [
      ['--budget', '-5', 'an integer ≥ 1'],
      ['--window', '-1', 'an integer ≥ 1'],
      ['--max-new-tokens', '-3', 'an integer ≥ 1'],
      ['--temperature', '-0.5', 'a number ≥ 0'],
      ['--top-k', '-1', 'an integer ≥ 0'],
      ['--top-p', '-.5', 'a number in (0, 1]'],
      ['--top-p', '0', 'a number in (0, 1]'],
      ['--top-p', '5', 'a number in (0, 1]'],
      ['--seed', '-7', `an integer in [0, ${Number.MAX_SAFE_INTEGER}]`],
      ['--seed', '1e20', `an integer in [0, ${Number.MAX_SAFE_INTEGER}]`],
      ['--max-prompt-bytes', '-1e3', 'an integer ≥ 1'],
    ]) {
      const { code, error } = await viaCli([flag, value]);
      expect(code, flag).toBe(2);
      expect(error?.message, flag).not.toContain('ambiguous');
      expect(error?.details, flag).toEqual({ argument: flag, value, expected });
    }
  });

  it('bench flags take negative numbers as values too', async () => {
    for (const args of [
      ['bench', 'fidelity', '--steps', '-5'],
      ['bench', 'ruler', '--samples', '-2'],
    ]) {
      const { code, stderr } = await cli([...args, '--json']);
      expect(code, args.join(' ')).toBe(2);
      const { error } = JSON.parse(stderr.trim().split('\n').pop() as string);
      expect(error.message).not.toContain('ambiguous');
      expect(error.details).toMatchObject({ argument: args[2], value: args[3] });
    }
  });

  it('settings inside the limits run in both (the control for the cases above)', async () => {
    expect((await viaCli(['--method', 'snapkv', '--budget', '33'])).code).toBe(0);
    expect((await viaServer({ method: 'snapkv', budget: 33 })).status).toBe(200);
    expect((await viaCli(['--method', 'snapkv', '--window', '8', '--budget', '9'])).code).toBe(0);
    expect((await viaServer({ method: 'snapkv', window: 8, budget: 9 })).status).toBe(200);
  });
});
