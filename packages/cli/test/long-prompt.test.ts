import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateJson } from '../src/index.js';
import { ensureBuilt, ROOT, runBin } from './spawn-cli.js';

// The bundled target's tokenizer splits on whitespace and drops it, so padding the separators makes a prompt
// of the largest single argument Linux accepts (128 KiB − 1 byte; one more is E2BIG at exec) that still fits
// the model's 4,096 positions: 256 tokens of a golden case.
const MAX_ARG_BYTES = 128 * 1024 - 1;
const words: string[] = JSON.parse(readFileSync(join(ROOT, 'models/target/golden.json'), 'utf8')).cases[0].text.split(' ');
const gap = ' '.repeat(Math.floor((MAX_ARG_BYTES - words.join('').length) / (words.length - 1)));
const base = words.join(gap);
const PROMPT = base + ' '.repeat(MAX_ARG_BYTES - base.length);

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'draft-long-prompt-'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function generate(promptArgs: string[]): GenerateJson {
  const run = runBin(['generate', '--json', '--max-new-tokens', '6', '--method', 'snapkv', '--budget', '64', ...promptArgs]);
  // Before the fix: killed by SIGSEGV with no output (ORT's first session in a worker thread overflowed its stack).
  expect(run.signal).toBeNull();
  expect(run.code).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as GenerateJson;
}

describe('draft generate --prompt with a 128 KiB argument', () => {
  it('generates exactly what --prompt-file does with the same text', () => {
    expect(Buffer.byteLength(PROMPT)).toBe(MAX_ARG_BYTES);
    const file = join(dir, 'prompt.txt');
    writeFileSync(file, PROMPT);
    const fromFile = generate(['--prompt-file', file]);
    const fromArgv = generate(['--prompt', PROMPT]);
    expect(fromFile.usage.promptTokens).toBe(words.length);
    expect(fromArgv.tokens).toEqual(fromFile.tokens);
    expect(fromArgv.usage).toEqual(fromFile.usage);
    expect(fromArgv.text).toBe(fromFile.text);
  }, 300_000);
});
